"""Delivery claims, on both stores: one sender per (KR, sink) queue at a time; a claim
lapses with its time, its claimer's lease, or its claimer's process on this host; two
senders at once deliver every idempotency key exactly once and in order."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from clock import running_period
from webhook_receiver import receiving

from okrsync.cli.main import main
from okrsync.config.loader import load
from okrsync.sinks.delivery import Policy, deliver
from okrsync.store import lease
from okrsync.store.outbox import Claimer
from okrsync.store.store import Store

FAST = Policy(attempts_per_run=2, backoff=0.01, max_backoff=0.05, max_wait=1.0)


def setup(tmp_path: Path, url: str, krs: int) -> Path:
    lines = [
        running_period("2026-Q4").rstrip(),
        f"sinks:\n  hook: {{type: webhook, url: '{url}', timeout: 5, max_attempts: 4}}",
        "objectives:\n  - id: o\n    title: O\n    key_results:",
    ]
    lines += [
        f"      - {{id: k{i}, source: manual, target: 100, push: [hook]}}" for i in range(krs)
    ]
    path = tmp_path / "okrs.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def checkin(config: Path, db: str, kr: str, value: int) -> None:
    assert main(["checkin", kr, str(value), "--config", str(config), "--db", db]) == 0


def claimed(store: Store, who: Claimer, now: float, seconds: float = 60) -> set[str]:
    with store.transaction():
        return {r["kr_id"] for r in store.outbox.claim(who, now, seconds)}


def test_a_queue_is_claimed_by_one_sender_until_its_claim_lapses(
    tmp_path: Path, db_url: str
) -> None:
    config = setup(tmp_path, "http://127.0.0.1:9/hook", krs=2)
    checkin(config, db_url, "k0", 1)
    a, b = Store(db_url), Store(db_url)
    first, second = Claimer("elsewhere:1:aaaaaa"), Claimer("elsewhere:2:bbbbbb")
    assert claimed(a, first, 1_000) == {"k0"}
    checkin(config, db_url, "k0", 2)  # joins a queue `first` holds: not for `second`
    checkin(config, db_url, "k1", 1)
    assert claimed(b, second, 1_010) == {"k1"}
    assert claimed(b, second, 1_061) == {"k0", "k1"}  # first's claim ran out at 1,060
    with b.transaction():
        b.outbox.release(second)
    assert claimed(a, first, 1_062) == {"k0", "k1"}
    a.close()
    b.close()


def test_a_leaders_claims_die_with_its_lease(tmp_path: Path, db_url: str) -> None:
    config = setup(tmp_path, "http://127.0.0.1:9/hook", krs=1)
    checkin(config, db_url, "k0", 1)
    store = Store(db_url)
    with store.transaction():
        epoch = lease.acquire(store.db, "old-leader", 15, 1_000)
    old = Claimer("elsewhere:1:aaaaaa", epoch)
    assert claimed(store, old, 1_000, seconds=300) == {"k0"}
    new = Claimer("elsewhere:2:bbbbbb")
    assert claimed(store, new, 1_020) == set()  # the claim runs until 1,300
    with store.transaction():
        assert lease.acquire(store.db, "new-leader", 15, 1_020) == 2  # the lease moved on
    assert claimed(store, new, 1_021) == {"k0"}
    store.close()


def test_a_claim_of_a_process_that_ended_on_this_host_lapses_at_once(
    tmp_path: Path, db_url: str
) -> None:
    config = setup(tmp_path, "http://127.0.0.1:9/hook", krs=1)
    checkin(config, db_url, "k0", 1)
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    host, _, namespace, _ = lease.holder_id().split(":")
    dead = Claimer(f"{host}:{int(ended.stdout)}:{namespace}:cccccc")
    elsewhere = Claimer(f"{host}:{int(ended.stdout)}:{namespace}0:cccccc")  # another PID ns
    store = Store(db_url)
    assert claimed(store, elsewhere, time.time(), seconds=300) == {"k0"}
    assert claimed(store, Claimer(lease.holder_id()), time.time()) == set()  # may live
    with store.transaction():
        store.outbox.release(elsewhere)
    assert claimed(store, dead, time.time(), seconds=300) == {"k0"}
    assert claimed(store, Claimer(lease.holder_id()), time.time()) == {"k0"}
    store.close()


def test_two_senders_at_once_deliver_each_key_exactly_once_in_order(
    tmp_path: Path, db_url: str
) -> None:
    """Twenty KRs, three values each, then two `okrsync sync --once` at once (each sends
    what is pending) to a slow receiver: each delivery is sent by one of them, each KR's
    values arrive in order, all are delivered."""
    with receiving(["slow:0.05"]) as receiver:
        config = setup(tmp_path, receiver.url, krs=20)
        for value in (1, 2, 3):
            for i in range(20):
                checkin(config, db_url, f"k{i}", value)
        argv = [sys.executable, "-m", "okrsync", "sync", "--once", "--config", str(config)]
        senders = [
            subprocess.Popen([*argv, "--db", db_url], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in senders]
        assert [p.returncode for p in senders] == [0, 0], outputs
        store = Store(db_url)
        listing = store.outbox.listing()
        store.close()
    keys = {s.key for s in receiver.delivered()}
    assert len(keys) == 60 and all(r["state"] == "delivered" for r in listing)
    # Each delivery was sent by one sender: its attempts (one each, unless a timeout made
    # that sender try again: at-least-once) add up to the requests the receiver saw; two
    # senders of one delivery would each record one attempt for two requests.
    assert sum(int(r["attempts"]) for r in listing) == len(receiver.seen)
    first = {s.key: s for s in reversed(receiver.delivered())}  # a retried key: its first
    arrived = sorted(first.values(), key=receiver.delivered().index)
    for i in range(20):
        assert [s.json["value"] for s in arrived if s.json["kr_id"] == f"k{i}"] == [1, 2, 3]


def test_a_sender_whose_claim_was_taken_over_stops_and_records_nothing(
    tmp_path: Path, db_url: str
) -> None:
    """Mid-send, another sender holds the queue now (this one's claim had lapsed): the
    outcome is not written over the new holder's, and the rest of the queue is left to it."""
    config = setup(tmp_path, "http://127.0.0.1:9/hook", krs=1)
    for value in (1, 2, 3):
        checkin(config, db_url, "k0", value)
    store, other = Store(db_url), Store(db_url)
    sent: list[str] = []

    def sender(name: str, sink: object, body: bytes, key: str) -> int:
        sent.append(key)
        other.db.execute("UPDATE deliveries SET claimed_by = 'elsewhere:9:takeover'")
        return 200

    report = deliver(store, load(config).sinks, policy=FAST, sender=sender)
    rows = other.outbox.listing()
    assert len(sent) == 1 and (report.sent, report.pending) == (0, 3)
    assert [r["state"] for r in rows] == ["pending"] * 3 and rows[0]["attempts"] == 0
    store.close()
    other.close()


def test_a_long_step_renews_its_claims(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that outlasts its claim's time keeps it: another sender finds nothing."""
    from okrsync.sinks import delivery

    monkeypatch.setattr(delivery, "CLAIM_SECONDS", 0.6)
    config = setup(tmp_path, "http://127.0.0.1:9/hook", krs=1)
    for value in (1, 2, 3, 4):
        checkin(config, db_url, "k0", value)
    store, other = Store(db_url), Store(db_url)
    found: list[set[str]] = []

    def sender(name: str, sink: object, body: bytes, key: str) -> int:
        time.sleep(0.3)
        found.append(claimed(other, Claimer("elsewhere:2:bbbbbb"), time.time()))
        return 200

    report = deliver(store, load(config).sinks, policy=FAST, sender=sender)
    assert report.sent == 4 and found == [set()] * 4
    store.close()
    other.close()
