"""Periods (issue 9) end to end, black-box, from the written contract (spec/periods.md).

Every number below is computed by hand in a comment next to its assertion. The CLI's
clock is pinned to 2026-12-01 (UTC), when these were written: a Q4 config
(2026-10-01..2026-12-31) is running, a Q1 config (2027-01-01..2027-03-31) has not started.
`sync --once` takes no --now and uses that clock; `status`, `checkin`, `history` and
`grade` take `--now` (without it, the pinned clock too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clock import pin_cli_clock
from prometheus_server import PrometheusServer, wait_for_value

from okrsync.cli.main import main

Q3 = "period: {name: 2026-Q3, start: 2026-07-01, end: 2026-09-30}"
Q4 = "period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}"
Q1 = "period: {name: 2027-Q1, start: 2027-01-01, end: 2027-03-31}"

# Q4's end as an instant: the first instant after 2026-12-31 (UTC); accept the last second
# of the end day too, the contract says only "min(now, period end)".
Q4_END_INSTANTS = ("2027-01-01T00:00:00Z", "2026-12-31T23:59:59Z", "2026-12-31T23:59:59.999")

Doc = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project dir (config/ and the default okrsync.db live here), on 2026-12-01."""
    pin_cli_clock(monkeypatch, datetime(2026, 12, 1, 12, tzinfo=UTC))
    (tmp_path / "config").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(env: Path, text: str) -> None:
    (env / "config" / "okrs.yaml").write_text(text)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must exit 0; its stdout."""
    code, out, err = run(capsys, *argv)
    assert code == 0, f"{argv}: exit {code}\nstdout: {out}\nstderr: {err}"
    return out


def status_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Doc:
    doc: Doc = json.loads(ok(capsys, "status", "--json", *argv))
    return doc


def grade_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Doc:
    doc: Doc = json.loads(ok(capsys, "grade", "--json", *argv))
    return doc


def objectives(doc: Doc) -> dict[str, Doc]:
    """Every objective of a status document's tree, by id."""
    found: dict[str, Doc] = {}

    def walk(items: list[Doc]) -> None:
        for o in items:
            found[o["id"]] = o
            walk(o.get("children", []))

    walk(doc["objectives"])
    return found


def krs(doc: Doc) -> dict[str, Doc]:
    """Every KR of a status document's tree, by id."""
    return {k["id"]: k for o in objectives(doc).values() for k in o["key_results"]}


def history(capsys: pytest.CaptureFixture[str], kr: str) -> list[Doc]:
    rows: list[Doc] = json.loads(ok(capsys, "history", kr, "--json"))
    return rows


def history_or_none(capsys: pytest.CaptureFixture[str], kr: str) -> list[Doc]:
    """history --json, or [] when the store has never seen the KR (exit 2)."""
    code, out, err = run(capsys, "history", kr, "--json")
    if code == 2 and "no key result" in err:
        return []
    assert code == 0, err
    rows: list[Doc] = json.loads(out)
    return rows


def checkin(capsys: pytest.CaptureFixture[str], kr: str, value: str, now: str) -> str:
    return ok(capsys, "checkin", kr, value, "--now", now)


# --- 1. Q4 values do not leak into Q1 ------------------------------------------------------

LEAK = """\
{period}
objectives:
  - id: reliability
    title: Reliable
    key_results:
      - {{id: postmortems, source: manual, start: 0, target: 10}}
"""


