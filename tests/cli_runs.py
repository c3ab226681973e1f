"""One in-process CLI run against `tmp_path/okrs.yaml` and `tmp_path/x.db`, for the tests
that drive okrsync as a user would (the report's, among others)."""

from __future__ import annotations

from pathlib import Path

import pytest

from okrsync.cli.main import main


def okr(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`okrsync COMMAND --config ... --db ... ARGS`: its exit status, stdout and stderr."""
    capsys.readouterr()
    db = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
    code = main([argv[0], *db, *argv[1:]])
    out, err = capsys.readouterr()
    return code, out, err
