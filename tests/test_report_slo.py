"""The report's SLO part: each SLO KR's budget bar and burn status next to its progress,
in HTML and Markdown, from a store measured through a scripted Prometheus."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fakes import ScriptedConnector, factory
from slo_script import CONFIG as SLO_CONFIG
from slo_script import ELAPSED, NOW, answers

from okrsync.config.loader import Config, load
from okrsync.measure.measurer import Measurer
from okrsync.progress.definitions import from_config
from okrsync.report import html, markdown
from okrsync.report.model import Filters, Report, build
from okrsync.report.slo import SloPart, budget_percent, sli_text
from okrsync.report.svg import COLOUR
from okrsync.service.once import run_once
from okrsync.store.store import Store

CONFIG = (  # the `checkout` SLO beside a plain KR
    SLO_CONFIG.partition("      - id: search")[0]
    + "      - {id: uptime, source: prom, query: avg(up), start: 0, target: 1}\n"
)
BURN_WINDOWS = ("5m", "30m", "1h", "6h")


def script(good: float = 999_600, burning: dict[str, float] | None = None) -> dict[str, Any]:
    """Answers: `good` of 1,000,000 over the period, 9,999 of 10,000 in each burn window
    unless `burning` says otherwise, and the plain KR's `avg(up)`."""
    counts = {ELAPSED: (good, 1_000_000.0)}
    counts |= {w: ((burning or {}).get(w, 9_999.0), 10_000.0) for w in BURN_WINDOWS}
    plain: dict[str, Any] = {"avg(up)": 0.5}
    return plain | answers("checkout", counts)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "okrs.yaml").write_text(CONFIG)
    return load(tmp_path / "okrs.yaml")


def report(config: Config, tmp_path: Path, answers: dict[str, Any]) -> Report:
    """The report as of NOW after one measurement of every KR with `answers`."""
    store = Store(tmp_path / "okrsync.db")
    try:
        measurer = Measurer(config, factory({"prom": ScriptedConnector(answers)}))
        result = run_once(config, store, NOW, measurer=measurer)
        assert all(m.error is None for m in result.measurements)
        return build(from_config(config), store, NOW, Filters())
    finally:
        store.close()


def row(page: str, kr: str) -> str:
    found = re.search(rf'<tr id="kr-{kr}">.*?</tr>', page, re.S)
    assert found, kr
    return found.group(0)


def slo_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("- ") and "SLO " in line]


def test_a_healthy_slo_shows_its_budget_left_and_burn_ok(config: Config, tmp_path: Path) -> None:
    """SLI 99.96% of 99.9%: 60% of the budget left, every burn window at 0.1x."""
    got = report(config, tmp_path, script())
    part = got.krs["checkout"].slo
    assert part is not None and got.krs["uptime"].slo is None
    assert part.objective == 99.9 and part.window == "period"
    assert part.sli == pytest.approx(99.96) and part.budget == pytest.approx(0.6)
    assert [w for w, _ in part.burn_rates] == list(BURN_WINDOWS)  # shortest first
    assert part.firing == ()
    page = row(html.render(got), "checkout")
    assert 'role="meter"' in page and 'aria-valuenow="60"' in page
    assert 'aria-valuetext="budget 60% left"' in page
    assert f'<i style="width:60%;background:{COLOUR["on_track"]}">' in page
    assert "budget 60% left" in page and "SLO 99.9% (period): SLI 99.96%" in page
    assert "burn ok: 5m 0.1x · 30m 0.1x · 1h 0.1x · 6h 0.1x" in page
    assert "burning" not in page
    assert slo_lines(markdown.render(got)) == [
        "- `checkout` `██████░░░░` SLO 99.9% (period): SLI 99.96% · budget 60% left · "
        "burn ok (5m 0.1x, 30m 0.1x, 1h 0.1x, 6h 0.1x)"
    ]


def test_a_fast_burn_names_the_firing_pair_and_its_threshold(
    config: Config, tmp_path: Path
) -> None:
    """5m at 20.1x and 1h at 21x: the 1h/5m pair fires at (at least) 20.1x; 6h/30m not."""
    got = report(config, tmp_path, script(burning={"5m": 9_799, "1h": 9_790}))
    page = row(html.render(got), "checkout")
    assert "<strong>burning fast</strong>: 1h/5m at 20.1x (alert ≥ 14.4x)" in page
    assert "6h/30m" not in page and "burn ok" not in page
    assert f'background:{COLOUR["at_risk"]}">' in page  # the budget bar warns too
    assert "budget 60% left" in page
    (line,) = slo_lines(markdown.render(got))
    assert line.endswith("· budget 60% left · burning: 1h/5m at 20.1x ≥ 14.4x")


def test_a_breached_slo_shows_an_empty_bar_and_its_negative_budget(
    config: Config, tmp_path: Path
) -> None:
    """SLI 99.78% of 99.9%: 220% of the budget spent, so -120% left, written as such."""
    got = report(config, tmp_path, script(good=997_800))
    part = got.krs["checkout"].slo
    assert part is not None and part.budget == pytest.approx(-1.2) and part.breached
    page = row(html.render(got), "checkout")
    red = COLOUR["off_track"]
    assert 'aria-valuenow="0"' in page and 'aria-valuetext="budget −120% (breached)"' in page
    assert f'box-shadow:inset 0 0 0 1px {red}"><i style="width:0%;background:{red}">' in page
    assert f'<span style="color:{red}">budget −120% (breached)</span>' in page
    assert "SLI 99.78%" in page
    (line,) = slo_lines(markdown.render(got))
    assert line.startswith("- `checkout` `░░░░░░░░░░` SLO 99.9% (period): SLI 99.78% · ")
    assert "budget −120% (breached)" in line and "left" not in line


def test_a_kr_without_an_slo_has_no_budget_bar(config: Config, tmp_path: Path) -> None:
    got = report(config, tmp_path, script())
    page = row(html.render(got), "uptime")
    assert "50%" in page  # its own progress bar is there
    assert 'role="meter"' not in page and "budget" not in page and "burn" not in page
    assert all("`uptime`" not in line for line in slo_lines(markdown.render(got)))


def part(sli: float, objective: float = 99.9) -> SloPart:
    return SloPart(objective, "period", sli, 0.5, (), ())


def test_the_sli_has_the_digits_that_tell_it_from_the_objective() -> None:
    """One digit past the objective's, more while rounding would put the SLI on the
    objective or at 100%; trailing zeros go."""
    assert sli_text(part(99.95)) == "99.95%"
    assert sli_text(part(99.987, 99.95)) == "99.987%"
    assert sli_text(part(99.8999)) == "99.8999%"  # not 99.90%: that would look met
    assert sli_text(part(99.90004)) == "99.90004%"
    assert sli_text(part(99.99996)) == "99.99996%"  # not 100.00%
    assert sli_text(part(100.0)) == "100%"
    assert sli_text(part(99.9)) == "99.9%"
    assert sli_text(part(97.5, 99)) == "97.5%"


def test_the_budget_is_a_rounded_percent_a_sliver_keeps_a_decimal() -> None:
    assert budget_percent(0.6) == "60%"
    assert budget_percent(0.605) == "61%"
    assert budget_percent(0.004) == "0.4%"
    assert budget_percent(0.0) == "0%"
    assert budget_percent(-0.003) == "−0.3%"
    assert budget_percent(-99.0) == "−9,900%"
