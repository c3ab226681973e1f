"""Progress and status maths: the contract in the README, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from okrsync.config.model import Thresholds
from okrsync.progress.maths import (
    Observation,
    clamp,
    classify,
    expected_progress,
    kr_progress,
    kr_status,
    weighted_mean,
)

T = Thresholds()
NOW = datetime(2026, 11, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "start", "target", "progress"),
    [
        (5, 0, 10, 0.5),
        (99.45, 99.0, 99.9, 0.5),
        (8.5, 12, 5, 0.5),  # decreasing: cycle time 12 -> 5 days
        (12, 10, 0, -0.2),  # worse than the start: raw progress is negative
        (15, 0, 10, 1.5),  # overshoot is kept raw
    ],
)
def test_kr_progress_is_linear_in_both_directions(
    value: float, start: float, target: float, progress: float
) -> None:
    """Progress is (value - start) / (target - start), for rising and falling KRs alike."""
    assert kr_progress(value, start, target) == pytest.approx(progress)


def test_clamp_bounds_progress() -> None:
    """Shown progress stays within [0, 1]."""
    assert (clamp(-0.2), clamp(0.4), clamp(1.5)) == (0.0, 0.4, 1.0)


def test_expected_progress_is_elapsed_fraction() -> None:
    """Expected progress is the elapsed share of the period, bounded to [0, 1]."""
    start = datetime(2026, 10, 1, tzinfo=UTC)
    end = datetime(2026, 10, 11, tzinfo=UTC)
    assert expected_progress(start, end, start + timedelta(days=4)) == pytest.approx(0.4)
    assert expected_progress(start, end, start - timedelta(days=1)) == 0
    assert expected_progress(start, end, end + timedelta(days=1)) == 1


@pytest.mark.parametrize(
    ("progress", "expected", "status"),
    [
        (1.0, 0.5, "done"),
        (0.40, 0.5, "on_track"),  # exactly expected - 0.10
        (0.39, 0.5, "at_risk"),
        (0.25, 0.5, "at_risk"),  # exactly expected - 0.25
        (0.24, 0.5, "off_track"),
        (0.0, 0.05, "on_track"),
    ],
)
def test_classify_uses_thresholds_below_expected(
    progress: float, expected: float, status: str
) -> None:
    """on_track within 0.10 of expected, at_risk within 0.25, else off_track; done at 1."""
    assert classify(progress, expected, T) == status


def test_custom_thresholds() -> None:
    """Thresholds are configurable."""
    assert classify(0.3, 0.5, Thresholds(on_track=0.2, at_risk=0.3)) == "on_track"


def test_status_no_data_stale_and_fresh() -> None:
    """no_data without a value; stale after a failure or when too old; else classified."""
    hour = timedelta(hours=1)
    fresh = Observation(5, NOW - hour, attempted_at=NOW - hour)
    assert kr_status(Observation(), None, 0.5, NOW, 3600, T) == "no_data"
    assert kr_status(fresh, 0.5, 0.5, NOW, 3 * 3600, T) == "on_track"
    assert kr_status(fresh, 0.5, 0.5, NOW, 1800, T) == "stale"
    assert kr_status(fresh, 0.5, 0.5, NOW, None, T) == "on_track"
    failed = Observation(5, NOW - hour, attempted_at=NOW, error="boom")
    assert kr_status(failed, 0.5, 0.5, NOW, None, T) == "stale"


def test_weighted_mean_leaves_out_missing_items() -> None:
    """Items without data are left out of the mean and counted."""
    # `object`: mypy's strict equality cannot know an Approx inside a tuple equals a float
    about_0_8: object = pytest.approx(0.8)
    about_0_4: object = pytest.approx(0.4)
    assert weighted_mean([(1.0, 2), (0.4, 1), (None, 5)]) == (about_0_8, 1)
    assert weighted_mean([(None, 1)]) == (None, 1)
    assert weighted_mean([(0.2, 0), (0.6, 0)]) == (about_0_4, 0)


def test_cron_kr_staleness_follows_its_schedule(tmp_path: object) -> None:
    """A daily cron KR is not stale hours after its run: its cadence is the cron's gap."""
    from pathlib import Path

    from okrsync.config.loader import load
    from okrsync.progress.definitions import from_config
    from okrsync.progress.tree import evaluate

    path = Path(str(tmp_path)) / "c.yaml"
    path.write_text(
        "period: {name: Q, start: 2026-10-01, end: 2026-12-31}\n"
        "sources: {p: {type: prometheus, url: 'http://127.0.0.1:1'}}\n"
        "objectives: [{id: o, title: O, key_results: [\n"
        "  {id: k, source: p, query: up, target: 10, cron: '0 9 * * *'}]}]\n"
    )
    config = load(path)
    measured = datetime(2026, 11, 1, 9, tzinfo=UTC)
    obs = {"k": Observation(5, measured, attempted_at=measured)}
    kr = evaluate(from_config(config), obs, measured + timedelta(hours=4)).roots[0].key_results[0]
    assert kr.status != "stale"
    late = evaluate(from_config(config), obs, measured + timedelta(days=4)).roots[0].key_results[0]
    assert late.status == "stale"


def test_rolled_progress_is_what_the_tree_rolls_up(tmp_path: object) -> None:
    """The outbox's cheap roll-up gives each objective the progress `evaluate` gives it:
    nested objectives, weights, KRs without data, a KR whose progress is past 100%."""
    import random
    from pathlib import Path

    from okrsync.config.loader import load
    from okrsync.progress.definitions import from_config
    from okrsync.progress.tree import evaluate, rolled_progress

    path = Path(str(tmp_path)) / "c.yaml"
    lines = ["period: {name: Q, start: 2026-10-01, end: 2026-12-31}", "objectives:"]
    for o in range(6):
        parent = f", parent: o{o // 2}" if o else ""
        lines.append(f"  - {{id: o{o}, title: O, weight: {o + 1}{parent}, key_results: [")
        lines += [
            f"      {{id: k{o}_{i}, source: manual, start: 0, target: 10, weight: {i + 1}}},"
            for i in range(3)
        ]
        lines.append("    ]}")
    path.write_text("\n".join(lines) + "\n")
    defs = from_config(load(path))
    now = datetime(2026, 11, 1, tzinfo=UTC)
    pick = random.Random(7)
    for _ in range(20):
        values = {k.id: pick.choice([None, pick.uniform(-5, 15)]) for k in defs.key_results()}
        obs = {
            kr_id: Observation(value, now, attempted_at=now)
            for kr_id, value in values.items()
            if value is not None
        }
        tree = {v.objective.id: v.progress for v in evaluate(defs, obs, now).walk()}
        assert rolled_progress(defs, values) == tree
