"""Scores and grades: a period's results on the 0.0-1.0 scale of OKR practice."""

from __future__ import annotations

import math
from typing import Literal

from okrsync.config.model import Grading, Kind
from okrsync.progress.maths import clamp, weighted_mean

Grade = Literal["good", "fair", "poor", "met", "missed"]


def round_score(score: float) -> float:
    """Two decimals, rounded half up (0.625 -> 0.63), as people round by hand."""
    return math.floor(score * 100 + 0.5 + 1e-9) / 100


def kr_score(progress_raw: float | None) -> float | None:
    """A KR's score: its progress clamped to [0, 1]; None without a value."""
    return None if progress_raw is None else round_score(clamp(progress_raw))


def mean_score(items: list[tuple[float | None, float]]) -> float | None:
    """Weighted mean of (score, weight) items that have a score, as progress rolls up."""
    mean, _ = weighted_mean(items)
    return None if mean is None else round_score(mean)


def grade(score: float | None, kind: Kind, bands: Grading) -> Grade | None:
    """`good`/`fair`/`poor` for aspirational scores, `met`/`missed` for committed ones."""
    if score is None:
        return None
    if kind == "committed":
        return "met" if score >= bands.committed.met else "missed"
    if score >= bands.aspirational.good:
        return "good"
    return "fair" if score >= bands.aspirational.fair else "poor"
