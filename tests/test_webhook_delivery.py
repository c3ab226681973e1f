"""Delivery to a real loopback webhook: retries, Retry-After, timeouts, dropped
connections, permanent failures, order per KR, signatures, and a SIGKILL between
measuring and delivering."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from clock import running_period
from webhook_receiver import Receiver, receiving

from okrsync.cli.main import main
from okrsync.config.loader import load
from okrsync.sinks.delivery import Policy, deliver
from okrsync.store.store import Store

FAST = Policy(attempts_per_run=4, backoff=0.01, max_backoff=0.05, max_wait=1.0)


def setup(tmp_path: Path, url: str, krs: int = 1, timeout: float = 0.5) -> Path:
    lines = [
        running_period("2026-Q4").rstrip(),
        "sinks:",
        f"  okr-portal: {{type: webhook, url: '{url}', timeout: {timeout}, max_attempts: 6}}",
        "objectives:",
        "  - id: o",
        "    title: O",
        "    key_results:",
    ]
    lines += [
        f"      - {{id: k{i}, source: manual, target: 100, push: [okr-portal]}}" for i in range(krs)
    ]
    (tmp_path / "okrs.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path / "okrs.yaml"


def checkin(tmp_path: Path, kr: str, value: float) -> None:
    args = ["checkin", kr, str(value), "--config", str(tmp_path / "okrs.yaml")]
    assert main([*args, "--db", str(tmp_path / "x.db")]) == 0


def send(tmp_path: Path) -> tuple[Store, object]:
    store = Store(tmp_path / "x.db")
    report = deliver(store, load(tmp_path / "okrs.yaml").sinks, policy=FAST)
    return store, report


def states(store: Store) -> list[tuple[str, int, int | None]]:
    return [(r["state"], r["attempts"], r["last_status_code"]) for r in store.outbox.listing()]


@pytest.mark.parametrize(
    ("script", "attempts", "last_code"),
    [
        (["500", "500"], 3, 200),
        (["429:0.2"], 2, 200),
        (["hang:1.5"], 2, 200),
        (["close", "503"], 3, 200),
    ],
    ids=["5xx-twice", "429-retry-after", "hang-past-timeout", "connection-closed"],
)
def test_retryable_failures_are_retried_until_delivered(
    tmp_path: Path, script: list[str], attempts: int, last_code: int
) -> None:
    """Each retryable failure is tried again with the same key until the receiver takes it;
    okrsync marks the delivery delivered once, with its attempts counted."""
    with receiving(script) as receiver:
        setup(tmp_path, receiver.url)
        checkin(tmp_path, "k0", 5)
        store, _ = send(tmp_path)
        keys = {s.key for s in receiver.seen}
        assert len(keys) == 1 and len(receiver.seen) == attempts
        assert len(receiver.delivered()) == 1
        assert states(store) == [("delivered", attempts, last_code)]
        store.close()


def test_429_waits_as_retry_after_says(tmp_path: Path) -> None:
    """The retry after a 429 waits Retry-After seconds, not the (shorter) backoff."""
    waits: list[float] = []
    policy = Policy(attempts_per_run=3, backoff=0.01, max_wait=5, sleep=waits.append)
    with receiving(["429:2"]) as receiver:
        setup(tmp_path, receiver.url)
        checkin(tmp_path, "k0", 5)
        store = Store(tmp_path / "x.db")
        deliver(store, load(tmp_path / "okrs.yaml").sinks, policy=policy)
        assert waits == [2.0] and len(receiver.delivered()) == 1
        store.close()


def test_a_retry_after_longer_than_the_run_waits_leaves_it_pending(tmp_path: Path) -> None:
    """A Retry-After beyond `max_wait` is not slept through: the delivery stays pending
    with its next attempt time, and the KR's later deliveries wait behind it."""
    with receiving(["429:120"]) as receiver:
        setup(tmp_path, receiver.url)
        checkin(tmp_path, "k0", 5)
        checkin(tmp_path, "k0", 6)
        store, report = send(tmp_path)
        assert len(receiver.seen) == 1
        listing = store.outbox.listing()
        assert [r["state"] for r in listing] == ["pending", "pending"]
        assert listing[0]["last_status_code"] == 429 and listing[0]["next_attempt_at"]
        assert report.pending == 2  # type: ignore[attr-defined]
        store.close()


