"""One KR fails alone: a formula that cannot be computed, or a bug while measuring one KR,
gives that KR an error row, and every other KR is measured and stored (sync and daemon)."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from concurrent.futures import wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from clock import pin_cli_clock
from fakes import ScriptedConnector, factory

from okrsync.cli.main import main
from okrsync.config.loader import Config, load
from okrsync.config.model import KeyResult
from okrsync.measure import measurer as measurer_module
from okrsync.measure.measurement import Measurement
from okrsync.measure.measurer import Measurer
from okrsync.measure.plan import Fetch
from okrsync.measure.plan import plan as real_plan
from okrsync.progress import status as status_module
from okrsync.progress.definitions import Definitions, KRDef
from okrsync.service.daemon import Daemon
from okrsync.service.once import run_once
from okrsync.service.options import Options
from okrsync.store.store import Store

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
CONFIG = """\
period: {name: Q4, start: 2026-10-01, end: 2026-12-31}
defaults: {every: 1m}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:9"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: good, source: prom, query: up, target: 10}
      - id: complex
        formula: (up - 100) ** 0.5
        inputs: {up: {source: prom, query: up}}
        target: 10
      - id: buggy
        formula: up * 2
        inputs: {up: {source: prom, query: up}}
        target: 10
      - {id: also-good, source: prom, query: other, target: 10}
      - id: constant
        formula: 2 * 3
        target: 10
"""
ROOT_ERROR = "formula: (-96) ** 0.5 is not a real number (up = 4)"
BUG_ERROR = (
    "formula: internal error: RuntimeError: a bug (this is a bug; debug logging shows the "
    "traceback)"
)


pytestmark = pytest.mark.usefixtures("events")  # conftest: every log event, debug too


@pytest.fixture
def path(tmp_path: Path) -> Path:
    out = tmp_path / "okrs.yaml"
    out.write_text(CONFIG)
    return out


@pytest.fixture
def config(path: Path) -> Config:
    return load(path)


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Computing KR `buggy` raises, as a bug in the measurer would."""
    real = Measurer._measurement

    def measurement(
        self: Measurer, kr: KeyResult, wanted: list[tuple[str | None, Fetch]], now: datetime
    ) -> Measurement:
        if kr.id == "buggy":
            raise RuntimeError("a bug")
        return real(self, kr, wanted, now)

    monkeypatch.setattr(Measurer, "_measurement", measurement)


def scripted() -> dict[str, ScriptedConnector]:
    return {"prom": ScriptedConnector({"up": 4, "other": 7})}


@pytest.mark.usefixtures("buggy")
def test_sync_stores_every_kr_when_one_formula_fails(
    config: Config, tmp_path: Path, events: list[MutableMapping[str, Any]]
) -> None:
    """A complex result and a bug each fail their KR with a stored error row; the other KRs
    are measured and stored, and the bug's traceback goes to the debug log."""
    store = Store(tmp_path / "s.db")
    result = run_once(config, store, NOW, measurer=Measurer(config, factory(scripted())))
    rows = {m.kr_id: m for m in result.measurements}
    assert [m.kr_id for m in result.measurements] == [
        "good",
        "complex",
        "buggy",
        "also-good",
        "constant",
    ]
    assert (rows["good"].value, rows["also-good"].value, rows["constant"].value) == (4, 7, 6)
    assert rows["complex"].error == ROOT_ERROR and rows["complex"].inputs == {"up": 4}
    assert rows["buggy"].error == BUG_ERROR and rows["buggy"].source == "formula"
    assert [m.kr_id for m in result.failed] == ["complex", "buggy"]
    for kr in ("good", "complex", "buggy", "also-good", "constant"):
        assert len(store.history(kr)) == 1
    assert store.history("complex")[0]["status"] == "no_data"
    assert store.history("buggy")[0]["error"] == BUG_ERROR
    [trace] = [e for e in events if e["event"] == "kr_failed_traceback"]
    assert trace["log_level"] == "debug" and trace["kr"] == "buggy"
    assert isinstance(trace["exc_info"], RuntimeError)


