"""Stage 3, progress: pure maths (no I/O, no clock) turning measurements into progress and
status, and rolling key results up into the objective tree.
"""
