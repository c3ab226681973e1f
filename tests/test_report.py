"""`okrsync report`: Markdown and HTML from a store built through the real CLI, filters,
escaping, forecasts (and their absence), downsampled charts drawn from the data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_runs import okr

from okrsync.config.loader import load
from okrsync.measure.measurement import Measurement
from okrsync.report.forecast import fit, forecast, sums
from okrsync.store.series import BUCKETS, series
from okrsync.store.store import Store

CONFIG = """\
period: {name: 2026-Q4, start: 2026-10-01, end: 2026-12-31}
objectives:
  - id: company
    title: "Company <script>alert(1)</script>"
    owner: exec
    key_results:
      - {id: nps, title: "NPS | <b>bold</b> *star*", source: manual, start: 0, target: 50}
  - id: rel
    title: Reliable
    owner: sre
    parent: company
    key_results:
      - {id: linear, source: manual, start: 0, target: 100}
      - {id: single, source: manual, start: 0, target: 10}
      - {id: empty, source: manual, start: 0, target: 10}
  - id: growth
    title: Grow
    owner: sales
    key_results:
      - {id: deals, source: manual, start: 0, target: 20}
"""


def checkin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kr: str, value: float, at: str
) -> None:
    assert okr(tmp_path, capsys, "checkin", kr, str(value), "--now", at)[0] == 0


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """`linear` = day of October - 1 at midnight for 10 days, `nps` two check-ins,
    `single` one, `empty` none, `deals` one."""
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    for day in range(10):
        checkin(tmp_path, capsys, "linear", day, f"2026-10-{day + 1:02d}T00:00:00Z")
    checkin(tmp_path, capsys, "nps", 10, "2026-10-02T00:00:00Z")
    checkin(tmp_path, capsys, "nps", 20, "2026-10-09T00:00:00Z")
    checkin(tmp_path, capsys, "single", 3, "2026-10-05T00:00:00Z")
    checkin(tmp_path, capsys, "deals", 4, "2026-10-06T00:00:00Z")
    return tmp_path


NOW = "2026-10-10T00:00:00Z"


def test_markdown_to_stdout(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--md - prints the tree with text bars, attention first, changes, owners, forecasts."""
    code, out, _ = okr(store, capsys, "report", "--md", "-", "--now", NOW)
    assert code == 0
    assert out.startswith("# OKR report 2026-Q4 (2026-10-01 to 2026-12-31)")
    assert out.index("## Needs attention") < out.index("## Objectives")
    attention = out.split("## What changed")[0]
    assert "`empty`" in attention and "`linear`" not in attention
    assert "| `linear` | `█████████░` 9% |" not in out  # bars are of progress, not value
    assert "`█░░░░░░░░░` 9%" in out
    assert "## What changed since 2026-10-03 00:00 UTC" in out
    assert "| `linear` | 2 → 9 | 2% → 9% (+7) | on track |" in out
    assert "## By owner" in out and "| sales | 1 |" in out
    assert "no forecast: a single value" in out.split("`single`")[-1].splitlines()[0]


def test_forecast_arithmetic_through_the_cli(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """10 values on the line value = days since Oct 1 forecast 92 at the period's end
    (2027-01-01T00:00Z is 92 days after Oct 1), exactly."""
    _, out, _ = okr(store, capsys, "report", "--md", "-", "--now", NOW)
    tree = out.split("## Objectives")[1]
    row = next(line for line in tree.splitlines() if line.startswith("| `linear`"))
    assert "92 (92%) at the end, from 10 values" in row


def test_least_squares_gives_the_known_line() -> None:
    """y = 3 + 2x through exact points; noisy symmetric points keep the slope."""
    line = fit(sums([(-3.0, -3.0), (-2.0, -1.0), (-1.0, 1.0), (0.0, 3.0)]))
    assert line is not None
    assert line.slope == pytest.approx(2.0) and line.intercept == pytest.approx(3.0)
    noisy = fit(sums([(-2.0, 0.0), (-1.0, 3.0), (0.0, 4.0), (-1.0, 1.0)]))
    assert noisy is not None and noisy.slope == pytest.approx(2.0)
    now = datetime(2026, 10, 10, tzinfo=UTC)
    made = forecast(sums([(-1.0, 1.0), (0.0, 2.0)]), now, now + timedelta(days=5))
    assert not isinstance(made, str) and made.value == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("points", "says"),
    [
        ([], "no values yet"),
        ([(0.0, 5.0)], "a single value"),
        ([(-1.0, 5.0), (-1.0, 6.0)], "same moment"),
    ],
)
def test_no_forecast_says_why(points: list[tuple[float, float]], says: str) -> None:
    """Fewer than two values, or no spread in time: no line, and a reason."""
    now = datetime(2026, 10, 10, tzinfo=UTC)
    made = forecast(sums(points), now, now + timedelta(days=5))
    assert isinstance(made, str) and says in made


