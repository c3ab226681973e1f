"""SLO key results end to end against a real Prometheus holding a month of request
counters: `okrsync sync --once` as a subprocess on the real clock, then `status --json`
and `history --json`, checked against SLIs, error budgets and burn rates computed by hand
from the rates the counters were written with (`slo_history`).

The counters run from 30 days before the real now to 3 hours after it (this Prometheus
scrapes nothing, so samples ahead of its clock are only data): whatever instant
Prometheus evaluates a query at during the module, every window is densely sampled and
its `increase()` is rate x duration."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_server import HEAD_SPAN, HistoricalPrometheus, start_prometheus_with_history
from slo_history import METRIC, Events, Phase, Traffic, samples

OBJECTIVE = 99.9
BUDGET = 1 - OBJECTIVE / 100
HISTORY = timedelta(days=30)
AHEAD = timedelta(hours=3)
STEP = timedelta(minutes=1)
PERIOD_DAYS_BEFORE, PERIOD_DAYS_AFTER = 20, 70
FAST_SINCE = timedelta(hours=1)
"""How long before the module's start the fast and breached jobs began failing hard."""
BURN_WINDOWS = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
}
"""The default pairs' windows."""
RECOVERED_FOR = timedelta(minutes=10)
"""How long before the module's start the recovered job's 50-minute outage ended."""
QUIET_FOR = timedelta(hours=2)
"""How long before the module's start the quiet job stopped serving requests."""
ROUNDING = 1e-7
"""Relative float slack between Prometheus' arithmetic on the samples and the hand's."""
QUERY_TICK = timedelta(milliseconds=50)
RENDERING_LAG = timedelta(seconds=5)
"""How much later than the period start a `window: period` query may begin: okrsync
rounds the period so far down to whole seconds, and queries a moment after rendering it."""
PAGE = {"long": "1h", "short": "5m", "factor": 14.4}
TICKET = {"long": "6h", "short": "30m", "factor": 6}


def traffic(t0: datetime, period_start: datetime) -> dict[str, Traffic]:
    """Each job's requests: 100/s throughout, failing at a burn rate (error ratio over
    the 0.1% budget) that is constant or changes at one hand-picked instant."""
    first = t0 - HISTORY

    def steady(job: str, burn: float) -> Traffic:
        return Traffic(job, (Phase(first, 100.0, burn * BUDGET),))

    def changing(job: str, burn: float, at: datetime, then: float) -> Traffic:
        return Traffic(job, (Phase(first, 100.0, burn * BUDGET), Phase(at, 100.0, then * BUDGET)))

    jobs = [
        steady("met", 0.1),
        steady("slow", 0.5),
        changing("fast", 0.01, t0 - FAST_SINCE, 20),
        changing("breached", 2, t0 - FAST_SINCE, 50),
        Traffic("idle", (Phase(first, 0.0, 0.0),)),
        changing("rolling", 2, period_start, 0.1),
        steady("errvar", 0.05),
        Traffic(
            "recovered",
            (
                Phase(first, 100.0, 0.01 * BUDGET),
                Phase(t0 - timedelta(minutes=60), 100.0, 30 * BUDGET),
                Phase(t0 - RECOVERED_FOR, 100.0, 0.01 * BUDGET),
            ),
        ),
        Traffic("quiet", (Phase(first, 100.0, 0.1 * BUDGET), Phase(t0 - QUIET_FOR, 0.0, 0.0))),
    ]
    return {job.job: job for job in jobs}


def good_query(job: str) -> str:
    return f'sum(increase({METRIC}{{job="{job}",code!~"5.."}}[{{window}}]))'


def errors_query(job: str) -> str:
    return f'sum(increase({METRIC}{{job="{job}",code=~"5.."}}[{{window}}]))'


def total_query(job: str) -> str:
    return f'sum(increase({METRIC}{{job="{job}"}}[{{window}}]))'


def slo_kr(kr: str, **slo: Any) -> str:
    """One key result line (YAML flow, written as JSON) with an `slo:` block."""
    block = {"objective": OBJECTIVE, **slo}
    return "      - " + json.dumps({"id": kr, "source": "prom", "slo": block, "start": 99.0})