def test_a_4xx_fails_for_good_with_the_body_cut_short_and_secrets_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 400 is not retried; its body (truncated, the secret masked) is the last error and
    `sync --once` exits 4 with the count; `deliveries retry --all` re-queues it."""
    monkeypatch.setenv("OKRSYNC_OKR_PORTAL_SECRET", "hunter2-secret")
    with receiving(["400:bad value hunter2-secret " + "x" * 2000]) as receiver:
        setup(tmp_path, receiver.url)
        checkin(tmp_path, "k0", 5)
        db = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
        assert main(["sync", "--once", *db]) == 4
        assert len(receiver.seen) == 1
        store = Store(tmp_path / "x.db")
        [row] = store.outbox.listing(failed_only=True)
        store.close()
        assert row["state"] == "failed" and row["last_status_code"] == 400
        assert "hunter2" not in row["last_error"] and row["last_error"].startswith("HTTP 400: bad")
        assert len(row["last_error"]) < 600
        assert main(["deliveries", "retry", "--all", *db]) == 0
        assert main(["sync", "--once", *db]) == 0
        assert [s.key for s in receiver.seen] == [row["idempotency_key"]] * 2
        assert len(receiver.delivered()) == 1


def test_deliveries_json_has_the_contract_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deliveries --json` lists id, kr_id, sink, idempotency_key, state, attempts,
    last_status_code (a number), last_error and next_attempt_at."""
    with receiving() as receiver:
        setup(tmp_path, receiver.url)
        checkin(tmp_path, "k0", 5)
        db = ["--config", str(tmp_path / "okrs.yaml"), "--db", str(tmp_path / "x.db")]
        assert main(["sync", "--once", *db]) == 0
        assert "deliveries: 1 sent" in capsys.readouterr().out
        assert main(["deliveries", "--json", *db]) == 0
        [row] = json.loads(capsys.readouterr().out)
    assert set(row) == {
        "id",
        "kr_id",
        "sink",
        "idempotency_key",
        "state",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
    }
    assert row["last_status_code"] == 200 and row["state"] == "delivered"


def test_the_signature_verifies_as_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OKRSYNC_<SINK>_SECRET set the receiver can verify the HMAC of the exact body;
    without it no signature is sent."""
    monkeypatch.setenv("OKRSYNC_OKR_PORTAL_SECRET", "s3cret-value")
    with receiving() as receiver:
        setup(tmp_path, receiver.url)
        checkin(tmp_path, "k0", 5)
        send(tmp_path)[0].close()
        monkeypatch.delenv("OKRSYNC_OKR_PORTAL_SECRET")
        checkin(tmp_path, "k0", 6)
        send(tmp_path)[0].close()
    signed, unsigned = receiver.seen
    expected = hmac.new(b"s3cret-value", signed.body, hashlib.sha256).hexdigest()
    assert signed.signature is not None
    assert hmac.compare_digest(signed.signature, f"sha256={expected}")
    assert unsigned.signature is None and b"s3cret" not in signed.body


def test_every_value_arrives_in_order_per_kr_across_concurrent_kr_queues(
    tmp_path: Path,
) -> None:
    """Twelve KRs with three values each, some first answers 500: every key arrives, each
    KR's values in the order measured, and each delivery is marked delivered once."""
    with receiving(["500", "500", "500", "close"]) as receiver:
        setup(tmp_path, receiver.url, krs=12)
        for value in (1, 2, 3):
            for i in range(12):
                checkin(tmp_path, f"k{i}", value)
        store, report = send(tmp_path)
        listing = store.outbox.listing()
        store.close()
    delivered = receiver.delivered()
    assert len(delivered) == 36 and len({s.key for s in delivered}) == 36
    assert {s.key for s in delivered} == {r["idempotency_key"] for r in listing}
    for i in range(12):
        values = [s.json["value"] for s in delivered if s.json["kr_id"] == f"k{i}"]
        assert values == [1, 2, 3]
    assert all(r["state"] == "delivered" for r in listing)
    assert report.sent == 36  # type: ignore[attr-defined]


def test_a_killed_sync_leaves_its_deliveries_pending_for_the_next_run(tmp_path: Path) -> None:
    """SIGKILL while the receiver holds the request: the measurement is stored, its delivery
    pending; the next `sync --once` sends it with the same idempotency key."""
    with receiving(["hang:30"]) as receiver:
        setup(tmp_path, receiver.url, timeout=20)
        checkin(tmp_path, "k0", 5)
        env = {**os.environ, "OKRSYNC_CONFIG": str(tmp_path / "okrs.yaml")}
        env["OKRSYNC_DB"] = str(tmp_path / "x.db")
        proc = subprocess.Popen(
            [sys.executable, "-m", "okrsync", "sync", "--once"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert receiver.arrived.wait(20), "the delivery never arrived"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        first = receiver.seen[0].key
        store = Store(tmp_path / "x.db")
        [row] = store.outbox.listing()
        store.close()
        assert row["state"] == "pending" and row["idempotency_key"] == first
        done = subprocess.run(
            [sys.executable, "-m", "okrsync", "sync", "--once"], env=env, capture_output=True
        )
        assert done.returncode == 0, done.stderr
    assert [s.key for s in receiver.delivered()] == [first]
    assert _receiver_saw_each_key(receiver) == {first: 2}


def _receiver_saw_each_key(receiver: Receiver) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in receiver.seen:
        counts[s.key] = counts.get(s.key, 0) + 1
    return counts
