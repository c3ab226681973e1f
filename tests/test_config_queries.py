"""KR query keys are checked as they will be sent, and in the same run as everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from okrsync.config.loader import load
from okrsync.errors import ConfigError

HEAD = "period: {name: Q4, start: 2026-10-01, end: 2026-12-31}\n"


def problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "c.yaml").write_text(HEAD + text)
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "c.yaml")
    return [str(p).split(": ", 1)[1] for p in info.value.problems]


def test_placeholders_are_filled_before_the_query_model_checks(tmp_path: Path) -> None:
    """`{period.name}` in a JMESPath or a repo is valid: the model sees the filled-in value."""
    (tmp_path / "c.yaml").write_text(
        HEAD
        + "sources:\n"
        + "  web: {type: http, url: 'http://127.0.0.1:9'}\n"
        + "  gh: {type: github}\n"
        + "objectives:\n  - id: o\n    title: O\n    key_results:\n"
        + "      - {id: a, source: web, extract: 'sums.\"{period.name}\"', target: 5}\n"
        + "      - {id: b, source: gh, repo: 'acme/{period.name}', metric: releases, target: 5}\n"
    )
    assert {kr.id for _, kr in load(tmp_path / "c.yaml").key_results()} == {"a", "b"}


def test_kr_of_an_invalid_source_is_still_checked(tmp_path: Path) -> None:
    """A source with a mistake of its own does not hide its KRs' mistakes (one round)."""
    found = problems(
        tmp_path,
        "sources:\n  web: {type: http, url: 'http://127.0.0.1:9', timeout: -1}\n"
        "objectives:\n  - id: o\n    title: O\n    key_results:\n"
        "      - {id: a, source: web, extract: 'a', method: PUT, target: 5}\n",
    )
    assert any(p.startswith("sources.web.timeout") for p in found)
    assert "objectives[0].key_results[0].method: 'PUT' is not one of GET, POST" in found


def test_did_you_mean_never_suggests_the_key_itself(tmp_path: Path) -> None:
    """`query` on a source is unknown there, but 'did you mean query' helps nobody."""
    found = problems(tmp_path, "sources:\n  p: {type: prometheus, url: 'http://x', query: up}\n")
    assert found == ["sources.p.query: unknown key 'query'"]


def test_a_misspelt_source_type_gets_a_hint(tmp_path: Path) -> None:
    """`type: promethues` names the type it probably meant."""
    found = problems(tmp_path, "sources:\n  p: {type: promethues, url: 'http://x'}\n")
    assert found == [
        "sources.p: unknown source type 'promethues' "
        "(known: prometheus, jira, github, http; did you mean 'prometheus'?)"
    ]


def test_github_query_keys_that_would_be_ignored_are_errors(tmp_path: Path) -> None:
    """`search` with `repo`, or `workflow` without the workflow metric, would be ignored."""
    found = problems(
        tmp_path,
        "sources:\n  gh: {type: github}\n"
        "objectives:\n  - id: o\n    title: O\n    key_results:\n"
        "      - {id: a, source: gh, search: 'is:pr', repo: acme/api, target: 5}\n"
        "      - {id: b, source: gh, repo: acme/api, metric: releases, workflow: ci.yml,"
        " target: 5}\n",
    )
    assert found == [
        "objectives[0].key_results[0]: use `search` or `repo`, not both "
        "(put repo:OWNER/NAME in the search)",
        "objectives[0].key_results[1]: `workflow` and `branch` go with "
        "`metric: workflow_success_rate` only",
    ]


def test_validating_does_not_import_the_jira_or_github_libraries(tmp_path: Path) -> None:
    """Checking a config loads the connectors' models, not PyGithub or jira (start-up time)."""
    import subprocess
    import sys

    code = (
        "import sys; from okrsync.config.loader import load; load(sys.argv[1]); "
        "print(sorted(m for m in ('jira', 'github') if m in sys.modules))"
    )
    shipped = Path(__file__).parent.parent / "config"
    out = subprocess.run(
        [sys.executable, "-c", code, str(shipped)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
