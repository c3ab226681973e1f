"""Prometheus metrics of the daemon: OKR values and progress, fetches, and config reloads.

OKR series are computed at scrape time from the daemon's in-memory view (seeded from the
store), so every KR has its series from start-up, not only after its next measurement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from okrsync.config.loader import Config
from okrsync.connector import (
    Connector,
    QueryBase,
    RangeConnector,
    RangePoint,
    Reading,
    Window,
)
from okrsync.progress.definitions import Definitions
from okrsync.progress.maths import STATUSES, Observation
from okrsync.progress.tree import evaluate

T = TypeVar("T")

log = structlog.get_logger("okrsync.service.metrics")
View = tuple[Definitions, dict[str, Observation], datetime]
Factory = Callable[[str, Config], Connector]
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class OkrCollector(Collector):
    """Yields the per-KR, per-objective and per-status series from the current view."""

    def __init__(self, view: Callable[[], View | None]) -> None:
        self.view = view

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The OKR series; if they cannot be computed the error is logged and none are
        yielded, so the scrape still gets every other collector's series."""
        try:
            families = self._families()
        except Exception as exc:  # a scrape must never fail: the OKR series are left out
            log.error("okr_metrics_failed", error=f"{type(exc).__name__}: {exc}")
            log.debug("okr_metrics_failed_traceback", exc_info=exc)
            return
        yield from families

    def _families(self) -> list[GaugeMetricFamily]:
        """Every OKR family, computed in full before any is yielded (all or none)."""
        current = self.view()
        if current is None:
            return []
        defs, observations, now = current
        tree = evaluate(defs, observations, now)
        period_end = GaugeMetricFamily(
            "okrsync_period_end_timestamp_seconds",
            "When the config's OKR period ends (the first instant after its last day).",
            labels=["period"],
        )
        period_end.add_metric([defs.period.name], defs.period.ends_at.timestamp())
        value = GaugeMetricFamily(
            "okrsync_kr_value", "Latest measured value of a key result.", labels=["kr", "objective"]
        )
        progress = GaugeMetricFamily(
            "okrsync_kr_progress",
            "Progress of a key result from start (0) to target (1), clamped.",
            labels=["kr", "objective"],
        )
        success = GaugeMetricFamily(
            "okrsync_kr_last_success_timestamp_seconds",
            "When the key result's latest value was measured (0: never).",
            labels=["kr", "objective"],
        )
        objective = GaugeMetricFamily(
            "okrsync_objective_progress",
            "Weighted progress of an objective (its key results and child objectives).",
            labels=["objective"],
        )
        budget = GaugeMetricFamily(
            "okrsync_kr_error_budget_remaining",
            "Error budget an SLO key result has left: 1 untouched, 0 spent, below 0 breached.",
            labels=["kr", "objective"],
        )
        burn = GaugeMetricFamily(
            "okrsync_kr_burn_rate",
            "How fast an SLO key result spends its budget over a window (1: exactly on budget).",
            labels=["kr", "objective", "window"],
        )
        counts = dict.fromkeys(STATUSES, 0)
        for view in tree.walk():
            oid = view.objective.id
            objective.add_metric([oid], _nan(view.progress))
            for kr in view.key_results:
                labels = [kr.kr.id, oid]
                value.add_metric(labels, _nan(kr.obs.value))
                progress.add_metric(labels, _nan(kr.progress))
                stamp = kr.obs.measured_at.timestamp() if kr.obs.measured_at else 0.0
                success.add_metric(labels, stamp)
                counts[kr.status] += 1
                if kr.kr.slo is not None:
                    reading = kr.obs.slo_shown
                    budget.add_metric(
                        labels, math.nan if reading is None else reading.error_budget_remaining
                    )
                    for window, rate in reading.burn_rates.items() if reading else ():
                        burn.add_metric([*labels, window], _nan(rate))
        statuses = GaugeMetricFamily(
            "okrsync_key_results", "Key results by status.", labels=["status"]
        )
        for status, count in counts.items():
            statuses.add_metric([status], count)
        return [value, progress, success, budget, burn, objective, statuses, period_end]