def config(url: str, start: datetime, end: datetime) -> str:
    krs = [
        slo_kr(job, good=good_query(job), total=total_query(job))
        for job in ("met", "slow", "fast", "breached", "idle", "recovered", "quiet", "absent")
    ]
    krs += [
        slo_kr("rolling", good=good_query("rolling"), total=total_query("rolling"), window="28d"),
        slo_kr("errvar", errors=errors_query("errvar"), total=total_query("errvar")),
        slo_kr("inverted", good=total_query("met"), total=errors_query("met")),
        slo_kr(
            "custom-alerts",
            good=good_query("met"),
            total=total_query("met"),
            burn_alerts=[{"long": "2h", "short": "10m", "factor": 0.05}],
        ),
    ]
    return (
        f"period: {{name: slo-test, start: {start.date()}, end: {end.date()}}}\n"
        "sources:\n"
        f'  prom: {{type: prometheus, url: "{url}"}}\n'
        "objectives:\n"
        "  - id: reliability\n"
        "    title: Reliable checkout\n"
        "    key_results:\n" + "\n".join(krs) + "\n"
    )


def okrsync(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`okrsync ARGS --config okrs.yaml --db slo.db` in `cwd`, on the real clock."""
    files = ["--config", "okrs.yaml", "--db", "slo.db"]
    return subprocess.run(
        [sys.executable, "-m", "okrsync", args[0], *files, *args[1:]],
        cwd=cwd,
        env={**os.environ, "OKRSYNC_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Counters:
    """A Prometheus holding every job's counters, and the OKR period around them."""

    jobs: dict[str, Traffic]
    period_start: datetime
    period_end: datetime
    prometheus: HistoricalPrometheus


@dataclass(frozen=True)
class Between:
    """The values a hand computation allows: `lo` to `hi`, give or take float rounding."""

    lo: float
    hi: float

    def __contains__(self, value: object) -> bool:
        slack = ROUNDING * max(abs(self.lo), abs(self.hi), 1)
        return isinstance(value, float | int) and self.lo - slack <= value <= self.hi + slack


@dataclass
class SloRun:
    """The counters, when `sync --once` ran and what it left."""

    counters: Counters
    before: datetime
    after: datetime
    workdir: Path
    sync: subprocess.CompletedProcess[str]
    krs: dict[str, dict[str, Any]]

    @property
    def at(self) -> datetime:
        """When the sync's queries were evaluated, to within half its run time."""
        return self.before + (self.after - self.before) / 2

    def events(self, job: str, window: timedelta | None = None) -> Events:
        """Hand-computed requests of `job` over `window` before `at` (None: the period so
        far), for the event counts: `increase()` gives these to within its extrapolation."""
        start = self.counters.period_start if window is None else self.at - window
        return self.counters.jobs[job].events(start, self.at)

    def ratio(
        self, job: str, measure: Callable[[Events], float], window: timedelta | None = None
    ) -> Between:
        """`measure` (a ratio of events: SLI, burn rate, budget left) of `job` over
        `window` (None: the period so far) as `increase()` counts it, at any instant the
        sync may have queried."""
        instants = [self.before + k * QUERY_TICK for k in range(self.ticks + 1)]
        if window is None:
            starts = [self.counters.period_start + k * RENDERING_LAG / 10 for k in range(11)]
            windows = [(start, at) for start in starts for at in instants]
        else:
            windows = [(at - window, at) for at in instants]
        jobs = self.counters.jobs
        values = [measure(jobs[job].sampled(lo, hi, STEP)) for lo, hi in windows]
        return Between(min(values), max(values))

    @property
    def ticks(self) -> int:
        return math.ceil((self.after - self.before) / QUERY_TICK)

    def sli(self, job: str, window: timedelta | None = None) -> Between:
        return self.ratio(job, lambda e: e.sli, window)

    def budget(self, job: str, window: timedelta | None = None) -> Between:
        return self.ratio(job, lambda e: e.budget_remaining(OBJECTIVE), window)

    def burn(self, job: str, window: str) -> Between:
        return self.ratio(job, lambda e: e.burn_rate(OBJECTIVE), BURN_WINDOWS[window])

    @property
    def elapsed(self) -> float:
        """The fraction of the period gone at `at`."""
        start, end = self.counters.period_start, self.counters.period_end
        return (self.at - start) / (end - start)


@pytest.fixture(scope="module")
def counters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counters]:
    """One Prometheus for the module, the period from 20 days before today to 70 after."""
    t0 = datetime.now(UTC).replace(microsecond=0)
    today = t0.date()
    start = datetime.combine(today - timedelta(days=PERIOD_DAYS_BEFORE), time(), UTC)
    end = datetime.combine(today + timedelta(days=PERIOD_DAYS_AFTER + 1), time(), UTC)
    jobs = traffic(t0, start)
    written = samples(jobs.values(), t0 + AHEAD, STEP)
    # `now`: the 3-hour guard protects a Prometheus that appends scrapes; this one scrapes
    # nothing, so samples up to AHEAD past the real now are safe
    workdir = tmp_path_factory.mktemp("slo-prom")
    with start_prometheus_with_history(workdir, written, now=t0 + AHEAD + HEAD_SPAN) as prom:
        yield Counters(jobs, start, end, prom)