@pytest.mark.usefixtures("buggy")
def test_a_failing_kr_turns_stale_on_its_prior_value(config: Config, tmp_path: Path) -> None:
    """After a good value, a failed computation keeps that value and marks the KR stale."""
    store = Store(tmp_path / "s.db")
    conns = scripted()
    conns["prom"].answers["up"] = 200
    run_once(config, store, NOW, measurer=Measurer(config, factory(conns)))
    assert store.history("complex")[0]["value"] == pytest.approx(10)
    later = datetime(2026, 11, 15, 13, tzinfo=UTC)
    run_once(config, store, later, measurer=Measurer(config, factory(scripted())))
    latest = store.history("complex")[0]
    assert latest["status"] == "stale" and latest["error"] == ROOT_ERROR
    obs = store.observations(["complex"], later, config.period)["complex"]
    assert obs.value == pytest.approx(10) and obs.error == ROOT_ERROR


def test_a_plan_that_fails_for_one_kr_fails_only_that_kr(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning that raises for one KR fails it alone; the rest still share their fetches."""

    def plan(cfg: Config, krs: list[KeyResult], now: datetime) -> Any:
        if any(kr.id == "also-good" for kr in krs):
            raise KeyError("period.nope")
        return real_plan(cfg, krs, now)

    monkeypatch.setattr(measurer_module, "plan", plan)
    conns = scripted()
    result = run_once(config, None, NOW, measurer=Measurer(config, factory(conns)))
    rows = {m.kr_id: m for m in result.measurements}
    assert rows["also-good"].error == (
        "internal error: KeyError: 'period.nope' (this is a bug; debug logging shows the traceback)"
    )
    assert rows["also-good"].source == "prom" and rows["also-good"].status == "no_data"
    assert rows["good"].value == 4 and conns["prom"].asked == ["up"]


def test_a_fetch_that_fails_outside_its_guard_fails_only_its_krs(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even an exception escaping the fetch worker fails only the KRs of that query."""
    real = Measurer._run

    def run(self: Measurer, fetch: Fetch) -> None:
        if fetch.text == "other":
            raise RuntimeError("worker bug")
        real(self, fetch)

    monkeypatch.setattr(Measurer, "_run", run)
    result = run_once(config, None, NOW, measurer=Measurer(config, factory(scripted())))
    rows = {m.kr_id: m for m in result.measurements}
    assert rows["also-good"].error == "prom: unexpected RuntimeError: worker bug"
    assert rows["good"].value == 4 and rows["complex"].error == ROOT_ERROR


def test_cli_sync_exits_1_and_status_shows_the_formula_error(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sync --once` through the CLI and a real Prometheus connector (HTTP faked): exit 1
    (some failed), the others stored; `status --json` shows the failed KR with its error."""
    import responses

    pin_cli_clock(monkeypatch, NOW)

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlparse(request.url).query)["query"][0]
        value = {"up": "4", "other": "7"}[query]
        body = {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, value]}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    db = str(tmp_path / "cli.db")
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, "http://127.0.0.1:9/api/v1/query", callback=answer)
        code = main(["sync", "--once", "--config", str(path), "--db", db])  # now: NOW
    out, _ = capsys.readouterr()
    assert code == 1 and "(-96) ** 0.5 is not a real number" in out
    code = main(["status", "--json", "--config", str(path), "--db", db])
    out, _ = capsys.readouterr()
    assert code == 0
    krs = {k["id"]: k for k in json.loads(out)["objectives"][0]["key_results"]}
    assert krs["complex"]["status"] == "no_data" and krs["complex"]["error"] == ROOT_ERROR
    assert krs["good"]["value"] == 4 and krs["also-good"]["value"] == 7
    assert krs["constant"]["value"] == 6 and krs["buggy"]["value"] == 8


class Clock:
    """A clock the test moves by hand, from NOW (inside the config's period)."""

    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def daemon(path: Path, tmp_path: Path) -> Iterator[Daemon]:
    clock = Clock()
    running = Daemon(
        Options(path, tmp_path / "okrsync.db", listen=None),
        clock=clock,
        factory=factory(scripted()),
    )
    running.start()
    clock.now += 7  # past the jitter window (10% of 1m)
    yield running
    running.shutdown()


def one_round(daemon: Daemon) -> dict[str, list[dict[str, Any]]]:
    """Run every due batch to its end; the stored history of each KR."""
    daemon.tick()
    wait(set(daemon.futures), timeout=10)
    with daemon.store_lock:
        return {k: daemon.store.history(k) for k in ("good", "complex", "buggy", "also-good")}


@pytest.mark.usefixtures("buggy")
def test_daemon_batch_stores_every_kr_when_one_formula_fails(
    daemon: Daemon, events: list[MutableMapping[str, Any]]
) -> None:
    """In the daemon, the failing formula and the bug get error rows and the others values;
    the batch does not fail and the failed KRs are scheduled again."""
    history = one_round(daemon)
    assert [h[0]["value"] for h in history.values()] == [4, None, None, 7]
    assert history["complex"][0]["error"] == ROOT_ERROR
    assert history["buggy"][0]["error"] == BUG_ERROR
    assert daemon.obs["complex"].error == ROOT_ERROR and daemon.obs["good"].value == 4
    assert not [e for e in events if e["event"] == "batch_failed"]
    assert {"complex", "buggy"} <= set(daemon.schedule.due)


def test_daemon_gives_every_kr_a_row_even_if_the_measurer_breaks(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the measurer itself raise, every KR of the batch gets an error row."""
    assert daemon.active is not None

    def broken(krs: list[KeyResult], now: datetime) -> list[Measurement]:
        raise MemoryError("measurer bug")

    monkeypatch.setattr(daemon.active.measurer, "measure", broken)
    history = one_round(daemon)
    for rows in history.values():
        [row] = rows
        assert row["value"] is None and "internal error: MemoryError: measurer bug" in row["error"]


def break_judging(monkeypatch: pytest.MonkeyPatch, kr_id: str) -> None:
    """Make the status step raise (a stand-in for a bug) for KR `kr_id` alone."""
    real = status_module.assess

    def assess(defs: Definitions, kr: KRDef, m: Measurement, prior: Any) -> Measurement:
        if kr.id == kr_id:
            raise ZeroDivisionError("judging")
        return real(defs, kr, m, prior)

    monkeypatch.setattr(status_module, "assess", assess)


def test_daemon_gives_a_row_to_a_kr_whose_assessment_breaks(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug judging one KR's progress fails that KR's row (no_data: no prior value)."""
    break_judging(monkeypatch, "good")
    history = one_round(daemon)
    assert history["good"][0]["status"] == "no_data"
    assert "ZeroDivisionError: judging" in history["good"][0]["error"]
    assert history["also-good"][0]["value"] == 7


def test_a_long_chain_of_parents_evaluates_without_recursion(config: Config) -> None:
    """The objective tree and its JSON are built without recursion: 3,000 parents deep
    (deeper than Python's recursion limit) still evaluates, in config order."""
    import dataclasses

    from okrsync.config.model import Objective
    from okrsync.progress.definitions import from_config
    from okrsync.progress.maths import Observation
    from okrsync.progress.tree import evaluate

    chain = [Objective(id="link-0", title="L"), Objective(id="side", title="S")]
    chain += [Objective(id=f"link-{i}", title="L", parent=f"link-{i - 1}") for i in range(1, 3000)]
    leaf = config.objectives[0].model_copy(update={"parent": "link-2999"})
    deep = dataclasses.replace(config, objectives=[*chain, leaf])
    tree = evaluate(from_config(deep), {"good": Observation(5.0, NOW, False, NOW, None)}, NOW)
    assert [v.objective.id for v in tree.roots] == ["link-0", "side"]
    assert len(tree.walk()) == 3002 and tree.walk()[-1].objective.id == "side"
    doc = tree.roots[0].as_json()
    for _ in range(3000):
        assert doc["progress"] == pytest.approx(0.5) and doc["items"] == 1
        [doc] = doc["children"]
    assert doc["id"] == "o" and doc["key_results"][0]["id"] == "good" and not doc["children"]


def test_sync_gives_a_row_to_a_kr_whose_assessment_breaks(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sync --once, like the daemon: a bug judging one KR fails that KR, the rest are stored."""
    break_judging(monkeypatch, "good")
    store = Store(tmp_path / "s.db")
    result = run_once(config, store, NOW, measurer=Measurer(config, factory(scripted())))
    rows = {m.kr_id: m for m in result.measurements}
    assert rows["good"].value is None and "ZeroDivisionError: judging" in str(rows["good"].error)
    assert rows["also-good"].value == 7
    assert store.history("good")[0]["status"] == "no_data"
