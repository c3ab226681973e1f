"""`slo: {sloth: file#name}`: an SLO read from a Sloth spec as Sloth documents it."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from okrsync.config.loader import load
from okrsync.errors import ConfigError
from okrsync.measure.plan import plan

FIXTURES = Path(__file__).parent / "fixtures" / "sloth"
NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
CONFIG = """\
period: {{name: Q4, start: 2026-10-01, end: 2026-12-31}}
sources:
  prom: {{type: prometheus, url: "http://127.0.0.1:1"}}
objectives:
  - id: o
    title: O
    key_results:
      - id: availability
        source: prom
        slo: {{sloth: {ref}, window: 28d}}
"""


def config_with(tmp_path: Path, ref: str, fixture: str = "getting-started.yml") -> Path:
    (tmp_path / "slos").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / fixture, tmp_path / "slos" / fixture)
    (tmp_path / "okrs.yaml").write_text(CONFIG.format(ref=ref))
    return tmp_path / "okrs.yaml"


def test_sloths_own_example_gives_the_queries_and_objective(tmp_path: Path) -> None:
    config = load(config_with(tmp_path, "slos/getting-started.yml#requests-availability"))
    _, kr = next(config.key_results())
    assert kr.slo is not None and kr.slo.objective == 99.9 and kr.target == 99.9
    assert kr.slo.counts_errors and kr.slo.window == "28d"
    texts = {f.text for f in plan(config, [kr], NOW).fetches}
    assert 'sum(rate(http_request_duration_seconds_count{job="myservice"}[28d]))' in texts
    assert (
        'sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[5m]))'
        in texts
    )
    assert len(texts) == 10


def test_a_changed_sloth_file_changes_the_config_digest(tmp_path: Path) -> None:
    """What hot reload compares: the Sloth file is part of the config."""
    path = config_with(tmp_path, "slos/getting-started.yml#requests-availability")
    before = load(path)
    assert before.also_read == (tmp_path / "slos" / "getting-started.yml",)
    spec = tmp_path / "slos" / "getting-started.yml"
    spec.write_text(spec.read_text().replace("objective: 99.9", "objective: 99.5"))
    after = load(path)
    assert after.digest != before.digest
    assert next(after.key_results())[1].target == 99.5


def test_a_multi_document_file_picks_by_service_when_names_repeat(tmp_path: Path) -> None:
    path = config_with(
        tmp_path, "slos/multifile.yml#myservice2/requests-availability", "multifile.yml"
    )
    assert next(load(path).key_results())[1].target == 99.99
    (tmp_path / "okrs.yaml").write_text(
        CONFIG.format(ref="slos/multifile.yml#requests-availability")
    )
    with pytest.raises(ConfigError, match="several SLOs named 'requests-availability'"):
        load(tmp_path / "okrs.yaml")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "slos/getting-started.yml#nope",
            "has no SLO named 'nope' (it has: requests-availability)",
        ),
        ("slos/missing.yml#x", "Sloth file slos/missing.yml: no such file or directory"),
        ("slos/getting-started.yml", "is not a Sloth reference: write file#slo-name"),
    ],
)
def test_a_bad_reference_is_a_config_error_at_its_line(
    tmp_path: Path, ref: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(config_with(tmp_path, ref))
    (problem,) = caught.value.problems
    assert problem.line == 10 and problem.path.endswith("slo.sloth")
    assert message in problem.message


def test_a_sloth_file_is_bounded_as_a_config_file_is(tmp_path: Path) -> None:
    """Nested aliases (a 600-byte file expanding to billions of values) are refused at
    once, never expanded; odd keys in `sli` are a message, never a crash."""
    anchors = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    anchors += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "bomb.yaml").write_text(
        'version: "prometheus/v1"\n' + "\n".join(anchors) + "\nslos: [{name: *a9}]\n"
    )
    (tmp_path / "okrs.yaml").write_text(CONFIG.format(ref="slos/bomb.yaml#x"))
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "okrs.yaml")
    (problem,) = caught.value.problems
    assert problem.line == 10 and "aliases (*name) expand to more than 10,000" in problem.message
    (tmp_path / "slos" / "mix.yaml").write_text(
        'version: "prometheus/v1"\nslos: [{name: avail, objective: 99, sli: {1: a, b: c}}]\n'
    )
    (tmp_path / "okrs.yaml").write_text(CONFIG.format(ref="slos/mix.yaml#avail"))
    with pytest.raises(ConfigError, match=r"okrsync reads `sli\.events`.*this SLO has sli: 1, b"):
        load(tmp_path / "okrs.yaml")


def test_a_sloth_spec_among_the_config_files_is_named_as_such(tmp_path: Path) -> None:
    path = config_with(tmp_path, "slos/getting-started.yml#requests-availability")
    shutil.copy(FIXTURES / "getting-started.yml", tmp_path / "slo.yaml")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    (problem,) = caught.value.problems
    assert problem.file.endswith("slo.yaml") and problem.line == 1
    assert "a Sloth spec, not okrsync config: keep Sloth files out of the config folder" in str(
        problem
    )
    assert load(path).also_read  # the same spec in a subfolder is read, not loaded as config