@pytest.fixture(scope="module")
def slo_run(counters: Counters, tmp_path_factory: pytest.TempPathFactory) -> SloRun:
    """One `sync --once` of every SLO KR, then `status --json`."""
    workdir = tmp_path_factory.mktemp("slo")
    last_day = counters.period_end - timedelta(days=1)
    (workdir / "okrs.yaml").write_text(
        config(counters.prometheus.url, counters.period_start, last_day)
    )
    before = datetime.now(UTC)
    sync = okrsync(workdir, "sync", "--once")
    after = datetime.now(UTC)
    status = okrsync(workdir, "status", "--json")
    assert status.returncode == 0, status.stderr
    krs = {
        kr["id"]: kr
        for objective in json.loads(status.stdout)["objectives"]
        for kr in objective["key_results"]
    }
    return SloRun(counters, before, after, workdir, sync, krs)


def query(url: str, promql: str) -> tuple[float, datetime]:
    """The one value of `promql` now, and the instant Prometheus evaluated it at."""
    answer = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    [result] = answer["data"]["result"]
    at, value = result["value"]
    return float(value), datetime.fromtimestamp(at, UTC)


@pytest.mark.parametrize(
    ("job", "window"),
    [
        ("met", "5m"),
        ("met", "period"),
        ("fast", "5m"),
        ("fast", "1h"),
        ("fast", "6h"),
        ("breached", "6h"),
        ("breached", "period"),
        ("recovered", "30m"),
        ("rolling", "28d"),
        ("idle", "1h"),
    ],
)
def test_the_counters_increase_as_computed_by_hand(
    counters: Counters, job: str, window: str
) -> None:
    """What the other tests rely on is what Prometheus answers: increases of about rate
    x duration, and their ratio exactly that of the requests between the edge samples."""
    url, traffic = counters.prometheus.url, counters.jobs[job]
    if window == "period":
        length = datetime.now(UTC).replace(microsecond=0) - counters.period_start
        window = f"{int(length.total_seconds())}s"
    else:
        length = BURN_WINDOWS.get(window, timedelta(days=28))
    good_promql = good_query(job).replace("{window}", window)
    total_promql = total_query(job).replace("{window}", window)
    good, at = query(url, good_promql)
    assert good == pytest.approx(traffic.events(at - length, at).good, rel=1e-3)
    total, at = query(url, total_promql)
    assert total == pytest.approx(traffic.events(at - length, at).total, rel=1e-3)
    if job != "idle":
        ratio, at = query(url, f"{good_promql} / {total_promql}")
        sampled = traffic.sampled(at - length, at, STEP)
        assert ratio == pytest.approx(sampled.good / sampled.total, rel=1e-12)