def test_q4_values_do_not_leak_into_q1(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's repro: a Q4 check-in is `previous` in Q1, not the KR's value there."""
    write_config(env, LEAK.format(period=Q4))
    out = checkin(capsys, "postmortems", "4", "2026-11-15")
    assert "progress 40%" in out  # (4 - 0) / (10 - 0) = 0.4
    write_config(env, LEAK.format(period=Q1))

    doc = status_json(capsys, "--now", "2027-01-02")
    assert doc["period"] == {
        "name": "2027-Q1",
        "start": "2027-01-01",
        "end": "2027-03-31",
        "timezone": "UTC",
        "ended": False,
    }
    assert doc["now"] == "2027-01-02T00:00:00Z" and doc["as_of"] == "2027-01-02T00:00:00Z"
    # one day of Q1's 31 + 28 + 31 = 90 days has passed
    assert doc["expected_progress"] == pytest.approx(1 / 90)
    kr = krs(doc)["postmortems"]
    assert kr["value"] is None and kr["progress"] is None and kr["status"] == "no_data"
    assert kr["score"] is None and kr["grade"] is None
    assert kr["start_from"] is None
    # Q4's final value 4 scored (4 - 0) / 10 = 0.4 there
    assert kr["previous"] == {"period": "2026-Q4", "value": 4, "score": 0.4}
    obj = objectives(doc)["reliability"]
    assert obj["progress"] is None and obj["status"] == "no_data"
    assert obj["score"] is None and obj["grade"] is None
    assert doc["average_score"] is None

    text = ok(capsys, "status", "--now", "2027-01-02")
    assert "last period: 4" in text and "40%" not in text
    # the history stays: the Q4 row is still there
    assert [r["value"] for r in history(capsys, "postmortems")] == [4]


# --- 2. grades and scores at Q4's end --------------------------------------------------------

GRADED = """\
{period}
{defaults}
objectives:
  - id: growth
    title: Grow
    weight: 2
    key_results:
      - {{id: signups, source: manual, start: 100, target: 200, weight: 1}}
      - {{id: churn, source: manual, start: 10, target: 5, weight: 2}}
      - {{id: nps, source: manual, start: 0, target: 50, weight: 3}}
      - {{id: referrals, source: manual, start: 0, target: 10, weight: 5}}
  - id: mobile
    title: Mobile
    parent: growth
    weight: 1
    key_results:
      - {{id: app-rating, source: manual, start: 3, target: 4.5}}
  - id: reliability
    title: Reliable
    kind: committed
    weight: 1
    key_results:
      - {{id: uptime-slo, source: manual, start: 99, target: 99.9}}
      - {{id: oncall, source: manual, start: 0, target: 4}}
      - {{id: postmortems, source: manual, start: 0, target: 10, kind: aspirational}}
"""

# value checked in on 2026-11-20 (inside Q4), per KR
GRADED_VALUES = {
    "signups": "162.5",  # (162.5-100)/100 = 0.625 -> 0.63 (half up; round() would say 0.62)
    "churn": "8",  # decreasing: (8-10)/(5-10) = 0.4 -> fair
    "nps": "60",  # 60/50 = 1.2, clamped -> 1.0 -> good
    # referrals: no value -> score null, left out of growth's mean despite its weight 5
    "app-rating": "3.3",  # (3.3-3)/1.5 = 0.2 -> poor; mobile = 0.2 -> poor
    "uptime-slo": "99.9",  # (99.9-99)/(99.9-99) = 1.0 -> met (committed from objective)
    "oncall": "3",  # 3/4 = 0.75 -> missed (committed from objective)
    "postmortems": "7",  # 7/10 = 0.7 -> good (own kind aspirational; 0.7 is the band edge)
}
# growth = (0.63*1 + 0.4*2 + 1.0*3 + mobile 0.2*1) / (1+2+3+1) = 4.63/7 = 0.6614 -> 0.66 fair
# reliability = (1.0 + 0.75 + 0.7) / 3 = 0.8167 -> 0.82, committed -> missed
# average = (growth 0.66*2 + reliability 0.82*1) / 3 = 2.14/3 = 0.7133 -> 0.71
# (mobile is not top-level, so it counts only through growth)
GRADED_SCORES = {
    "signups": (0.63, "fair"),
    "churn": (0.4, "fair"),
    "nps": (1.0, "good"),
    "referrals": (None, None),
    "app-rating": (0.2, "poor"),
    "uptime-slo": (1.0, "met"),
    "oncall": (0.75, "missed"),
    "postmortems": (0.7, "good"),
}
GRADED_OBJECTIVES = {
    "growth": ("aspirational", 0.66, "fair"),
    "mobile": ("aspirational", 0.2, "poor"),
    "reliability": ("committed", 0.82, "missed"),
}
GRADED_KINDS = {
    "signups": "aspirational",
    "churn": "aspirational",
    "nps": "aspirational",
    "referrals": "aspirational",
    "app-rating": "aspirational",
    "uptime-slo": "committed",
    "oncall": "committed",
    "postmortems": "aspirational",
}


def graded_store(env: Path, capsys: pytest.CaptureFixture[str], defaults: str = "") -> None:
    write_config(env, GRADED.format(period=Q4, defaults=defaults))
    for kr, value in GRADED_VALUES.items():
        checkin(capsys, kr, value, "2026-11-20")


def test_scores_and_grades_at_q4_end_in_status(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status after Q4's end: the ended period, graded as of its end, with hand-made scores."""
    graded_store(env, capsys)
    doc = status_json(capsys, "--now", "2027-01-05")
    assert doc["period"]["name"] == "2026-Q4" and doc["period"]["ended"] is True
    assert doc["now"] == "2027-01-05T00:00:00Z"
    assert doc["as_of"].startswith(Q4_END_INSTANTS)
    assert doc["expected_progress"] == pytest.approx(1.0)
    got = {k: (v["score"], v["grade"]) for k, v in krs(doc).items()}
    assert got == GRADED_SCORES
    assert {k: v["kind"] for k, v in krs(doc).items()} == GRADED_KINDS
    objs = {k: (v["kind"], v["score"], v["grade"]) for k, v in objectives(doc).items()}
    assert objs == GRADED_OBJECTIVES
    assert doc["average_score"] == 0.71
    # progress stays what it was: raw 1.2 for nps, clamped 1.0
    nps = krs(doc)["nps"]
    assert nps["progress"] == pytest.approx(1.0) and nps["progress_raw"] == pytest.approx(1.2)
    assert nps["previous"] is None  # no period before Q4

    text = ok(capsys, "status", "--now", "2027-01-05")
    for word in ("good", "fair", "poor", "met", "missed", "0.63", "0.82"):
        assert word in text, word
    for word in ("on_track", "at_risk", "off_track"):
        assert word not in text, word


def test_grade_scorecard_json_and_markdown(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """grade after Q4's end: committed misses, flattened pre-order objectives, Markdown."""
    graded_store(env, capsys)
    doc = grade_json(capsys, "--now", "2027-01-05")
    assert doc["ended"] is True and doc["period"]["name"] == "2026-Q4"
    assert doc["period"]["ended"] is True
    assert doc["average_score"] == 0.71
    # the only committed KR below 1.0: oncall 3 of 4
    # (the contract names these keys; extra ones, such as the KR's title, are fine)
    [miss] = doc["committed_misses"]
    keys = ("id", "objective", "value", "target", "score")
    assert {k: miss[k] for k in keys} == {
        "id": "oncall",
        "objective": "reliability",
        "value": 3,
        "target": 4,
        "score": 0.75,
    }
    # pre-order: growth, its child mobile, then reliability
    assert [o["id"] for o in doc["objectives"]] == ["growth", "mobile", "reliability"]
    assert [o["parent"] for o in doc["objectives"]] == [None, "growth", None]
    assert {o["id"]: (o["kind"], o["score"], o["grade"]) for o in doc["objectives"]} == (
        GRADED_OBJECTIVES
    )
    by_id = {k["id"]: k for o in doc["objectives"] for k in o["key_results"]}
    assert {k: (v["score"], v["grade"]) for k, v in by_id.items()} == GRADED_SCORES
    assert by_id["signups"]["value"] == 162.5 and by_id["signups"]["start"] == 100
    assert by_id["churn"]["target"] == 5 and by_id["referrals"]["value"] is None
    assert by_id["uptime-slo"]["kind"] == "committed"

    text = ok(capsys, "grade", "--now", "2027-01-05")
    assert "2026-Q4" in text and "0.71" in text
    # committed misses come first, before the objectives' KRs
    assert text.index("oncall") < text.index("signups")

    md = ok(capsys, "grade", "--now", "2027-01-05", "--md", "-")
    for word in ("2026-Q4", *GRADED_VALUES, "referrals", "0.63", "0.66", "0.82", "0.71"):
        assert word in md, word
    ok(capsys, "grade", "--now", "2027-01-05", "--md", str(env / "card.md"))
    assert "oncall" in (env / "card.md").read_text()


def test_grade_while_running_and_unknown_period(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scores are there while the period runs (not final); an unknown period is exit 2."""
    graded_store(env, capsys)
    doc = grade_json(capsys, "--now", "2026-11-25")
    assert doc["ended"] is False and doc["average_score"] == 0.71
    s = status_json(capsys, "--now", "2026-11-25")
    assert s["period"]["ended"] is False
    assert krs(s)["signups"]["score"] == 0.63 and krs(s)["signups"]["grade"] == "fair"
    code, _, err = run(capsys, "grade", "--period", "2025-Q1")
    assert code == 2 and "2026-Q4" in err


def test_custom_grading_bands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """defaults.grading moves the bands: same scores, other grades, no committed misses."""
    bands = (
        "defaults:\n  grading:\n"
        "    aspirational: {good: 0.6, fair: 0.15}\n    committed: {met: 0.75}"
    )
    graded_store(env, capsys, defaults=bands)
    doc = status_json(capsys, "--now", "2027-01-05")
    assert {k: (v["score"], v["grade"]) for k, v in krs(doc).items()} == {
        "signups": (0.63, "good"),  # 0.63 >= 0.6
        "churn": (0.4, "fair"),  # 0.15 <= 0.4 < 0.6
        "nps": (1.0, "good"),
        "referrals": (None, None),
        "app-rating": (0.2, "fair"),  # 0.2 >= 0.15
        "uptime-slo": (1.0, "met"),
        "oncall": (0.75, "met"),  # 0.75 >= 0.75
        "postmortems": (0.7, "good"),
    }
    assert {k: v["grade"] for k, v in objectives(doc).items()} == {
        "growth": "good",  # 0.66 >= 0.6
        "mobile": "fair",  # 0.2
        "reliability": "met",  # 0.82 >= 0.75
    }
    assert grade_json(capsys, "--now", "2027-01-05")["committed_misses"] == []


# --- 3. start: previous ----------------------------------------------------------------------

PREVIOUS_Q4 = """\
{period}
objectives:
  - id: delivery
    title: Deliver
    key_results:
      - {{id: velocity, source: manual, start: 0, target: 40}}
"""
PREVIOUS_Q1 = """\
{period}
objectives:
  - id: delivery
    title: Deliver
    key_results:
      - {{id: velocity, source: manual, start: previous, target: 50}}
      - {{id: newbie, source: manual, start: previous, target: 10}}
"""


def test_start_previous_takes_the_q4_final_value(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """start: previous = the KR's final Q4 value; none there -> an error, never a progress."""
    write_config(env, PREVIOUS_Q4.format(period=Q4))
    checkin(capsys, "velocity", "20", "2026-10-15")
    checkin(capsys, "velocity", "30", "2026-11-20")  # final (latest) Q4 value: 30
    write_config(env, PREVIOUS_Q1.format(period=Q1))
    ok(capsys, "validate")

    out = checkin(capsys, "velocity", "38", "2027-01-02")
    assert "progress 40%" in out  # start 30: (38 - 30) / (50 - 30) = 8/20 = 0.4

    _, out, err = run(capsys, "checkin", "newbie", "5", "--now", "2027-01-02")
    assert "no value in the previous period" in out + err
    assert "progress 50%" not in out  # would be 5/10 with a start of 0
    # whatever the check-in stored (an error row or nothing), it is no value
    assert all(r["value"] is None for r in history_or_none(capsys, "newbie"))

    doc = status_json(capsys, "--now", "2027-01-03")
    v = krs(doc)["velocity"]
    assert v["start"] == 30 and v["start_from"] == "previous" and v["target"] == 50
    assert v["value"] == 38 and v["progress"] == pytest.approx(0.4) and v["score"] == 0.4
    # Q4: 30 of 0..40 = 0.75
    assert v["previous"] == {"period": "2026-Q4", "value": 30, "score": 0.75}
    n = krs(doc)["newbie"]
    assert n["start_from"] == "previous" and n["previous"] is None
    assert n["progress"] is None and n["score"] is None and n["grade"] is None
    assert n["status"] in ("no_data", "stale")
    # the contract quotes the error's wording; a lead-in before it is fine
    assert "no value in the previous period (2026-Q4)" in n["error"]
    # the delivery objective rolls up from velocity only: 0.4
    assert objectives(doc)["delivery"]["progress"] == pytest.approx(0.4)


# --- 4. a past period with its own targets ---------------------------------------------------

TARGETS = """\
{period}
objectives:
  - id: shipping
    title: Ship
    {kind}
    key_results:
      - {{id: deploys, source: manual, start: 0, target: {target}, weight: {weight}}}
      - {{id: other, source: manual, start: 0, target: 4}}
"""


def test_past_period_keeps_its_own_targets(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Q1 raises the target to 20; Q4 is still shown with its target 10, kind and score."""
    write_config(env, TARGETS.format(period=Q4, kind="", target=10, weight=1))
    checkin(capsys, "deploys", "6", "2026-11-10")
    checkin(capsys, "other", "3", "2026-11-10")
    write_config(env, TARGETS.format(period=Q1, kind="kind: committed", target=20, weight=3))
    checkin(capsys, "deploys", "5", "2027-01-20")

    q4 = status_json(capsys, "--period", "2026-Q4", "--now", "2027-01-10")
    assert q4["period"]["name"] == "2026-Q4" and q4["period"]["ended"] is True
    d = krs(q4)["deploys"]
    # Q4's definitions: target 10, weight 1, aspirational; 6/10 = 0.6 -> fair
    assert d["target"] == 10 and d["weight"] == 1 and d["kind"] == "aspirational"
    assert d["value"] == 6 and d["score"] == 0.6 and d["grade"] == "fair"
    # shipping in Q4 = (0.6*1 + 0.75*1) / 2 = 0.675 -> 0.68 (aspirational: fair)
    s = objectives(q4)["shipping"]
    assert s["kind"] == "aspirational" and s["score"] == 0.68 and s["grade"] == "fair"
    assert q4["average_score"] == 0.68

    # --now inside Q4 under the Q1 config: the stored Q4 definitions as of that instant
    mid = krs(status_json(capsys, "--now", "2026-11-30"))["deploys"]
    assert mid["target"] == 10 and mid["value"] == 6 and mid["score"] == 0.6

    card = grade_json(capsys, "--period", "2026-Q4", "--now", "2027-01-10")
    [shipping] = card["objectives"]
    assert {k["id"]: k["target"] for k in shipping["key_results"]} == {"deploys": 10, "other": 4}
    assert card["committed_misses"] == []

    q1 = status_json(capsys, "--now", "2027-02-01")
    assert q1["period"]["name"] == "2027-Q1"
    d = krs(q1)["deploys"]
    # Q1's definitions: target 20, committed; 5/20 = 0.25 -> missed
    assert d["target"] == 20 and d["weight"] == 3 and d["kind"] == "committed"
    assert d["value"] == 5 and d["progress"] == pytest.approx(0.25) and d["score"] == 0.25
    assert d["grade"] == "missed"
    assert d["previous"] == {"period": "2026-Q4", "value": 6, "score": 0.6}
    # other: no Q1 value; shipping rolls up from deploys alone
    assert krs(q1)["other"]["status"] == "no_data"
    assert krs(q1)["other"]["previous"] == {"period": "2026-Q4", "value": 3, "score": 0.75}
    assert objectives(q1)["shipping"]["score"] == 0.25


# --- 5. check-ins outside the period ---------------------------------------------------------

OUTSIDE = """\
{period}
objectives:
  - id: o
    title: O
    key_results:
      - {{id: kr, source: manual, start: 0, target: 10}}
"""


def test_checkins_outside_the_period_are_refused(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A check-in outside Q1 is exit 2 naming Q1's dates, unless --period names its period."""
    write_config(env, OUTSIDE.format(period=Q4))
    checkin(capsys, "kr", "1", "2026-10-05")  # stores period 2026-Q4
    write_config(env, OUTSIDE.format(period=Q1))

    code, _, err = run(capsys, "checkin", "kr", "3", "--now", "2026-12-15")
    assert code == 2 and "2027-01-01" in err and "2027-03-31" in err
    assert [r["value"] for r in history(capsys, "kr")] == [1]

    out = ok(capsys, "checkin", "kr", "3", "--now", "2026-12-15", "--period", "2026-Q4")
    assert "progress 30%" in out  # Q4's 0..10: 3/10
    q4 = status_json(capsys, "--period", "2026-Q4", "--now", "2027-01-10")
    kr = krs(q4)["kr"]
    assert kr["value"] == 3 and kr["measured_at"] == "2026-12-15T00:00:00Z"
    assert kr["score"] == 0.3 and kr["grade"] == "poor"
    # Q1 is untouched: no data, previous = Q4's final value 3
    q1 = krs(status_json(capsys, "--now", "2027-01-10"))["kr"]
    assert q1["status"] == "no_data" and q1["previous"]["value"] == 3

    # before Q4's start, even with --period: exit 2
    code, _, err = run(capsys, "checkin", "kr", "3", "--now", "2026-09-15", "--period", "2026-Q4")
    assert code == 2 and "2026-10-01" in err
    # unknown --period: exit 2 listing the known periods
    code, _, err = run(capsys, "checkin", "kr", "3", "--now", "2026-09-15", "--period", "2026-Q3")
    assert code == 2 and "2026-Q4" in err and "2027-Q1" in err
    code, _, err = run(capsys, "status", "--period", "2026-Q3")
    assert code == 2 and "2026-Q4" in err and "2027-Q1" in err
    # before every known period: exit 2 naming them with their dates
    code, _, err = run(capsys, "status", "--now", "2026-06-01")
    assert code == 2
    for word in ("2026-Q4", "2027-Q1", "2026-10-01", "2027-03-31"):
        assert word in err, word
    assert [r["value"] for r in history(capsys, "kr")] == [3, 1]


def test_status_in_a_gap_between_periods(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Q3 stored, then a Q1 config: 2026-11-01 is in neither -> exit 2 listing both."""
    write_config(env, OUTSIDE.format(period=Q3))
    checkin(capsys, "kr", "2", "2026-08-01")
    write_config(env, OUTSIDE.format(period=Q1))
    code, _, err = run(capsys, "status", "--now", "2026-11-01")
    assert code == 2 and "2026-Q3" in err and "2027-Q1" in err
    # Q3 is Q1's previous period (the stored one before it by start date)
    kr = krs(status_json(capsys, "--now", "2027-01-02"))["kr"]
    assert kr["previous"] == {"period": "2026-Q3", "value": 2, "score": 0.2}


# --- 6. a Prometheus KR across the roll-over -------------------------------------------------

PROM = """\
{period}
sources:
  prom: {{type: prometheus, url: "{url}"}}
objectives:
  - id: perf
    title: Fast
    key_results:
      - {{id: fast-requests, source: prom, query: sum(okr_periods_gauge), start: 0, target: 200}}
"""


def test_prometheus_kr_across_the_roll_over(
    env: Path, capsys: pytest.CaptureFixture[str], prometheus_server: PrometheusServer
) -> None:
    """sync stores Q4's value; under a Q1 config sync measures nothing; Q1 shows `previous`."""
    prometheus_server.exporter.set("okr_periods_gauge", 150)
    wait_for_value(prometheus_server.url, "sum(okr_periods_gauge)", 150)
    write_config(env, PROM.format(period=Q4, url=prometheus_server.url))
    out = ok(capsys, "sync", "--once")
    assert "fast-requests = 150" in out
    [row] = history(capsys, "fast-requests")
    assert row["value"] == 150 and row["error"] is None
    # plain status: Q4 runs (pinned clock), scores as of now: 150/200 = 0.75 -> good
    doc = status_json(capsys)
    assert doc["period"]["name"] == "2026-Q4" and doc["period"]["ended"] is False
    kr = krs(doc)["fast-requests"]
    assert kr["value"] == 150 and kr["score"] == 0.75 and kr["grade"] == "good"

    write_config(env, PROM.format(period=Q1, url=prometheus_server.url))
    code, out, err = run(capsys, "sync", "--once")
    assert code == 0, out + err
    assert "2027-01-01" in out + err  # says when Q1 starts
    assert "fast-requests = 150" not in out
    assert len(history(capsys, "fast-requests")) == 1  # measured nothing
    # --dry-run still measures (storing nothing)
    code, out, _ = run(capsys, "sync", "--once", "--dry-run")
    assert code == 0 and "fast-requests = 150" in out
    assert len(history(capsys, "fast-requests")) == 1

    kr = krs(status_json(capsys, "--now", "2027-01-02"))["fast-requests"]
    assert kr["status"] == "no_data" and kr["value"] is None and kr["progress"] is None
    assert kr["previous"] == {"period": "2026-Q4", "value": 150, "score": 0.75}


ENDED = """\
{period}
sources:
  dead: {{type: prometheus, url: "http://127.0.0.1:9", timeout: 1}}
objectives:
  - id: o
    title: O
    key_results:
      - {{id: up, source: dead, query: up, target: 1}}
"""


def test_sync_after_the_period_ended_measures_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Q3 config on 2026-12-01: sync exits 0 saying Q3 ended on 2026-09-30, no fetch."""
    write_config(env, ENDED.format(period=Q3))
    code, out, err = run(capsys, "sync", "--once")
    # measuring would hit a refused port and exit 1
    assert code == 0, out + err
    assert "2026-Q3" in out + err and "2026-09-30" in out + err
    assert "refused" not in out + err
    if (env / "okrsync.db").exists():
        assert history_or_none(capsys, "up") == []


# --- 7. kinds inherited ---------------------------------------------------------------------

KINDS_DEFAULTS = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
defaults: {kind: committed}
objectives:
  - id: ops
    title: Ops
    key_results:
      - {id: a, source: manual, target: 10}
      - {id: b, source: manual, target: 10, kind: aspirational}
  - id: fun
    title: Fun
    kind: aspirational
    key_results:
      - {id: c, source: manual, target: 10}
      - {id: d, source: manual, target: 10, kind: committed}
"""
KINDS_OBJECTIVE = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: ops
    title: Ops
    kind: committed
    key_results:
      - {id: a, source: manual, target: 10}
      - {id: b, source: manual, target: 10, kind: aspirational}
  - id: sub
    title: Sub
    parent: ops
    key_results:
      - {id: e, source: manual, target: 10}
  - id: fun
    title: Fun
    key_results:
      - {id: c, source: manual, target: 10}
"""


def kinds_status(
    env: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, values: dict[str, str]
) -> Doc:
    (env / f"{name}.yaml").write_text(text)
    args = ("--config", f"{name}.yaml", "--db", f"{name}.db")
    for kr, value in values.items():
        ok(capsys, "checkin", kr, value, "--now", "2026-11-20", *args)
    return status_json(capsys, "--now", "2027-01-05", *args)


def test_kind_inherited_from_defaults_and_objective(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KR's kind: its own, else its objective's, else defaults.kind; objectives: own/defaults."""
    doc = kinds_status(
        env, capsys, "defaults", KINDS_DEFAULTS, {"a": "10", "b": "5", "c": "8", "d": "9"}
    )
    assert {k: (v["kind"], v["score"], v["grade"]) for k, v in krs(doc).items()} == {
        "a": ("committed", 1.0, "met"),  # defaults.kind; 10/10
        "b": ("aspirational", 0.5, "fair"),  # own kind; 5/10
        "c": ("aspirational", 0.8, "good"),  # objective's kind; 8/10
        "d": ("committed", 0.9, "missed"),  # own kind beats the objective's; 9/10
    }
    assert {k: (v["kind"], v["score"], v["grade"]) for k, v in objectives(doc).items()} == {
        "ops": ("committed", 0.75, "missed"),  # defaults.kind; (1.0 + 0.5)/2
        "fun": ("aspirational", 0.85, "good"),  # own kind; (0.8 + 0.9)/2
    }
    # average = (0.75 + 0.85) / 2 = 0.8
    assert doc["average_score"] == 0.8

    doc = kinds_status(env, capsys, "objective", KINDS_OBJECTIVE, {"a": "9", "b": "9", "e": "4"})
    assert {k: (v["kind"], v["grade"]) for k, v in krs(doc).items()} == {
        "a": ("committed", "missed"),  # ops' kind; 0.9
        "b": ("aspirational", "good"),  # own kind; 0.9
        "e": ("aspirational", "fair"),  # sub has no kind -> defaults (not its parent's); 0.4
        "c": ("aspirational", None),  # no value
    }
    # sub's own grade uses its kind else defaults.kind (aspirational), not ops' kind
    assert {k: v["kind"] for k, v in objectives(doc).items()} == {
        "ops": "committed",
        "sub": "aspirational",
        "fun": "aspirational",
    }
    # sub = 0.4; ops = (0.9 + 0.9 + sub 0.4) / 3 = 0.7333 -> 0.73, committed -> missed
    assert objectives(doc)["sub"]["score"] == 0.4
    assert objectives(doc)["ops"]["score"] == 0.73 and objectives(doc)["ops"]["grade"] == "missed"
    # fun has no score; average over top-level objectives with one: ops alone = 0.73
    assert objectives(doc)["fun"]["score"] is None and doc["average_score"] == 0.73


# --- more edges of the contract --------------------------------------------------------------

BERLIN = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31, timezone: Europe/Berlin}
objectives:
  - id: o
    title: O
    key_results:
      - {id: kr, source: manual, start: 0, target: 10}
"""


def test_period_bounds_are_in_the_period_timezone(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Berlin's Q4 runs 2026-09-30T22:00Z (CEST) to 2026-12-31T23:00Z (CET), end excluded."""
    write_config(env, BERLIN)
    code, _, err = run(capsys, "checkin", "kr", "1", "--now", "2026-09-30T21:59:00Z")
    assert code == 2 and "2026-10-01" in err  # 23:59 in Berlin on 30 September
    checkin(capsys, "kr", "2", "2026-09-30T22:00:00Z")  # 00:00 on 1 October in Berlin
    checkin(capsys, "kr", "3", "2026-12-31T22:59:00Z")  # 23:59 on 31 December in Berlin
    code, _, err = run(capsys, "checkin", "kr", "9", "--now", "2026-12-31T23:00:00Z")
    assert code == 2 and "2026-12-31" in err  # already 1 January in Berlin

    doc = status_json(capsys, "--now", "2026-12-31T22:30:00Z")
    assert doc["period"]["ended"] is False and doc["as_of"] == "2026-12-31T22:30:00Z"
    assert doc["period"]["timezone"] == "Europe/Berlin"
    doc = status_json(capsys, "--now", "2026-12-31T23:30:00Z")
    assert doc["period"]["ended"] is True
    assert doc["as_of"].startswith(("2026-12-31T23:00:00Z", "2026-12-31T22:59:59"))
    kr = krs(doc)["kr"]
    assert kr["value"] == 3 and kr["score"] == 0.3 and kr["grade"] == "poor"  # 3/10


def test_the_first_instant_of_q1_belongs_to_q1(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2027-01-01T00:00Z: Q4 ended (Q4 config) or Q1's first instant (Q1 config)."""
    write_config(env, LEAK.format(period=Q4))
    checkin(capsys, "postmortems", "5", "2026-12-31T23:59:59Z")  # Q4's last second
    doc = status_json(capsys, "--now", "2027-01-01T00:00:00Z")
    assert doc["period"]["name"] == "2026-Q4" and doc["period"]["ended"] is True
    assert krs(doc)["postmortems"]["score"] == 0.5  # 5/10
    write_config(env, LEAK.format(period=Q1))
    code, _, _ = run(capsys, "checkin", "postmortems", "6", "--now", "2026-12-31T23:59:59Z")
    assert code == 2
    checkin(capsys, "postmortems", "1", "2027-01-01T00:00:00Z")
    doc = status_json(capsys, "--now", "2027-01-01T00:00:00Z")
    assert doc["period"]["name"] == "2027-Q1" and doc["expected_progress"] == 0
    kr = krs(doc)["postmortems"]
    assert kr["value"] == 1 and kr["score"] == 0.1
    assert kr["previous"] == {"period": "2026-Q4", "value": 5, "score": 0.5}


PREVIOUS_PROM = """\
{period}
sources:
  dead: {{type: prometheus, url: "http://127.0.0.1:9", timeout: 1}}
objectives:
  - id: o
    title: O
    key_results:
      - {{id: ratio, source: dead, query: up, start: {start}, target: 100}}
"""


def test_start_previous_is_the_last_value_not_a_later_failure(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Q4: a check-in of 60, then a failed sync (an error row): Q1's start is still 60."""
    write_config(env, PREVIOUS_PROM.format(period=Q4, start=0))
    checkin(capsys, "ratio", "60", "2026-11-01")
    code, out, _ = run(capsys, "sync", "--once")  # the pinned clock is inside Q4
    assert code == 1 and "refused" in out
    assert [r["value"] for r in history(capsys, "ratio")] == [None, 60]
    write_config(env, PREVIOUS_PROM.format(period=Q1, start="previous"))
    out = checkin(capsys, "ratio", "80", "2027-01-02")
    assert "progress 50%" in out  # (80 - 60) / (100 - 60) = 0.5
    kr = krs(status_json(capsys, "--now", "2027-01-03"))["ratio"]
    assert kr["start"] == 60 and kr["score"] == 0.5
    assert kr["previous"] == {"period": "2026-Q4", "value": 60, "score": 0.6}  # 60/100


def test_late_checkin_is_judged_with_its_period_definitions(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under the Q1 config (target 20), a check-in for Q4 uses Q4's target 10."""
    write_config(env, TARGETS.format(period=Q4, kind="", target=10, weight=1))
    checkin(capsys, "deploys", "6", "2026-11-10")
    write_config(env, TARGETS.format(period=Q1, kind="kind: committed", target=20, weight=3))
    out = ok(capsys, "checkin", "deploys", "8", "--now", "2026-12-20", "--period", "2026-Q4")
    assert "progress 80%" in out and "progress 40%" not in out  # 8/10, not 8/20
    [row, _] = history(capsys, "deploys")
    assert row["value"] == 8 and row["progress"] == pytest.approx(0.8)
    d = krs(status_json(capsys, "--period", "2026-Q4", "--now", "2027-01-10"))["deploys"]
    assert d["value"] == 8 and d["score"] == 0.8 and d["grade"] == "good"
    # Q1's previous is Q4's final value 8, scored with Q4's target: 0.8
    d = krs(status_json(capsys, "--now", "2027-01-10"))["deploys"]
    assert d["previous"] == {"period": "2026-Q4", "value": 8, "score": 0.8}


TREE_Q4 = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: shipping
    title: Ship
    key_results:
      - {id: deploys, source: manual, target: 10}
      - {id: legacy, source: manual, target: 4}
  - id: platform
    title: Platform
    parent: shipping
    weight: 3
    key_results:
      - {id: builds, source: manual, target: 10}
"""
TREE_Q1 = """\
period: {name: 2027-Q1, start: 2027-01-01, end: 2027-03-31}
objectives:
  - id: shipping
    title: Ship
    key_results:
      - {id: deploys, source: manual, target: 10}
      - {id: fresh, source: manual, target: 10}
  - id: platform
    title: Platform
    key_results:
      - {id: builds, source: manual, target: 10}
"""


def test_past_period_keeps_its_krs_and_parents(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Q1 drops a KR, adds one and makes `platform` top-level; Q4 is shown as it was."""
    write_config(env, TREE_Q4)
    for kr, value in (("deploys", "5"), ("legacy", "2"), ("builds", "9")):
        checkin(capsys, kr, value, "2026-11-10")
    write_config(env, TREE_Q1)
    checkin(capsys, "fresh", "3", "2027-01-05")

    q4 = status_json(capsys, "--period", "2026-Q4", "--now", "2027-01-10")
    assert [o["id"] for o in q4["objectives"]] == ["shipping"]
    assert objectives(q4)["platform"]["parent"] == "shipping"
    assert set(krs(q4)) == {"deploys", "legacy", "builds"}
    # shipping = (deploys 0.5*1 + legacy 0.5*1 + platform 0.9*3) / 5 = 3.7/5 = 0.74 -> good
    assert objectives(q4)["shipping"]["score"] == 0.74
    assert objectives(q4)["shipping"]["grade"] == "good"
    assert q4["average_score"] == 0.74

    q1 = status_json(capsys, "--now", "2027-01-10")
    assert [o["id"] for o in q1["objectives"]] == ["shipping", "platform"]
    assert set(krs(q1)) == {"deploys", "fresh", "builds"}
    # shipping = fresh 0.3 alone (deploys has no Q1 value); platform has none
    assert objectives(q1)["shipping"]["score"] == 0.3
    assert objectives(q1)["platform"]["score"] is None
    assert q1["average_score"] == 0.3


def test_plain_status_and_grade_of_an_ended_config_period(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Q3 config on 2026-12-01: plain status and grade show Q3 as of its end, graded."""
    write_config(env, OUTSIDE.format(period=Q3))
    checkin(capsys, "kr", "7", "2026-08-01")
    doc = status_json(capsys)
    assert doc["period"]["name"] == "2026-Q3" and doc["period"]["ended"] is True
    assert doc["as_of"].startswith(("2026-10-01T00:00:00Z", "2026-09-30T23:59:59"))
    kr = krs(doc)["kr"]
    assert kr["score"] == 0.7 and kr["grade"] == "good"  # 7/10, on the band's edge
    card = grade_json(capsys)
    assert card["ended"] is True and card["average_score"] == 0.7
    # after the end, a check-in needs --period (a late one is then allowed)
    code, _, err = run(capsys, "checkin", "kr", "8", "--now", "2026-10-03")
    assert code == 2 and "2026-07-01" in err and "2026-09-30" in err
    ok(capsys, "checkin", "kr", "8", "--now", "2026-10-03", "--period", "2026-Q3")


PROM_PREVIOUS = """\
period: {{name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}}
sources:
  prom: {{type: prometheus, url: "{url}"}}
objectives:
  - id: perf
    title: Fast
    key_results:
      - {{id: fast-requests, source: prom, query: sum(okr_periods_gauge), start: previous,
          target: 200}}
"""


def test_sync_start_previous_without_a_previous_period_is_an_error_row(
    env: Path, capsys: pytest.CaptureFixture[str], prometheus_server: PrometheusServer
) -> None:
    """Q4 is the first period: a start: previous KR's sync measurement is an error row."""
    prometheus_server.exporter.set("okr_periods_gauge", 150)
    wait_for_value(prometheus_server.url, "sum(okr_periods_gauge)", 150)
    write_config(env, PROM_PREVIOUS.format(url=prometheus_server.url))
    ok(capsys, "validate")
    code, out, err = run(capsys, "sync", "--once")
    assert code == 1, out + err  # a KR failed
    assert "no value in the previous period" in out
    [row] = history(capsys, "fast-requests")
    assert row["value"] is None and "no value in the previous period" in row["error"]
    kr = krs(status_json(capsys))["fast-requests"]
    assert kr["progress"] is None and kr["status"] in ("no_data", "stale")
    assert "no value in the previous period" in kr["error"]


def test_only_a_failure_in_q4_is_no_previous_value(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KR whose only Q4 row is an error has no `previous` and no start from it in Q1."""
    write_config(env, PREVIOUS_PROM.format(period=Q4, start=0))
    code, _, _ = run(capsys, "sync", "--once")  # the pinned clock is inside Q4: an error row
    assert code == 1
    [row] = history(capsys, "ratio")
    assert row["value"] is None and row["error"]
    write_config(env, PREVIOUS_PROM.format(period=Q1, start="previous"))
    kr = krs(status_json(capsys, "--now", "2027-01-02"))["ratio"]
    assert kr["previous"] is None and kr["progress"] is None and kr["status"] == "no_data"
    assert "no value in the previous period (2026-Q4)" in kr["error"]


# --- the issue's repro on a store written before periods --------------------------------------

PRE_PERIODS_COMMIT = "a4b6748"  # the last commit before issue 9's store migration


def old_okrsync(tmp_path: Path) -> Path:
    """The pre-periods okrsync package, extracted from git into tmp_path/old (or skip)."""
    repo = Path(__file__).resolve().parent.parent
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", PRE_PERIODS_COMMIT, "okrsync", "connectors"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"no pre-periods commit {PRE_PERIODS_COMMIT}: {archive.stderr!r}")
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    # installed, connectors/ is okrsync.connectors
    (old / "connectors").rename(old / "okrsync" / "connectors")
    return old


def test_old_store_rolls_over_like_the_issue_says(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's repro: Q4 `postmortems 4` in an old store is not 40% on Q1's first day."""
    old = old_okrsync(env)
    write_config(env, LEAK.format(period=Q4))
    done = subprocess.run(
        [sys.executable, "-m", "okrsync", "checkin", "postmortems", "4", "--now", "2026-11-15"],
        cwd=env,
        env={**os.environ, "PYTHONPATH": str(old)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "progress 40%" in done.stdout, done.stderr
    (env / "okrsync.db").rename(env / "old.db")
    for db in ("a.db", "b.db"):
        (env / db).write_bytes((env / "old.db").read_bytes())

    # a: the new version reads the old store (read-only) then adopts its rows into Q4 on its
    # first writing command under the Q4 config (a sync with only manual KRs measures nothing)
    kr = krs(status_json(capsys, "--now", "2026-11-20", "--db", "a.db"))["postmortems"]
    assert kr["value"] == 4 and kr["score"] == 0.4
    ok(capsys, "sync", "--once", "--db", "a.db")
    write_config(env, LEAK.format(period=Q1))
    doc = status_json(capsys, "--now", "2027-01-02", "--db", "a.db")
    kr = krs(doc)["postmortems"]
    assert kr["value"] is None and kr["status"] == "no_data"
    assert kr["previous"] == {"period": "2026-Q4", "value": 4, "score": 0.4}
    assert objectives(doc)["reliability"]["status"] == "no_data"

    # b: straight to the Q1 config: the November row is in no period, and not in Q1
    doc = status_json(capsys, "--now", "2027-01-02", "--db", "b.db")
    assert krs(doc)["postmortems"]["status"] == "no_data"
    assert objectives(doc)["reliability"]["progress"] is None
    text = ok(capsys, "status", "--now", "2027-01-02", "--db", "b.db")
    assert "40%" not in text and "46%" not in text
