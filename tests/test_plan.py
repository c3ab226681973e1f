"""`okrsync plan` and `okrsync apply` end to end (in-process CLI, a loopback JSON API)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from okrsync.cli import moment
from okrsync.cli.main import main
from okrsync.review import gitinfo

APPLIED_AT = datetime(2026, 11, 15, 12, tzinfo=UTC)
LATER = "2026-11-15T12:05:00Z"

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  api: {type: http, url: "http://127.0.0.1:PORT"}
objectives:
  - id: eng
    title: Engineering
    key_results:
      - {id: deploys, source: api, extract: a, target: 10}
      - {id: tickets, source: api, extract: c, target: 10}
      - {id: postmortems, source: manual, target: 5}
"""


class Api:
    """A JSON API on 127.0.0.1 answering every GET with `values`."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {"a": 7, "b": 7, "c": 3}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(api.values).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def env(tmp_path: Path, api: Api, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config").mkdir()
    write(tmp_path, CONFIG.replace("PORT", str(api.port)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(moment, "utcnow", lambda: APPLIED_AT)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above
    return tmp_path


def write(env: Path, text: str) -> None:
    (env / "config" / "okrs.yaml").write_text(text)


def edit(env: Path, old: str, new: str) -> None:
    path = env / "config" / "okrs.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "plan", "--json", "--now", LATER, *argv)
    return code, json.loads(out)


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["id"]: k for k in data["krs"]}


def test_plan_without_a_store_adds_everything_and_creates_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No store yet: every KR and objective is added (exit 2), and no file is created."""
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 2
    assert out.splitlines()[0] == (
        "0 to change, 3 to add, 0 to retire; objectives: 0 to change, 1 to add, 0 to retire"
    )
    assert "no applied run in okrsync.db" in out
    assert "+ deploys\n    value:    (none) -> 7\n    progress: (none) -> 70%" in out
    assert "+ objective eng" in out
    assert not (env / "okrsync.db").exists()