def test_sync_measures_every_slo_and_fails_only_the_eventless_and_inverted(
    slo_run: SloRun,
) -> None:
    """One failing SLO does not stop the others; sync exits 1 for the three that fail."""
    out = slo_run.sync.stdout
    assert slo_run.sync.returncode == 1, slo_run.sync.stderr
    failed = set(re.findall(r"^✖ ([\w-]+):", out, re.MULTILINE))
    assert failed == {"idle", "absent", "inverted"}, out
    measured = ("met", "slow", "fast", "breached", "recovered", "quiet", "rolling", "errvar")
    for kr in (*measured, "custom-alerts"):
        assert slo_run.krs[kr]["value"] is not None, slo_run.krs[kr]


def assert_burn_rates(slo_run: SloRun, job: str, slo: Mapping[str, Any]) -> None:
    """Every default burn window's rate is the hand-computed one."""
    assert set(slo["burn_rates"]) == set(BURN_WINDOWS)
    for window, rate in slo["burn_rates"].items():
        assert rate in slo_run.burn(job, window), window


def test_met_slo_is_on_track_with_the_budget_left_by_hand(slo_run: SloRun) -> None:
    """0.01% errors all period: SLI 99.99, a tenth of the budget spent, slower than time."""
    kr, period = slo_run.krs["met"], slo_run.events("met")
    slo = kr["slo"]
    assert slo["objective"] == OBJECTIVE and slo["window"] == "period"
    assert slo["sli"] in slo_run.sli("met") and slo["sli"] == pytest.approx(99.99)
    assert kr["value"] == pytest.approx(slo["sli"], abs=1e-9)
    assert slo["total"] == pytest.approx(period.total, rel=1e-4)
    assert slo["good"] == pytest.approx(period.good, rel=1e-4)
    assert slo["error_budget_remaining"] in slo_run.budget("met")
    assert slo["error_budget_remaining"] == pytest.approx(0.9)
    assert_burn_rates(slo_run, "met", slo)
    assert slo["alerts_firing"] == []
    assert slo_run.elapsed > 0.1
    assert kr["status"] == "on_track"


def test_slow_burn_spending_the_budget_faster_than_the_period_is_at_risk(
    slo_run: SloRun,
) -> None:
    """Half the budget gone at about a fifth of the period, the SLI still met, no alert."""
    kr = slo_run.krs["slow"]
    slo = kr["slo"]
    assert slo["sli"] in slo_run.sli("slow") and slo["sli"] == pytest.approx(99.95)
    assert slo["error_budget_remaining"] in slo_run.budget("slow")
    assert slo["error_budget_remaining"] == pytest.approx(0.5)
    assert 1 - slo["error_budget_remaining"] > slo_run.elapsed
    assert_burn_rates(slo_run, "slow", slo)
    assert slo["alerts_firing"] == []
    assert kr["status"] == "at_risk"


def test_fast_burn_fires_the_page_pair_and_is_at_risk(slo_run: SloRun) -> None:
    """2% errors for the last hour (burn 20): 1h/5m fires, 6h/30m not (6h burns ~3.3);
    the period's budget is barely touched, so only the alert makes it at risk."""
    kr = slo_run.krs["fast"]
    slo = kr["slo"]
    for window in ("5m", "30m", "1h"):
        assert slo["burn_rates"][window] == pytest.approx(20)
    burn_6h = slo_run.burn("fast", "6h")
    assert burn_6h.lo > 3 and burn_6h.hi < 4
    assert_burn_rates(slo_run, "fast", slo)
    assert slo["alerts_firing"] == [PAGE]
    assert slo["sli"] in slo_run.sli("fast") and slo["sli"] >= OBJECTIVE
    budget = slo_run.budget("fast")
    assert slo["error_budget_remaining"] in budget
    assert 1 - budget.lo < slo_run.elapsed
    assert kr["status"] == "at_risk"


