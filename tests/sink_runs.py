"""The steps the sink tests share: a check-in through the CLI, one delivery step, the outbox.

Each works on `tmp_path/okrs.yaml` (config) and `tmp_path/x.db` (store) and pushes the KR
`api-uptime`; FAST is a delivery policy with waits short enough for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from okrsync.cli.main import main
from okrsync.config.loader import load
from okrsync.sinks.delivery import Policy, Report, deliver
from okrsync.store.store import Store

FAST = Policy(attempts_per_run=3, backoff=0.01, max_backoff=0.05, max_wait=1.0)


def checkin(tmp_path: Path, value: float) -> None:
    db = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
    assert main(["checkin", "api-uptime", *db, "--", str(value)]) == 0


def send(tmp_path: Path) -> Report:
    store = Store(tmp_path / "x.db")
    try:
        return deliver(store, load(tmp_path / "okrs.yaml").sinks, policy=FAST)
    finally:
        store.close()


def rows(tmp_path: Path) -> list[dict[str, Any]]:
    store = Store(tmp_path / "x.db")
    try:
        return store.outbox.listing()
    finally:
        store.close()
