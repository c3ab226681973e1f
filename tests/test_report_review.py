"""Review findings on `okrsync report` and `/report`, each reproduced through the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_runs import okr

from okrsync.config.loader import load
from okrsync.measure.measurement import Measurement
from okrsync.progress.definitions import from_config
from okrsync.report.svg import COLOUR
from okrsync.service.report_page import ReportPage
from okrsync.store.store import Store

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: ahead
    title: Ahead
    owner: fast
    key_results:
      - {id: quick, source: manual, start: 0, target: 10}
  - id: behind
    title: Behind
    owner: slow
    key_results:
      - {id: lagging, source: manual, start: 0, target: 10}
"""


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """As of 2026-11-15 (expected 50%): `quick` is at 90% (on track), `lagging` at 5%."""
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    for kr, value in (("quick", "9"), ("lagging", "0.5")):
        assert okr(tmp_path, capsys, "checkin", kr, value, "--now", "2026-11-14")[0] == 0
    return tmp_path


def test_owner_bars_are_coloured_by_status(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The By owner table's bars are coloured by the team's status, as the objectives'
    are: a team far behind the expected progress is red, not green."""
    code, out, _ = okr(store, capsys, "report", "--html", "-", "--now", "2026-11-15")
    assert code == 0
    owners = out.split("<h2>By owner</h2>")[1].split("</table>")[0]
    rows = dict(
        re.findall(r"<tr><td>(\w+)</td>[^\n]*?background:(#\w+)", owners.replace("<tr>", "\n<tr>"))
    )
    assert rows == {"fast": COLOUR["on_track"], "slow": COLOUR["off_track"]}


def test_a_bad_output_path_writes_nothing(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--md FILE --html BAD`: exit 2 naming the bad path, and FILE is not written either
    (no half-done pair of reports; the old FILE stays as it was)."""
    page = store / "r.md"
    page.write_text("last week's report\n")
    bad = store / "missing" / "r.html"
    code, _, err = okr(store, capsys, "report", "--md", str(page), "--html", str(bad))
    assert code == 2
    assert f"--html {bad}: cannot write: no such directory" in err
    assert "Traceback" not in err
    assert page.read_text() == "last week's report\n"
    code, _, err = okr(store, capsys, "report", "--html", str(store))
    assert code == 2 and "it is a directory" in err


def test_an_unknown_period_on_report_names_the_parameter(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """/report?period=nope is a 404 that names the query parameter, not the CLI's flag."""
    defs = from_config(load(store / "okrs.yaml"))
    now = datetime(2026, 11, 15, tzinfo=UTC)
    page = ReportPage(store / "x.db", lambda: (defs, "h"), lambda: now, lambda: 0.0)
    code, kind, body = page.get("period=nope")
    text = body.decode()
    assert code == 404 and kind.startswith("text/plain")
    assert text.startswith("not found: period nope: no such period; known: 2026-Q4")
    assert "--period" not in text


def test_one_key_result_is_singular(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = okr(store, capsys, "report", "--md", str(store / "r.md"), "--owner", "fast")
    assert code == 0 and err.strip() == f"wrote {store / 'r.md'} (1 key result)"
    assert ". 1 key result: 1 on track." in (store / "r.md").read_text()


def test_the_sparkline_uses_the_current_target(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Values stored against target 10, then the target raised to 1000: the Markdown
    sparkline is drawn against today's target, as the bar and the HTML chart are (all at
    the bottom), not from the progress stored under the old one."""
    for day, value in (("2026-11-10", "5"), ("2026-11-12", "9.5")):
        assert okr(store, capsys, "checkin", "quick", value, "--now", day)[0] == 0
    config = store / "okrs.yaml"
    config.write_text(
        config.read_text().replace("start: 0, target: 10}", "start: 0, target: 1000}", 1)
    )
    code, out, _ = okr(store, capsys, "report", "--md", "-", "--now", "2026-11-15")
    assert code == 0
    objectives = out.split("## Objectives")[1]
    row = next(line for line in objectives.splitlines() if line.startswith("| `quick`"))
    assert "`░░░░░░░░░░` 1%" in row
    assert "▁▁▁ |" in row


def test_a_unit_is_escaped_in_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A unit with a pipe or markup stays one cell of text in every Markdown table, as a
    title does."""
    unit = 'unit: "<i>req|s</i>"'
    (tmp_path / "okrs.yaml").write_text(CONFIG.replace("target: 10}", f"target: 10, {unit}}}"))
    for day, value in (("2026-11-01", "1"), ("2026-11-14", "2")):
        assert okr(tmp_path, capsys, "checkin", "quick", value, "--now", day)[0] == 0
    code, out, _ = okr(tmp_path, capsys, "report", "--md", "-", "--now", "2026-11-15")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| `quick`")]
    assert len(rows) == 2  # what changed, and the objective's table
    for row, columns in zip(rows, (4, 7), strict=True):
        assert "<i>" not in row and "req|s" not in row and r"req\|s" in row
        assert row.replace(r"\|", "").count("|") == columns + 1


@pytest.mark.parametrize(
    ("now", "said"),
    [
        ("2026-09-15", "2026-Q4 begins 2026-10-01: no values yet."),
        ("2026-11-15", "No values in 2026-Q4 yet: nothing measured or checked in so far."),
        ("2027-02-01", "No value was recorded in 2026-Q4."),
    ],
)
def test_a_period_without_data_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], now: str, said: str
) -> None:
    """A period with no value at all (not begun, running, ended) says so at the top of
    both renderings, instead of only a table of 'no data' rows."""
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    code, out, err = okr(
        tmp_path, capsys, "report", "--md", "-", "--period", "2026-Q4", "--now", now
    )
    assert code == 0, err
    assert f"**{said}**" in out.split("## Needs attention")[0]
    code, out, _ = okr(
        tmp_path, capsys, "report", "--html", "-", "--period", "2026-Q4", "--now", now
    )
    assert code == 0 and f'<p class="empty">{said}</p>' in out


def test_a_period_with_data_says_nothing_of_the_kind(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = okr(store, capsys, "report", "--html", "-", "--now", "2026-11-15")
    assert code == 0 and 'class="empty"' not in out


def test_values_seconds_apart_give_no_absurd_forecast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Check-ins a few seconds apart (a slope of a value per second) are no trend to
    extend over six weeks (it would forecast about 1,000,000): the forecast is flat at
    their mean, drawn as a dashed line, and the report says why; with a check-in a day
    later it is the least squares line again."""
    store = tmp_path
    (store / "okrs.yaml").write_text(CONFIG)
    for at, value in (("2026-11-14T12:00:00Z", "5"), ("2026-11-14T12:00:04Z", "6")):
        assert okr(store, capsys, "checkin", "quick", value, "--now", at)[0] == 0
    code, out, _ = okr(store, capsys, "report", "--md", "-", "--now", "2026-11-15")
    row = next(r for r in out.split("## Objectives")[1].splitlines() if r.startswith("| `quick`"))
    assert code == 0
    assert row.endswith(
        "| 5.5 (55%) at the end, from 2 values, flat at their mean: they span only 4 "
        "seconds, too short for a trend (at least 10 minutes) |"
    )
    code, out, _ = okr(store, capsys, "report", "--html", "-", "--now", "2026-11-15")
    chart = out.split('id="kr-quick"')[1].split("</tr>")[0]
    found = re.search(r'class="forecast" points="[\d.]+,([\d.]+) [\d.]+,([\d.]+)"', chart)
    assert found is not None and found[1] == found[2]  # dashed, and flat
    assert okr(store, capsys, "checkin", "quick", "7", "--now", "2026-11-15T12:00:00Z")[0] == 0
    code, out, _ = okr(store, capsys, "report", "--md", "-", "--now", "2026-11-16")
    row = next(r for r in out.split("## Objectives")[1].splitlines() if r.startswith("| `quick`"))
    assert row.endswith("at the end, from 3 values |") and "flat" not in row


OVERRIDDEN = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
sources:
  web: {type: http, url: "http://127.0.0.1:9"}
objectives:
  - id: rel
    title: Reliable
    owner: sre
    key_results:
      - {id: lat, source: web, path: /v, extract: v, start: 500, target: 100}
"""


def test_the_chart_ends_at_a_holding_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Automated 120 (Nov 1), an override 300 holding until Dec 20 (Nov 10), automated 110
    under it (Nov 20). While it holds the KR shows 300, and so does the end of its chart
    and the start of its forecast: the value under it is left out. From the expiry on,
    the chart shows all three."""
    (tmp_path / "okrs.yaml").write_text(OVERRIDDEN)
    config = load(tmp_path / "okrs.yaml")
    store = Store(tmp_path / "x.db")
    try:
        with store.transaction():
            store.sync_config(config, datetime(2026, 10, 1, tzinfo=UTC))
            store.append(
                None,
                [Measurement("lat", datetime(2026, 11, 1, tzinfo=UTC), "web", "/v", 120.0)],
                "2026-Q4",
            )
    finally:
        store.close()
    flags = ("--note", "exporter broken", "--until", "2026-12-20", "--now", "2026-11-10")
    assert okr(tmp_path, capsys, "checkin", "lat", "300", *flags)[0] == 0
    store = Store(tmp_path / "x.db")
    try:
        with store.transaction():
            store.append(
                None,
                [Measurement("lat", datetime(2026, 11, 20, tzinfo=UTC), "web", "/v", 110.0)],
                "2026-Q4",
            )
    finally:
        store.close()

    def shown(now: str) -> tuple[str, list[tuple[float, float]]]:
        code, out, _ = okr(tmp_path, capsys, "report", "--html", "-", "--now", now)
        assert code == 0
        row = out.split('id="kr-lat"')[1].split("</tr>")[0]
        found = re.search(r'class="series" points="([^"]*)"', row)
        assert found is not None
        points = [tuple(map(float, p.split(","))) for p in found[1].split()]
        return row, [(x, y) for x, y in points]

    row, points = shown("2026-11-25")
    assert '<td class="nw">300</td>' in row and len(points) == 2
    assert points[1][1] > points[0][1]  # the override's 50% is drawn below 120's 95%
    assert "from 2 values" in row
    row, points = shown("2026-12-21")
    assert '<td class="nw">110</td>' in row and len(points) == 3