def test_a_pair_fires_only_while_its_short_window_burns_too(slo_run: SloRun) -> None:
    """Burn 30 from 60 to 10 minutes ago, 0.01 since: 1h still burns ~25 (over 14.4) and
    30m ~20 (over 6), but 5m has recovered and 6h burns ~4: nothing fires, on track."""
    kr = slo_run.krs["recovered"]
    slo = kr["slo"]
    assert slo_run.burn("recovered", "1h").lo > 20 and slo_run.burn("recovered", "30m").lo > 15
    assert slo_run.burn("recovered", "5m").hi < 1 and slo_run.burn("recovered", "6h").hi < 5
    assert_burn_rates(slo_run, "recovered", slo)
    assert slo["alerts_firing"] == []
    assert kr["status"] == "on_track"


def test_breached_slo_is_off_track_even_while_both_pairs_fire(slo_run: SloRun) -> None:
    """0.2% errors all period, 5% in the last hour: SLI ~99.79 under 99.9, budget
    overspent (negative), 1h/5m and 6h/30m (6h burns 10) firing: off track, not at risk."""
    kr = slo_run.krs["breached"]
    slo = kr["slo"]
    assert slo["sli"] in slo_run.sli("breached") and slo["sli"] < OBJECTIVE
    assert kr["value"] == pytest.approx(slo["sli"], abs=1e-9)
    budget = slo_run.budget("breached")
    assert slo["error_budget_remaining"] in budget and budget.hi < -1
    assert slo["burn_rates"]["6h"] == pytest.approx(10, rel=1e-2)
    assert_burn_rates(slo_run, "breached", slo)
    assert sorted(slo["alerts_firing"], key=lambda a: a["long"]) == [PAGE, TICKET]
    assert kr["status"] == "off_track"


def stored_values(slo_run: SloRun, kr: str) -> list[tuple[float | None, str | None]]:
    with sqlite3.connect(slo_run.workdir / "slo.db") as conn:
        found = conn.execute(
            "SELECT value, error FROM measurements WHERE kr_id = ?", [kr]
        ).fetchall()
    return [(value, error) for value, error in found]


def test_no_events_in_the_window_is_an_error_never_100_percent(slo_run: SloRun) -> None:
    """Counters that never move: total 0, so the measurement fails and stores no value."""
    kr = slo_run.krs["idle"]
    assert kr["status"] == "no_data" and kr["value"] is None
    assert "no events in the window" in kr["error"]
    assert re.search(r"^✖ idle: .*no events in the window", slo_run.sync.stdout, re.MULTILINE)
    stored = stored_values(slo_run, "idle")
    assert stored and all(value is None for value, _ in stored)
    assert any("no events in the window" in (error or "") for _, error in stored)


def test_series_that_do_not_exist_are_no_events_either(slo_run: SloRun) -> None:
    """A job Prometheus has never seen (say, a typo in a label): no series, no events."""
    kr = slo_run.krs["absent"]
    assert kr["status"] == "no_data" and kr["value"] is None
    assert "no events in the window" in kr["error"]


def test_burn_windows_without_events_have_no_burn_rate(slo_run: SloRun) -> None:
    """Requests stopped 2 h ago: the 5m, 30m and 1h burn rates are null (not 0, not an
    error), 6h still burns 0.1; the period SLI stands and nothing fires."""
    kr = slo_run.krs["quiet"]
    slo = kr["slo"]
    assert slo["burn_rates"]["5m"] is None
    assert slo["burn_rates"]["30m"] is None
    assert slo["burn_rates"]["1h"] is None
    assert slo["burn_rates"]["6h"] in slo_run.burn("quiet", "6h")
    assert slo["burn_rates"]["6h"] == pytest.approx(0.1)
    assert slo["sli"] in slo_run.sli("quiet")
    assert slo["alerts_firing"] == []
    assert kr["status"] == "on_track"


def test_more_good_than_total_events_is_an_error(slo_run: SloRun) -> None:
    """`good` counting all requests and `total` only the failed ones is a wrong SLO."""
    kr = slo_run.krs["inverted"]
    assert kr["status"] == "no_data" and kr["value"] is None
    assert "good > total" in kr["error"]
    assert all(value is None for value, _ in stored_values(slo_run, "inverted"))


