"""Stage 2, measure: plan which distinct queries a run needs, fetch each once through its
connector under the one retry policy, and turn the answers into `Measurement`s.

Knows OKRs and the connector interface; knows nothing of HTTP, progress maths or the store.
"""
