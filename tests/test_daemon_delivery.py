"""The daemon enqueues each batch's changed values with the batch and delivers them after
the commit, to a real loopback webhook."""

from __future__ import annotations

import time
from concurrent.futures import wait
from pathlib import Path

from clock import running_period
from fakes import ScriptedConnector, factory
from webhook_receiver import receiving

from okrsync.service.daemon import Daemon
from okrsync.service.options import Options

CONFIG = """\
defaults: {{every: 1m}}
sources:
  prom: {{type: prometheus, url: "http://127.0.0.1:1"}}
sinks:
  okr-portal: {{type: webhook, url: "{url}", timeout: 2}}
objectives:
  - id: o
    title: O
    key_results:
      - {{id: bugs, source: prom, query: bugs, start: 10, target: 0, push: [okr-portal]}}
      - {{id: quiet, source: prom, query: quiet, target: 5}}
"""


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_daemon_batch_delivers_its_changed_values(tmp_path: Path) -> None:
    """A measured KR with `push` reaches the webhook once, marked delivered; a KR without
    `push` sends nothing; the same value in the next batch is not pushed again."""
    with receiving() as receiver:
        (tmp_path / "okrs.yaml").write_text(running_period("Q") + CONFIG.format(url=receiver.url))
        clock = Clock()
        conns = {"prom": ScriptedConnector({"bugs": 4, "quiet": 1})}
        daemon = Daemon(
            Options(tmp_path / "okrs.yaml", tmp_path / "x.db", listen=None),
            clock=clock,
            factory=factory(conns),
        )
        daemon.start()
        try:
            for _ in range(2):
                clock.now += 120
                daemon.tick()
                wait(set(daemon.futures), timeout=10)
            with daemon.store_lock:
                listing = daemon.store.outbox.listing()
                measured = len(daemon.store.history("bugs"))
        finally:
            daemon.shutdown()
    assert measured == 2
    [seen] = receiver.delivered()
    assert seen.json["kr_id"] == "bugs" and seen.json["value"] == 4
    assert seen.json["objective_id"] == "o" and seen.json["period"] == "Q"
    assert [(r["state"], r["idempotency_key"]) for r in listing] == [("delivered", seen.key)]