def _nan(number: float | None) -> float:
    return math.nan if number is None else number


class Metrics:
    """The daemon's registry: OKR series, fetch timing and errors, config reload state."""

    def __init__(self, view: Callable[[], View | None], *, process: bool = True) -> None:
        # `_created` series only confuse dashboards here; the function lacks annotations
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        if process:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        self.registry.register(OkrCollector(view))
        self.fetch_duration = Histogram(
            "okrsync_fetch_duration_seconds",
            "Duration of one request to a source (each retry attempt counts).",
            ["source"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.fetch_errors = Counter(
            "okrsync_fetch_errors",
            "Requests to a source that failed (each retry attempt counts).",
            ["source"],
            registry=self.registry,
        )
        self.backfill_points = Counter(
            "okrsync_backfill_points",
            "Past values of a key result that the daemon's background backfill stored.",
            ["kr"],
            registry=self.registry,
        )
        self.reload_ok = Gauge(
            "okrsync_config_last_reload_successful",
            "Whether the last config (re)load succeeded (1) or was rejected (0).",
            registry=self.registry,
        )
        self.reload_time = Gauge(
            "okrsync_config_last_reload_success_timestamp_seconds",
            "When the config was last loaded successfully.",
            registry=self.registry,
        )
        self.leader = Gauge(
            "okrsync_leader",
            "Whether this replica holds the store's leader lease and measures (1) or not (0).",
            registry=self.registry,
        )
        self.config_info = Gauge(
            "okrsync_config_info",
            "The running config, by the hash of its files.",
            ["hash"],
            registry=self.registry,
        )

    def reloaded(self, digest: str | None, ok: bool, at: float | None = None) -> None:
        """Record a (re)load: `digest` is the running config's, kept on a failed reload."""
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.reload_time.set(time.time() if at is None else at)
        if digest is not None:
            self.config_info.clear()
            self.config_info.labels(hash=digest).set(1)

    def touch_source(self, source: str) -> None:
        """Give a source its fetch series (at zero) before its first request."""
        self.fetch_duration.labels(source=source)
        self.fetch_errors.labels(source=source)

    def instrument(self, factory: Factory) -> Factory:
        """Wrap a connector factory so every request is timed and every failure counted."""

        def make(name: str, config: Config) -> Connector:
            return _Timed(factory(name, config), name, self)

        return make


class _Timed:
    """A connector that records each `fetch` in the metrics, then behaves as the one it wraps."""

    def __init__(self, inner: Connector, source: str, metrics: Metrics) -> None:
        self.inner = inner
        self.source = source
        self.metrics = metrics

    @property
    def requests(self) -> int:
        return self.inner.requests

    @requests.setter
    def requests(self, value: int) -> None:
        self.inner.requests = value

    def fetch(self, query: QueryBase, window: Window) -> Reading:
        return self._timed(lambda: self.inner.fetch(query, window))

    def fetch_range(
        self, query: QueryBase, window: Window, first: datetime, last: datetime, step: timedelta
    ) -> list[RangePoint]:
        """A span in one request (backfill), timed and counted like `fetch`; only for a
        connector that has it (the planner asks the connector's class, not this wrapper)."""
        ranged: RangeConnector = self.inner  # type: ignore[assignment]
        return self._timed(lambda: ranged.fetch_range(query, window, first, last, step))

    def _timed(self, call: Callable[[], T]) -> T:
        """`call()`, its duration observed and its failure counted for the source."""
        began = time.monotonic()
        try:
            return call()
        except Exception:
            self.metrics.fetch_errors.labels(source=self.source).inc()
            raise
        finally:
            elapsed = time.monotonic() - began
            self.metrics.fetch_duration.labels(source=self.source).observe(elapsed)

    def close(self) -> None:
        self.inner.close()
