"""7. Report: the objective tree as a page people read (HTML) or paste (Markdown).

Built from the store alone: the tree as of a moment, each KR's trend over the period
(downsampled for the charts), a forecast of its value at the period's end, and what
changed since the last week.
"""
