"""One pass of the pipeline (`sync --once`, `run --once`): select the KRs, measure them,
assess progress and status, and store everything (the outbox's deliveries included) in one
transaction; then, as a separate step, send the pending deliveries to the sinks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from okrsync.config.loader import Config
from okrsync.measure.measurement import Measurement
from okrsync.measure.measurer import Measurer
from okrsync.measure.plan import select
from okrsync.progress.definitions import from_config
from okrsync.progress.periods import PeriodReader, resolve
from okrsync.progress.status import assess_all
from okrsync.sinks.delivery import Policy, Report, deliver
from okrsync.sinks.enqueue import enqueue, prepare
from okrsync.store.store import Store


@dataclass(frozen=True)
class RunResult:
    run_id: str
    measurements: list[Measurement]
    queries: dict[str, int]
    requests: dict[str, int]
    skipped_manual: list[str]
    not_modified: dict[str, int]
    idle: str | None = None
    """Why nothing was measured: the config's period is not running."""
    deliveries: Report | None = None
    """What the delivery step did (None: dry run)."""

    @property
    def failed(self) -> list[Measurement]:
        return [m for m in self.measurements if m.failed]


def _since(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Per-source counts of this run alone, from a measurer that may live across runs."""
    return {n: c - before.get(n, 0) for n, c in after.items()}


def idle_reason(config: Config, now: datetime) -> str | None:
    """Why nothing is measured at `now`: the config's period has ended or not yet begun."""
    period = config.period
    if now >= period.ends_at:
        return (
            f"the period {period.name} ended on {period.end}: nothing measured "
            "(set the next period in the config to go on measuring)"
        )
    if now < period.starts_at:
        return f"the period {period.name} starts on {period.start}: nothing measured before it"
    return None


def run_once(
    config: Config,
    store: Store | None,
    now: datetime,
    *,
    only: list[str] | None = None,
    measurer: Measurer | None = None,
    progress: Callable[[int, int], None] | None = None,
    kind: str = "sync",
    reader: PeriodReader | None = None,
    delivery: Policy | None = None,
    commit: str | None = None,
) -> RunResult:
    """Measure and (unless `store` is None: dry run) store every selected KR once, while
    the config's period runs. `reader` (default: the store) gives `start: previous`;
    `commit` (the config directory's git commit) is recorded with the run."""
    manual = [kr.id for _, kr in config.key_results() if kr.is_manual]
    idle = idle_reason(config, now)
    if store is not None and idle is not None:
        with store.transaction():  # the period is known (and adopts old rows) even so
            store.sync_config(config, now)
        report = deliver(store, config.sinks, policy=delivery)
        return RunResult("", [], {}, {}, manual, {}, idle, report)
    krs = select(config, only)
    owned = measurer is None
    measurer = measurer or Measurer(config)
    requests_before = measurer.requests_by_source()
    not_modified_before = measurer.not_modified_by_source()
    try:
        taken = measurer.measure(krs, now, progress)
        queries = dict(measurer.queries)
        requests = _since(measurer.requests_by_source(), requests_before)
        not_modified = _since(measurer.not_modified_by_source(), not_modified_before)
    finally:
        if owned:
            measurer.close()
    reader = reader or store
    defs = from_config(config)
    if reader is not None:
        defs = resolve(defs, reader, now)
    # every KR of the period, not only `--only`'s: the sinks roll objectives up from them
    known = (
        store.observations([k.id for k in defs.key_results()], now, config.period) if store else {}
    )
    measurements = assess_all(defs, krs, taken, known, now)
    run_id = uuid.uuid4().hex[:16]
    if store is None:
        return RunResult(run_id, measurements, queries, requests, manual, not_modified)
    outgoing = prepare(config, defs, measurements, known)
    with store.transaction():
        store.sync_config(config, now)
        ids = store.record_run(
            run_id, kind, now, now, config.digest, measurements, config.period.name, commit
        )
        enqueue(store, outgoing, ids, now)
    report = deliver(store, config.sinks, policy=delivery)
    return RunResult(run_id, measurements, queries, requests, manual, not_modified, None, report)