def test_rolling_window_counts_28_days_and_skips_the_period_pace_rule(slo_run: SloRun) -> None:
    """Burn 2 until the period start, 0.1 since: over 28 days the SLI is ~99.938 (over the
    period 99.99), ~62% of the budget spent at ~22% of the period, yet on track: the pace
    rule is only for `window: period`."""
    kr = slo_run.krs["rolling"]
    slo = kr["slo"]
    days_28 = timedelta(days=28)
    assert slo["window"] == "28d"
    sli = slo_run.sli("rolling", days_28)
    assert sli.hi < 99.95 < slo_run.sli("rolling").lo
    assert slo["sli"] in sli
    assert slo["total"] == pytest.approx(slo_run.events("rolling", days_28).total, rel=1e-4)
    budget = slo_run.budget("rolling", days_28)
    assert slo["error_budget_remaining"] in budget
    assert 1 - budget.hi > slo_run.elapsed
    assert_burn_rates(slo_run, "rolling", slo)
    assert slo["alerts_firing"] == []
    assert kr["status"] == "on_track"


def test_errors_query_gives_good_as_total_minus_errors(slo_run: SloRun) -> None:
    """`errors:` instead of `good:`: 0.005% of the requests fail, SLI 99.995."""
    kr, period = slo_run.krs["errvar"], slo_run.events("errvar")
    slo = kr["slo"]
    assert slo["total"] == pytest.approx(period.total, rel=1e-4)
    assert slo["good"] == pytest.approx(period.good, rel=1e-4)
    assert slo["total"] - slo["good"] == pytest.approx(period.bad, rel=1e-3)
    assert slo["sli"] in slo_run.sli("errvar") and slo["sli"] == pytest.approx(99.995)
    assert slo["error_budget_remaining"] in slo_run.budget("errvar")
    assert slo["error_budget_remaining"] == pytest.approx(0.95)
    assert_burn_rates(slo_run, "errvar", slo)
    assert kr["status"] == "on_track"


def test_burn_alerts_given_replace_the_default_pairs(slo_run: SloRun) -> None:
    """One pair 2h/10m at factor 0.05: only its windows are asked, and burn 0.1 fires it."""
    kr = slo_run.krs["custom-alerts"]
    slo = kr["slo"]
    assert set(slo["burn_rates"]) == {"2h", "10m"}
    for window, rate in slo["burn_rates"].items():
        length = {"2h": timedelta(hours=2), "10m": timedelta(minutes=10)}[window]
        assert rate in slo_run.ratio("met", lambda e: e.burn_rate(OBJECTIVE), length)
        assert rate == pytest.approx(0.1)
    assert slo["alerts_firing"] == [{"long": "2h", "short": "10m", "factor": 0.05}]
    assert kr["status"] == "at_risk"


def test_history_keeps_good_total_and_the_rendered_period_window(slo_run: SloRun) -> None:
    """Each measurement keeps its good and total events, and its query has `{window}`
    rendered as the period so far in whole seconds."""
    history = okrsync(slo_run.workdir, "history", "met", "--json")
    assert history.returncode == 0, history.stderr
    [row] = json.loads(history.stdout)
    period = slo_run.events("met")
    assert row["inputs"]["good"] == pytest.approx(period.good, rel=1e-4)
    assert row["inputs"]["total"] == pytest.approx(period.total, rel=1e-4)
    assert row["value"] == pytest.approx(99.99, abs=1e-6)
    lo = int((slo_run.before - slo_run.counters.period_start).total_seconds()) - 1
    hi = int((slo_run.after - slo_run.counters.period_start).total_seconds()) + 1
    windows = set(re.findall(r"\[(\w+)\]", row["query"]))
    [period_window] = windows - set(BURN_WINDOWS)
    assert re.fullmatch(r"\d+s", period_window), row["query"]
    assert lo <= int(period_window[:-1]) <= hi
    assert windows - {period_window} == set(BURN_WINDOWS)