def test_apply_then_plan_is_unchanged_with_the_run_in_the_header(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After apply, the same config and values plan as nothing to do (exit 0)."""
    code, out, _ = run(capsys, "apply")
    assert code == 0 and "applied config " in out and "(not in a git repository)" in out
    run_id = out.rsplit(" as run ", 1)[1].strip()
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "0 to change, 0 to add, 0 to retire"
    assert lines[1].startswith(f"compared with run {run_id} (apply) at 2026-11-15T12:00:00")
    assert lines[-1] == "unchanged: deploys, tickets, postmortems"
    code, data = plan_json(capsys)
    assert code == 0 and data["changes"] == 0 and data["errors"] == 0
    assert data["baseline"]["run_id"] == run_id and data["baseline"]["config_commit"] is None
    assert {k["action"] for k in data["krs"]} == {"unchanged"}


def test_json_fields_are_the_documented_ones(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan --json` has exactly the fields the README lists, for scripts to rely on."""
    _, data = plan_json(capsys)
    assert set(data) == {
        "changes",
        "errors",
        "counts",
        "now",
        "idle",
        "config",
        "baseline",
        "krs",
        "objectives",
    }
    assert set(data["config"]) == {"digest", "commit"} and data["baseline"] is None
    assert set(data["krs"][0]) == {
        "id",
        "objective",
        "action",
        "value",
        "progress",
        "status",
        "config",
        "measured",
        "unit",
        "error",
    }
    assert set(data["objectives"][0]) == {"id", "action", "config"}
    assert data["now"] == "2026-11-15T12:05:00.000000Z"


def test_a_changed_query_with_the_same_value_is_a_change(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`extract: a` -> `b` gives the same 7: still exit 2, the query's old and new shown."""
    assert run(capsys, "apply")[0] == 0
    edit(env, "extract: a,", "extract: b,")
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 2
    assert out.splitlines()[0] == "1 to change, 0 to add, 0 to retire"
    assert "~ deploys\n    value:    7\n    progress: 70%\n    status:   on_track\n" in out
    assert '    extract:  "a" -> "b"' in out
    code, data = plan_json(capsys)
    kr = by_id(data)["deploys"]
    assert code == 2 and kr["action"] == "change"
    assert kr["config"] == {"extract": {"old": "a", "new": "b"}}
    assert kr["value"] == {"old": 7.0, "new": 7.0}


def test_a_target_change_shows_progress_and_status_moving(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new target re-judges the same value: progress 70% -> 35%, the target diff beside."""
    assert run(capsys, "apply")[0] == 0
    edit(env, "extract: a, target: 10", "extract: a, target: 20")
    edit(env, "source: manual, target: 5", "source: manual, target: 6")
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 2
    assert "    progress: 70% -> 35%" in out and "    target:   10 -> 20" in out
    assert "~ postmortems (not measured: value from the store)" in out
    code, data = plan_json(capsys)
    kr = by_id(data)["deploys"]
    assert kr["progress"] == {"old": pytest.approx(0.7), "new": pytest.approx(0.35)}
    assert kr["status"] == {"old": "on_track", "new": "at_risk"}
    assert kr["config"] == {"target": {"old": 10.0, "new": 20.0}}


def test_a_value_change_alone_is_a_change(
    env: Path, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same config measuring a different value plans a change (exit 2)."""
    assert run(capsys, "apply")[0] == 0
    api.values["c"] = 4
    code, data = plan_json(capsys)
    kr = by_id(data)["tickets"]
    assert code == 2 and kr["action"] == "change" and kr["config"] == {}
    assert kr["value"] == {"old": 3.0, "new": 4.0}


def test_added_and_retired_krs_and_objectives(
    env: Path, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KR new to the config is added, one gone from it retired; objectives likewise."""
    assert run(capsys, "apply")[0] == 0
    text = (env / "config" / "okrs.yaml").read_text()
    text = text.replace("      - {id: tickets, source: api, extract: c, target: 10}\n", "")
    text = text.replace("title: Engineering", "title: Engineering wins")
    text += (
        "  - id: ops\n    title: Ops\n    key_results:\n"
        "      - {id: pages, source: api, extract: b, start: 10, target: 0}\n"
    )
    write(env, text)
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 2
    assert out.splitlines()[0] == (
        "0 to change, 1 to add, 1 to retire; objectives: 1 to change, 1 to add, 0 to retire"
    )
    assert "- tickets\n    value:    3 -> (none)" in out
    assert "+ pages\n    value:    (none) -> 7" in out
    assert '~ objective eng\n    title:    "Engineering" -> "Engineering wins"' in out
    code, data = plan_json(capsys)
    actions = {k["id"]: k["action"] for k in data["krs"]}
    assert actions == {
        "deploys": "unchanged",
        "postmortems": "unchanged",
        "pages": "add",
        "tickets": "retire",
    }
    assert {o["id"]: o["action"] for o in data["objectives"]} == {"eng": "change", "ops": "add"}
    assert data["counts"] == {"change": 1, "add": 2, "retire": 1, "unchanged": 2}
    assert data["changes"] == 4
    # applied, the plan is empty again; the retired KR stays retired
    assert run(capsys, "apply")[0] == 0
    assert plan_json(capsys)[0] == 0


def test_a_failing_source_exits_1_and_stores_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KR that cannot be measured: exit 1 (over 2), its error shown, the store untouched."""
    assert run(capsys, "apply")[0] == 0
    db = env / "okrsync.db"

    def files() -> tuple[bytes, int, int]:
        """The store's bytes and mtime, and what its WAL holds (a reader may create an
        empty one, and the -shm index, as `status` does: SQLite's, not a write)."""
        wal = env / "okrsync.db-wal"
        return db.read_bytes(), db.stat().st_mtime_ns, wal.stat().st_size if wal.exists() else 0

    before = files()
    edit(env, "extract: c,", "extract: missing,")
    edit(env, "target: 10}\n      - {id: tickets", "target: 12}\n      - {id: tickets")
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 1
    assert "2 to change, 0 to add, 0 to retire; 1 failed to measure" in out
    assert "~ tickets\n" in out and "    error:    api: extract 'missing'" in out
    code, data = plan_json(capsys)
    kr = by_id(data)["tickets"]
    assert code == 1 and data["errors"] == 1
    assert kr["error"].startswith("api: extract 'missing'") and kr["value"]["new"] is None
    assert files() == before
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM measurements").fetchone()[0]
    assert rows == 2


def test_only_measures_some_and_unknown_ids_are_exit_2(
    env: Path, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """--only measures the named KRs; the others keep the store's values; unknown: exit 1
    (an error: plan's 2 means that something would change)."""
    assert run(capsys, "apply")[0] == 0
    api.values["c"] = 9
    code, data = plan_json(capsys, "--only", "deploys")
    krs = by_id(data)
    assert code == 0 and krs["deploys"]["measured"] and not krs["tickets"]["measured"]
    code, _, err = run(capsys, "plan", "--only", "nope")
    assert code == 1 and "unknown key result(s): nope" in err


def test_a_formula_input_change_is_shown_field_by_field(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A changed formula and one changed input: each shown on its own, the value moving."""
    (env / "config" / "ratio.yaml").write_text(
        "objectives:\n  - id: ratios\n    title: Ratios\n    key_results:\n"
        "      - id: ratio\n        formula: x / y * 100\n        target: 100\n"
        "        inputs: {x: {source: api, extract: c}, y: {source: api, extract: a}}\n"
    )
    assert run(capsys, "apply")[0] == 0
    text = (env / "config" / "ratio.yaml").read_text()
    text = text.replace("extract: a}", "extract: c}").replace("* 100", "* 50")
    (env / "config" / "ratio.yaml").write_text(text)
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 2
    assert '    formula:  "x / y * 100" -> "x / y * 50"\n' in out
    assert '    inputs.y.extract: "a" -> "c"\n' in out
    kr = by_id(plan_json(capsys)[1])["ratio"]
    assert set(kr["config"]) == {"formula", "inputs.y.extract"}
    assert kr["value"] == {"old": pytest.approx(300 / 7), "new": pytest.approx(50.0)}


def test_a_kr_moved_to_another_objective_is_a_change(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Moving a KR between objectives shows as its `objective` field changing."""
    assert run(capsys, "apply")[0] == 0
    text = (env / "config" / "okrs.yaml").read_text()
    line = "      - {id: tickets, source: api, extract: c, target: 10}\n"
    text = text.replace(line, "") + f"  - id: ops\n    title: Ops\n    key_results:\n{line}"
    write(env, text)
    code, data = plan_json(capsys)
    kr = by_id(data)["tickets"]
    assert code == 2 and kr["action"] == "change"
    assert kr["config"] == {"objective": {"old": "eng", "new": "ops"}}


def test_an_ended_period_measures_nothing_and_shows_definition_changes(
    env: Path, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the period's end nothing is measured; a changed title still plans a change."""
    assert run(capsys, "apply")[0] == 0
    api.values["a"] = 1
    code, out, _ = run(capsys, "plan", "--now", "2027-01-05")
    assert code == 0, out
    assert "the period 2026-Q4 ended on 2026-12-31: nothing measured" in out
    edit(env, "extract: a, target: 10}", "extract: a, target: 10, title: Deploys}")
    code, out, _ = run(capsys, "plan", "--now", "2027-01-05")
    assert code == 2 and "~ deploys (not measured: value from the store)\n    value:    7\n" in out
    assert '    title:    (none) -> "Deploys"' in out
    code, out, _ = run(capsys, "plan", "--json", "--now", "2027-01-05")
    data = json.loads(out)
    kr = by_id(data)["deploys"]
    assert data["idle"].startswith("the period 2026-Q4 ended") and not kr["measured"]
    assert kr["config"] == {"title": {"old": None, "new": "Deploys"}}


def test_invalid_config_and_foreign_store(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid config is exit 1 with file:line (an error, never "changes"); a database
    not okrsync's is exit 3."""
    edit(env, "target: 10}", "targte: 10}")
    code, _, err = run(capsys, "plan")
    assert code == 1 and "config/okrs.yaml:" in err and "targte" in err
    edit(env, "targte: 10}", "target: 10}")
    sqlite3.connect(env / "other.db").execute("CREATE TABLE t (x)").connection.commit()
    code, _, err = run(capsys, "plan", "--db", "other.db")
    assert code == 3 and "not an okrsync store" in err


def test_apply_takes_no_now(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """apply measures the present, like sync: --now is refused (exit 2)."""
    code, _, err = run(capsys, "apply", "--now", LATER)
    assert code == 2 and "apply measures the sources as they are now" in err


def git(where: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_apply_records_the_config_commit_and_plan_shows_it(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a git repository the run records HEAD (`-dirty` when the YAML differs from it);
    plan names that commit and, after it, plans nothing."""
    git(env / "config", "init", "-q")
    git(env / "config", "add", "okrs.yaml")
    git(env / "config", "commit", "-qm", "okrs")
    sha = git(env / "config", "rev-parse", "HEAD")
    code, out, _ = run(capsys, "apply")
    assert code == 0 and f"(commit {sha[:7]})" in out
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 0 and f"commit {sha[:7]}; planning config " in out
    code, data = plan_json(capsys)
    assert data["baseline"]["config_commit"] == sha == data["config"]["commit"]
    (env / "config" / "notes.txt").write_text("not config")
    assert gitinfo.config_commit(env / "config") == sha
    edit(env, "title: Engineering", "title: Eng")
    assert gitinfo.config_commit(env / "config") == f"{sha}-dirty"
    code, out, _ = run(capsys, "sync", "--once")
    assert code == 0
    commits = sqlite3.connect(env / "okrsync.db").execute(
        "SELECT kind, config_commit FROM runs ORDER BY started_at, rowid"
    )
    assert list(commits) == [("apply", sha), ("sync", f"{sha}-dirty")]


def test_commit_lookup_outside_a_repository_or_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No repository, a missing path, no git on PATH: no commit (None), never an error."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert gitinfo.config_commit(tmp_path) is None
    assert gitinfo.config_commit(tmp_path / "missing" / "okrs.yaml") is None
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gitinfo.config_commit(Path.cwd()) is None
    assert gitinfo.short(None) is None and gitinfo.short("a" * 40 + "-dirty") == "aaaaaaa-dirty"


def test_a_holding_override_is_not_a_change_while_it_holds(
    env: Path, capsys: pytest.CaptureFixture[str], api: Api
) -> None:
    """While an override holds, applying would not replace it (automation only records), so
    a new automated value under it is no change; from its expiry on, it is."""
    assert run(capsys, "apply")[0] == 0
    code, _, err = run(
        capsys, "checkin", "deploys", "9", "--until", "2026-11-20", "--now", "2026-11-15T12:01:00Z"
    )
    assert code == 0, err
    api.values["a"] = 8
    code, data = plan_json(capsys)
    kr = by_id(data)["deploys"]
    assert kr["value"] == {"old": 9.0, "new": 9.0}, kr
    assert code == 0 and kr["action"] == "unchanged"
    code, out, _ = run(capsys, "plan", "--json", "--now", "2026-11-20T00:00:00Z")
    kr = by_id(json.loads(out))["deploys"]
    assert code == 2 and kr["value"]["new"] == 8.0 and kr["action"] == "change"


def test_a_changed_source_definition_with_the_same_value_is_a_change(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The source a KR reads is part of its definition: pointing `api` at another URL (here
    the same server by another name, so the same values) is a change of every KR reading
    it (formula inputs included), shown as `sources.api.url`; manual KRs are untouched."""
    edit(
        env,
        "      - {id: postmortems",
        "      - {id: ratio, formula: x * 2, inputs: {x: {source: api, extract: a}},"
        " target: 20}\n      - {id: postmortems",
    )
    assert run(capsys, "apply")[0] == 0
    assert run(capsys, "plan", "--now", LATER)[0] == 0
    edit(env, 'url: "http://127.0.0.1:', 'url: "http://localhost:')
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 2, out
    assert out.splitlines()[0] == "3 to change, 0 to add, 0 to retire"
    assert '    sources.api.url: "http://127.0.0.1:' in out
    code, data = plan_json(capsys)
    krs = by_id(data)
    assert code == 2 and krs["postmortems"]["action"] == "unchanged"
    for kr_id in ("deploys", "tickets", "ratio"):
        assert krs[kr_id]["action"] == "change"
        assert set(krs[kr_id]["config"]) == {"sources.api.url"}
        assert krs[kr_id]["value"]["old"] == krs[kr_id]["value"]["new"]


def test_a_store_applied_before_sources_were_kept_plans_no_change(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Definitions stored without `sources` (an older okrsync applied them) are not all
    changes at the first plan after an upgrade."""
    assert run(capsys, "apply")[0] == 0
    db = sqlite3.connect(env / "okrsync.db")
    with db:
        db.execute("UPDATE key_results SET definition = json_remove(definition, '$.sources')")
    db.close()
    code, out, _ = run(capsys, "plan", "--now", LATER)
    assert code == 0, out


def test_a_checkin_does_not_apply_the_config(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a run applies a config: a check-in made with an edited, unapplied config must
    not store its definitions, or plan would stop showing the edit (exit 0) although
    nothing was ever measured or judged with it."""
    assert run(capsys, "apply")[0] == 0
    edit(env, "extract: a, target: 10", "extract: a, target: 20")
    assert run(capsys, "plan", "--now", LATER)[0] == 2
    code, _, err = run(capsys, "checkin", "postmortems", "2", "--now", LATER)
    assert code == 0, err
    code, data = plan_json(capsys)
    kr = by_id(data)["deploys"]
    assert code == 2 and kr["config"] == {"target": {"old": 10, "new": 20}}, kr
    assert kr["progress"]["old"] != kr["progress"]["new"]  # judged with the applied target
    assert run(capsys, "apply")[0] == 0
    assert plan_json(capsys)[0] == 0


def test_a_checkin_adds_only_its_own_kr_so_plan_still_adds_the_others(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """KRs and an objective added to the config but not applied stay 'add' after a
    check-in of another KR."""
    assert run(capsys, "apply")[0] == 0
    edit(
        env,
        "      - {id: postmortems, source: manual, target: 5}\n",
        "      - {id: postmortems, source: manual, target: 5}\n"
        "      - {id: newkr, source: manual, target: 3}\n"
        "  - id: ops\n    title: Ops\n    key_results:\n"
        "      - {id: opskr, source: manual, target: 4}\n",
    )
    code, _, err = run(capsys, "checkin", "postmortems", "2", "--now", LATER)
    assert code == 0, err
    code, data = plan_json(capsys)
    krs = by_id(data)
    assert code == 2 and krs["newkr"]["action"] == krs["opskr"]["action"] == "add"
    assert [o["action"] for o in data["objectives"] if o["id"] == "ops"] == ["add"]


def test_a_checkin_into_a_new_store_knows_its_kr(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check-in before any apply still records the KR and the period (history works),
    and the plan adds the rest."""
    code, _, err = run(capsys, "checkin", "postmortems", "2", "--now", LATER)
    assert code == 0, err
    code, out, _ = run(capsys, "history", "postmortems")
    assert code == 0 and "manual by" in out
    code, out, _ = run(capsys, "status", "--now", LATER)
    assert code == 0 and "postmortems" in out
