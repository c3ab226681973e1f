"""A sync run: dedup of identical queries, formulas, failures kept apart, one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes import ScriptedConnector, factory

from okrsync.config.loader import Config, load
from okrsync.connector import QueryBase, Reading, Window
from okrsync.errors import AuthError, StoreError, TransientFetchError, UsageError
from okrsync.measure.measurer import Measurer
from okrsync.measure.plan import describe
from okrsync.service.once import run_once
from okrsync.store.store import Store

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
CONFIG = """\
period: {name: Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  prom: {type: prometheus, url: "http://127.0.0.1:1"}
  other: {type: prometheus, url: "http://127.0.0.1:2"}
objectives:
  - id: o
    title: O
    key_results:
      - {id: a, source: prom, query: "sum(x{since=\\"{period.start}\\"})", target: 10}
      - {id: a-twin, source: prom, query: "sum(x{since=\\"{period.start}\\"})", target: 20}
      - id: ratio
        formula: closed / total * 100
        inputs:
          closed: {source: prom, query: "sum(x{since=\\"{period.start}\\"})"}
          total: {source: other, query: total}
        start: 0
        target: 50
      - {id: broken, source: other, query: broken, target: 1}
      - {id: by-hand, source: manual, target: 3}
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "okrs.yaml"
    path.write_text(CONFIG)
    return load(path)


def scripted() -> dict[str, ScriptedConnector]:
    return {
        "prom": ScriptedConnector({'sum(x{since="2026-10-01"})': 4}),
        "other": ScriptedConnector({"total": 16, "broken": AuthError("other: HTTP 401: check X")}),
    }


def test_identical_queries_are_fetched_once_and_templated(config: Config) -> None:
    """Three uses of one templated query cost one request; formulas use shared inputs."""
    conns = scripted()
    result = run_once(config, None, NOW, measurer=Measurer(config, factory(conns)))
    assert conns["prom"].asked == ['sum(x{since="2026-10-01"})']
    assert result.requests == {"prom": 1, "other": 2}
    rows = {r.kr_id: r for r in result.measurements}
    assert rows["a"].value == 4 and rows["a"].progress == pytest.approx(0.4)
    assert rows["a-twin"].value == 4 and rows["a-twin"].progress == pytest.approx(0.2)
    assert rows["ratio"].value == 25 and rows["ratio"].inputs == {"closed": 4, "total": 16}
    assert "closed / total * 100 with closed = prom:" in (rows["ratio"].query or "")
    assert rows["broken"].value is None and rows["broken"].error == "other: HTTP 401: check X"
    assert rows["broken"].status == "no_data"
    assert "by-hand" not in rows and result.skipped_manual == ["by-hand"]


def test_failed_input_fails_the_formula_without_a_value(config: Config) -> None:
    """A formula whose input failed stores no value, only the input's error."""
    conns = scripted()
    conns["other"].answers["total"] = TransientFetchError("other: connection refused")
    result = run_once(
        config, None, NOW, measurer=Measurer(config, factory(conns), sleep=lambda s: None)
    )
    ratio = next(r for r in result.measurements if r.kr_id == "ratio")
    assert ratio.value is None
    assert ratio.error == "input total: other: connection refused"
    assert conns["other"].asked.count("total") == 3  # the retry policy tried 3 times


def test_run_is_stored_in_one_transaction(config: Config, db_url: str) -> None:
    """Stored runs keep values, errors and queries; failure after a value makes it stale."""
    store = Store(db_url)
    run_once(config, store, NOW, measurer=Measurer(config, factory(scripted())))
    later = datetime(2026, 11, 15, 13, tzinfo=UTC)
    conns = scripted()
    conns["prom"].answers['sum(x{since="2026-10-01"})'] = AuthError("prom: HTTP 401")
    run_once(config, store, later, measurer=Measurer(config, factory(conns)))
    history = store.history("a")
    assert [h["value"] for h in history] == [None, 4]
    assert history[0]["status"] == "stale" and history[0]["error"] == "prom: HTTP 401"
    assert history[1]["query"] == 'sum(x{since="2026-10-01"})'
    obs = store.observations(["a"], later, config.period)["a"]
    assert obs.value == 4 and obs.error == "prom: HTTP 401"
    runs = list(store.db.query("select measured, failed from runs order by started_at"))
    assert runs == [{"measured": 4, "failed": 1}, {"measured": 4, "failed": 4}]


def test_crash_while_writing_leaves_previous_state(
    config: Config, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If writing a run fails half-way, nothing of that run is stored."""
    store = Store(db_url)
    run_once(config, store, NOW, measurer=Measurer(config, factory(scripted())))

    def explode(*args: object) -> None:  # the database fails the run's last write
        store.db.execute("UPDATE no_such_table SET x = 1")

    monkeypatch.setattr(store, "finish_run", explode)
    with pytest.raises(StoreError, match="no_such_table"):
        run_once(
            config,
            store,
            datetime(2026, 11, 16, tzinfo=UTC),
            measurer=Measurer(config, factory(scripted())),
        )
    assert store.db.execute("select count(*) from measurements").fetchone()[0] == 4
    assert store.db.execute("select count(*) from runs").fetchone()[0] == 1


def test_only_measures_named_krs_and_rejects_unknown(config: Config) -> None:
    """--only limits the run; an unknown id is a usage error listing the known ones."""
    result = run_once(config, None, NOW, only=["a"], measurer=Measurer(config, factory(scripted())))
    assert [r.kr_id for r in result.measurements] == ["a"]
    with pytest.raises(UsageError, match=r"unknown key result.*nope"):
        run_once(config, None, NOW, only=["nope"], measurer=Measurer(config, factory(scripted())))


def test_connector_that_cannot_start_fails_only_its_krs(config: Config) -> None:
    """A source whose connector raises on creation fails its KRs; others are measured."""
    conns = scripted()

    def make(name: str, cfg: Config) -> ScriptedConnector:
        if name == "other":
            raise RuntimeError("bad certificate file")
        return conns[name]

    result = run_once(config, None, NOW, measurer=Measurer(config, make))
    rows = {r.kr_id: r for r in result.measurements}
    assert rows["a"].value == 4
    assert rows["broken"].error == "other: cannot start: bad certificate file"


def test_a_long_queue_on_one_source_never_starves_another(tmp_path: Path) -> None:
    """Each source gets its own workers: source A's first fetch can wait for B's and finish."""
    import threading

    lines = [
        "period: {name: Q, start: 2026-10-01, end: 2026-12-31}",
        "sources:",
        '  a: {type: prometheus, url: "http://127.0.0.1:1", max_concurrency: 1}',
        '  b: {type: prometheus, url: "http://127.0.0.1:2", max_concurrency: 1}',
        "objectives:",
        "  - id: o",
        "    title: O",
        "    key_results:",
    ]
    lines += [f"      - {{id: a{i}, source: a, query: q{i}, target: 1}}" for i in range(4)]
    lines += ["      - {id: b0, source: b, query: b0, target: 1}"]
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n")
    config = load(path)
    b_ran = threading.Event()

    class Waits(ScriptedConnector):
        def fetch(self, query: QueryBase, window: Window) -> Reading:
            text = describe(query.model_dump(exclude_none=True))
            if text == "q0" and not b_ran.wait(timeout=10):
                raise TransientFetchError("b never ran while a's queue was long")
            if text == "b0":
                b_ran.set()
            return super().fetch(query, window)

    answers = {f"q{i}": i for i in range(4)} | {"b0": 9}
    conns = {"a": Waits(answers), "b": Waits(answers)}
    result = run_once(config, None, NOW, measurer=Measurer(config, factory(conns), workers=2))
    assert [r.error for r in result.measurements] == [None] * 5
