"""`history` of a huge history (1,000,000 rows over 10 years) streams: its memory does not
grow with the rows, for the text table and for --json alike."""

from __future__ import annotations

import json
import sqlite3
import tracemalloc
from pathlib import Path

import pytest

from okrsync.cli.main import main
from okrsync.store.store import Store

ROWS = 40_000


def fill(db: Path) -> None:
    Store(db).close()
    conn = sqlite3.connect(db)
    rows = (
        (
            "big",
            "2026-Q4",
            f"20{16 + i // 4000:02d}-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z",
        )
        for i in range(ROWS)
    )
    with conn:
        conn.executemany(
            "INSERT INTO measurements (kr_id, period, measured_at, value, source, query, manual)"
            " VALUES (?, ?, ?, 5.0, 'prom', 'sum(up{job=\"api\", env=\"production\"})', 0)",
            rows,
        )
    conn.close()


@pytest.mark.parametrize("as_json", [False, True])
def test_a_long_history_streams_in_bounded_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    db = tmp_path / "big.db"
    fill(db)
    written = 0

    class Counting:
        """stdout that counts what it is given and keeps none of it."""

        def write(self, text: str) -> int:
            nonlocal written
            written += len(text)
            return len(text)

        def flush(self) -> None:
            pass

    argv = ["--db", str(db), "history", "big"] + (["--json"] if as_json else [])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", Counting())
        tracemalloc.start()
        try:
            code = main(argv)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert code == 0
    assert written > ROWS * 50  # every row was written
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB for {ROWS} rows: not streamed"


def test_history_json_is_one_valid_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "big.db"
    fill(db)
    assert main(["--db", str(db), "history", "big", "--json", "--limit", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["measured_at"][:4] for r in rows] == ["2025", "2025", "2025"]


def test_history_of_an_unknown_kr_names_close_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As explain does: `history deplys` names `deploys`; a store that does not exist yet
    says so rather than that the KR is unknown."""
    db = tmp_path / "okrsync.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO key_results (id, objective_id) VALUES ('deploys', 'eng')")
    conn.close()
    assert main(["--db", str(db), "history", "deplys"]) == 2
    err = capsys.readouterr().err
    assert "no key result 'deplys'" in err and "(did you mean deploys?)" in err
    assert main(["--db", str(tmp_path / "none.db"), "history", "deploys"]) == 2
    err = capsys.readouterr().err
    assert "no store there yet" in err and "Traceback" not in err
    assert not (tmp_path / "none.db").exists()