def test_html_is_self_contained_and_escaped(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One file: inline style and SVG, nothing fetched, no script; titles escaped."""
    page = store / "r.html"
    code, _, err = okr(store, capsys, "report", "--html", str(page), "--now", NOW)
    assert code == 0 and "wrote" in err
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "default-src 'none'" in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;bold" in html
    assert not re.search(r"(src=|@import|url\(|<link|https?://)", html)
    assert html.count("<svg") == 5 and 'class="forecast"' in html
    assert 'class="expected"' in html


def test_markdown_escapes_config_text(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A title with HTML and table pipes stays text in the Markdown tables."""
    _, out, _ = okr(store, capsys, "report", "--md", "-", "--now", NOW)
    assert "<script>" not in out and "<b>" not in out
    assert "NPS \\| &lt;b&gt;bold&lt;/b&gt; \\*star\\*" in out


def test_both_outputs_at_once(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--html FILE --md FILE write both; neither is an error; - for both is refused."""
    code, _, _ = okr(
        store, capsys, "report", "--html", str(store / "a.html"), "--md", str(store / "a.md")
    )
    assert code == 0 and (store / "a.html").exists() and (store / "a.md").exists()
    code, _, err = okr(store, capsys, "report", "--html", "-", "--md", "-")
    assert code == 2 and "both write to stdout" in err
    code, _, err = okr(store, capsys, "report")
    assert code == 2 and "--html FILE and/or --md FILE" in err


def test_filters(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--owner keeps the objectives it owns (lifted when their parent is someone else's),
    --objective a subtree; unknown names are exit 2 listing the known ones."""
    _, out, _ = okr(store, capsys, "report", "--md", "-", "--now", NOW, "--owner", "sre")
    assert "Reliable (`rel`)" in out and "`company`)" not in out and "`deals`" not in out
    assert "Filtered by owner sre." in out
    _, out, _ = okr(store, capsys, "report", "--md", "-", "--now", NOW, "--objective", "company")
    assert "`rel`" in out and "`nps`" in out and "`deals`" not in out
    code, _, err = okr(store, capsys, "report", "--md", "-", "--objective", "nope")
    assert code == 2 and "no objective 'nope'" in err and "company, growth, rel" in err
    code, _, err = okr(store, capsys, "report", "--md", "-", "--owner", "nobody")
    assert code == 2 and "owners: exec, sales, sre" in err
    code, _, err = okr(store, capsys, "report", "--md", "-", "--period", "1999-Q1")
    assert code == 2 and "--period 1999-Q1: no such period" in err


def test_a_period_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No store at all: every KR is listed as no data, no forecast, no chart line."""
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    code, out, _ = okr(tmp_path, capsys, "report", "--md", "-", "--now", NOW)
    assert code == 0 and "5 key results: 5 no data." in out
    assert out.count("no forecast: no values yet") == 5
    assert "No value or status changed." in out
    code, html, _ = okr(tmp_path, capsys, "report", "--html", "-", "--now", NOW)
    assert code == 0 and 'class="series"' not in html


def test_since_and_an_ended_period(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--since moves the comparison; after the end values are final, no forecast."""
    _, out, _ = okr(store, capsys, "report", "--md", "-", "--now", NOW, "--since", "2026-10-06")
    assert "since 2026-10-06 00:00 UTC" in out and "| `linear` | 5 → 9 |" in out
    _, out, _ = okr(store, capsys, "report", "--md", "-", "--now", "2027-02-01")
    assert "ended, values final" in out and "the period has ended" in out
    code, _, err = okr(store, capsys, "report", "--md", "-", "--since", "last week")
    assert code == 2 and "--since" in err
    code, _, err = okr(store, capsys, "report", "--md", "-", "--now", NOW, "--since", "2026-11-01")
    assert code == 2 and "before the report's (2026-10-10T00:00:00Z)" in err


def series_path(html: str, kr: str) -> str:
    row = html.split(f'id="kr-{kr}"')[1].split("</tr>")[0]
    found = re.search(r'class="series" points="([^"]+)"', row)
    assert found is not None
    return found.group(1)


def test_the_chart_is_drawn_from_the_history(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another check-in changes the KR's line; the others stay as they were."""
    _, before, _ = okr(store, capsys, "report", "--html", "-", "--now", NOW)
    checkin(store, capsys, "nps", 45, "2026-10-09T12:00:00Z")
    _, after, _ = okr(store, capsys, "report", "--html", "-", "--now", NOW)
    assert series_path(before, "nps") != series_path(after, "nps")
    assert len(series_path(after, "nps").split()) == 3
    assert series_path(before, "linear") == series_path(after, "linear")


def test_long_histories_are_downsampled(tmp_path: Path) -> None:
    """2,000 hourly values become at most BUCKETS + 1 points, first and latest kept."""
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    config = load(tmp_path / "okrs.yaml")
    start = datetime(2026, 10, 1, tzinfo=UTC)
    rows = [
        Measurement("linear", start + timedelta(hours=h), "manual", None, float(h), manual=True)
        for h in range(2000)
    ]
    store = Store(tmp_path / "x.db")
    try:
        with store.transaction():
            store.sync_config(config, start)
            store.append(None, rows, "2026-Q4")
        until = start + timedelta(hours=1999)
        points = series(store, "linear", config.period, until)
        few = series(store, "linear", config.period, start + timedelta(hours=50))
    finally:
        store.close()
    assert len(points) <= BUCKETS + 1
    assert points[0].value == 0 and points[-1].value == 1999
    assert [p.value for p in points] == sorted(p.value for p in points)
    assert len(few) == 51


def test_a_kr_without_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`start: previous` with no previous period: listed as no data with its reason, an
    empty chart, no forecast, no traceback."""
    (tmp_path / "okrs.yaml").write_text(
        CONFIG + "      - {id: drills, source: manual, start: previous, target: 8}\n"
    )
    code, out, _ = okr(tmp_path, capsys, "report", "--md", "-", "--now", NOW)
    assert code == 0 and "start: previous, but there is no value" in out
    code, html, _ = okr(tmp_path, capsys, "report", "--html", "-", "--now", NOW)
    assert code == 0 and 'aria-label="drills: trend' in html
