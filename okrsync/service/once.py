"""One sync run: measure the planned KRs, compute progress and status, store in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from okrsync.config.loader import Config
from okrsync.config.model import KeyResult
from okrsync.errors import UsageError
from okrsync.measure.measurer import Measurer, Outcome
from okrsync.progress.maths import Observation, expected_progress, kr_progress, kr_status, observe
from okrsync.store.sqlite import MeasurementRow, Store


@dataclass(frozen=True)
class RunResult:
    run_id: str
    rows: list[MeasurementRow]
    requests: dict[str, int]
    skipped_manual: list[str]
    not_modified: dict[str, int]

    @property
    def failed(self) -> list[MeasurementRow]:
        return [r for r in self.rows if r.error is not None]


def plan(config: Config, only: list[str] | None = None) -> list[KeyResult]:
    """The automated KRs to measure (all, or those named by `--only`); manual ones are skipped."""
    krs = [kr for _, kr in config.key_results()]
    if only:
        known = {kr.id for kr in krs}
        unknown = [k for k in only if k not in known]
        if unknown:
            raise UsageError(
                f"unknown key result(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        krs = [kr for kr in krs if kr.id in only]
    return [kr for kr in krs if not kr.is_manual]


def to_rows(
    config: Config,
    krs: list[KeyResult],
    outcomes: list[Outcome],
    now: datetime,
    before: dict[str, Observation],
) -> list[MeasurementRow]:
    """History rows for outcomes: progress raw, status as of `now`, errors kept."""
    expected = expected_progress(config.period.starts_at, config.period.ends_at, now)
    rows = []
    for kr, out in zip(krs, outcomes, strict=True):
        progress = None if out.value is None else kr_progress(out.value, kr.start, kr.target)
        prior = before.get(kr.id, Observation())
        obs = observe(prior, out.value, out.error, now)
        progress_for_status: float | None = progress
        if out.value is None and prior.value is not None:
            progress_for_status = kr_progress(prior.value, kr.start, kr.target)
        status = kr_status(
            obs, progress_for_status, expected, now, None, config.defaults.thresholds
        )
        rows.append(
            MeasurementRow(
                kr.id,
                now,
                out.source,
                out.query,
                out.value,
                progress,
                status,
                out.inputs,
                out.error,
                note=out.note,
            )
        )
    return rows


def _since(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Per-source counts of this run alone, from a measurer that may live across runs."""
    return {n: c - before.get(n, 0) for n, c in after.items()}


def run_once(
    config: Config,
    store: Store | None,
    now: datetime,
    *,
    only: list[str] | None = None,
    measurer: Measurer | None = None,
    progress: Callable[[int, int], None] | None = None,
    kind: str = "sync",
) -> RunResult:
    """Measure and (unless `store` is None: dry run) store every planned KR once."""
    krs = plan(config, only)
    owned = measurer is None
    measurer = measurer or Measurer(config)
    requests_before = measurer.requests_by_source()
    not_modified_before = measurer.not_modified_by_source()
    try:
        outcomes = measurer.measure(krs, now, progress)
        requests = _since(measurer.requests_by_source(), requests_before)
        not_modified = _since(measurer.not_modified_by_source(), not_modified_before)
    finally:
        if owned:
            measurer.close()
    before = store.observations([k.id for k in krs], now) if store else {}
    rows = to_rows(config, krs, outcomes, now, before)
    run_id = uuid.uuid4().hex[:16]
    if store is not None:
        with store.transaction():
            store.sync_config(config, now)
            store.record_run(run_id, kind, now, now, config.digest, rows)
    manual = [kr.id for _, kr in config.key_results() if kr.is_manual]
    return RunResult(run_id, rows, requests, manual, not_modified)
