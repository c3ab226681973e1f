"""6. Review: numbers people can check before and after they land.

plan.py measures a config without storing and compares it with what the store holds
(values, progress, status, and each KR's definition); explain.py traces one stored value
back to its source, query, answer, formula, arithmetic and status rule.
"""
