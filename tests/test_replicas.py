"""Several `okrsync run` on one SQLite store (issue 14): one leader through the store's
lease, failover on a crash or a clean stop, and fencing of a paused ex-leader's writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from replica_runs import (
    EVERY,
    KRS,
    LEASE,
    SLACK,
    Cluster,
    Replica,
    cluster,
    exactly_once,
    lease_row,
    measured_each,
    measurements,
    rows_of,
    runs,
)
from waiting import wait_until
from webhook_receiver import receiving

# A measurement is late at most: the lease left to run, a standby's check, one tick.
FAILOVER = LEASE + LEASE / 3 + EVERY + SLACK
MAX_GAP = EVERY + LEASE + LEASE / 3 + SLACK


@pytest.fixture
def replicas(tmp_path: Path, db_url: str) -> Iterator[Cluster]:
    """Replicas on a SQLite file, then on a PostgreSQL database."""
    with cluster(tmp_path, db_url) as started:
        yield started


def leading_pair(replicas: Cluster) -> tuple[Replica, Replica]:
    """Start two replicas; once the first leads and has measured every KR, (leader, standby)."""
    first, second = replicas.start("first"), replicas.start("second")
    gauges = wait_until(
        lambda: (g := (first.leader(), second.leader())) in {(1, 0), (0, 1)} and g,
        what="exactly one okrsync_leader 1, the other 0",
    )
    leader, standby = (first, second) if gauges == (1, 0) else (second, first)
    wait_until(
        lambda: measured_each(replicas.db, leader, 1),
        what=f"leader measured every KR\n{leader.stderr()}",
    )
    return leader, standby


def test_two_replicas_elect_one_leader_which_alone_writes(replicas: Cluster) -> None:
    """One leader (gauge 1, the lease's holder) measures; the standby is ready, serves the
    store's values and writes nothing, so a KR is never measured by both."""
    leader, standby = leading_pair(replicas)
    assert (leader.leader(), standby.leader()) == (1, 0)
    assert leader.get("/readyz").status_code == 200
    assert standby.get("/readyz").status_code == 200
    assert standby.get("/healthz").status_code == 200
    held = lease_row(replicas.db)
    assert held is not None and held.holder == leader.holder() and standby.holder() is None
    wait_until(
        lambda: standby.metric("okrsync_kr_value", 'kr="a",objective="o"') == 1,
        timeout=LEASE + SLACK,
        what=f"standby serves the store's value\n{standby.get('/metrics').text}",
    )
    wait_until(lambda: measured_each(replicas.db, leader, 3), what="more ticks")
    assert not standby.run_ids() and not standby.events("batch_refused")
    wait_until(lambda: set(runs(replicas.db)) <= leader.run_ids(), what="only the leader's runs")
    assert {r.run_id for r in measurements(replicas.db)} <= leader.run_ids()
    exactly_once(measurements(replicas.db), MAX_GAP)


def test_a_killed_leader_is_replaced_and_no_due_time_is_measured_twice(replicas: Cluster) -> None:
    """SIGKILL of the leader: the standby takes the lease (new epoch) and measures within
    lease + a third + one tick; each due time is measured once across the failover."""
    leader, standby = leading_pair(replicas)
    before = lease_row(replicas.db)
    assert before is not None
    killed = time.time()
    leader.proc.kill()
    leader.proc.wait(timeout=10)
    wait_until(
        lambda: rows_of(replicas.db, standby),
        timeout=FAILOVER + 5,
        what=f"the standby measures\n{standby.stderr()}",
    )
    first = min(r.measured_at for r in rows_of(replicas.db, standby))
    acquired = standby.events("leader_acquired")
    assert len(acquired) == 1 and acquired[0]["epoch"] == before.epoch + 1
    assert acquired[0]["lease_s"] == LEASE
    print(f"SIGKILL failover: first standby measurement {first - killed:.2f}s after the kill")
    assert first - killed <= FAILOVER, f"{first - killed:.2f}s > {FAILOVER}s"
    assert standby.leader() == 1
    taken = lease_row(replicas.db)
    assert taken is not None and (taken.holder, taken.epoch) == (
        standby.holder(),
        before.epoch + 1,
    )
    wait_until(lambda: measured_each(replicas.db, standby, 2), what="standby ticks")
    rows = measurements(replicas.db)
    assert {r.run_id for r in rows} <= leader.run_ids() | standby.run_ids()
    exactly_once(rows, MAX_GAP)


def test_a_paused_leader_is_fenced_off_after_the_takeover(replicas: Cluster) -> None:
    """SIGSTOP the leader mid-fetch for longer than the lease: the standby takes over; on
    SIGCONT the old leader's late batch is refused, it steps down, and nothing it wrote
    has a run finished after the new epoch began."""
    leader, standby = leading_pair(replicas)
    before = lease_row(replicas.db)
    assert before is not None
    replicas.source.delay = 0.5  # so the leader has a query in flight when paused
    wait_until(lambda: replicas.source.in_flight > 0, what="a query in flight")
    leader.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(
            lambda: standby.events("leader_acquired"),
            timeout=FAILOVER,
            what=f"standby takes over\n{standby.stderr()}",
        )
        taken = lease_row(replicas.db)
        assert taken is not None and taken.holder == standby.holder()
        assert taken.epoch == before.epoch + 1
        wait_until(lambda: rows_of(replicas.db, standby), timeout=FAILOVER, what="standby rows")
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: leader.events("leader_lost"), timeout=LEASE + SLACK, what="leader_lost")
    wait_until(lambda: leader.leader() == 0, timeout=SLACK, what="the old leader's gauge 0")
    replicas.source.delay = 0.0
    wait_until(lambda: measured_each(replicas.db, standby, 2), what="standby ticks")
    lost = leader.events("leader_lost")
    assert lost[0]["epoch"] == before.epoch and lost[0]["holder"] == before.holder
    assert leader.events("batch_refused"), f"the in-flight batch was not refused\n{lost}"
    assert standby.leader() == 1
    for replica in (leader, standby):
        replica.proc.send_signal(signal.SIGTERM)
        assert replica.proc.wait(timeout=15) == 0
    written = runs(replicas.db)
    assert set(written) == leader.run_ids() | standby.run_ids()
    assert not leader.run_ids() & standby.run_ids()
    late = {i: t for i, t in written.items() if i in leader.run_ids() and t[1] >= taken.acquired_at}
    assert not late, f"the old leader wrote after epoch {taken.epoch} began: {late}"
    exactly_once(measurements(replicas.db), MAX_GAP)


def test_a_clean_stop_hands_the_lease_over_at_the_next_check(replicas: Cluster) -> None:
    """SIGTERM releases the lease (leader_released), so the standby takes it within about
    a third of the lease rather than waiting for it to expire."""
    leader, standby = leading_pair(replicas)
    before = lease_row(replicas.db)
    assert before is not None
    stopped = time.monotonic()
    leader.proc.send_signal(signal.SIGTERM)
    assert leader.proc.wait(timeout=15) == 0
    after = lease_row(replicas.db)  # released (expired at once) unless already taken
    assert after is not None and (after.expires_at == 0 or after.epoch == before.epoch + 1)
    released = leader.events("leader_released")
    assert released and released[0]["epoch"] == before.epoch
    acquired = wait_until(
        lambda: standby.events("leader_acquired"),
        timeout=LEASE + SLACK,
        what=f"standby takes over\n{standby.stderr()}",
    )
    took = time.monotonic() - stopped
    print(f"SIGTERM handover: standby leads {took:.2f}s after the signal")
    assert took <= LEASE / 3 + SLACK, f"{took:.2f}s > {LEASE / 3 + SLACK}s"
    assert acquired[0]["epoch"] == before.epoch + 1
    wait_until(lambda: measured_each(replicas.db, standby, 2), what="standby ticks")
    exactly_once(measurements(replicas.db), MAX_GAP)


def test_sync_once_and_status_work_beside_a_leading_daemon(replicas: Cluster) -> None:
    """`sync --once` writes its own run next to the leader, and `status` reads the store;
    the daemon keeps its lease and goes on measuring."""
    daemon = replicas.start("daemon")
    wait_until(lambda: daemon.leader() == 1, what="leads")
    wait_until(lambda: rows_of(replicas.db, daemon), what="measures")
    store = ["--config", str(replicas.config), "--db", str(replicas.db)]
    sync = okrsync("sync", "--once", *store)
    assert sync.returncode == 0, sync.stderr
    synced = [r for r in measurements(replicas.db) if r.run_id not in daemon.run_ids()]
    assert {r.kr_id for r in synced} == set(KRS)
    status = okrsync("status", "--json", *store)
    assert status.returncode == 0, status.stderr
    values = {
        k["id"]: k["value"] for k in json.loads(status.stdout)["objectives"][0]["key_results"]
    }
    assert values == {k: 1 for k in KRS}
    measured = len(rows_of(replicas.db, daemon))
    wait_until(lambda: len(rows_of(replicas.db, daemon)) > measured, what="still measuring")
    assert daemon.leader() == 1 and not daemon.events("leader_lost")


def okrsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "okrsync", *args], capture_output=True, text=True, timeout=60
    )


def test_a_delivery_in_flight_at_a_failover_reaches_the_receiver_once(
    replicas: Cluster,
) -> None:
    """The leader is killed while the receiver holds its delivery: its claim dies with it
    (its lease moved on; here on one host its process is gone too, the unit test in
    test_outbox_claims checks the lease alone), the new leader sends it with the same
    idempotency key, and the receiver answers each key 200 exactly once."""
    with receiving(["hang:20"]) as receiver:
        text = replicas.config.read_text().replace("target: 2}", "target: 2, push: [hook]}")
        sink = f"sinks:\n  hook: {{type: webhook, url: '{receiver.url}', timeout: 15}}\n"
        replicas.config.write_text(text.replace("objectives:", sink + "objectives:", 1))
        first = replicas.start("first")
        wait_until(lambda: first.leader() == 1, what="first leads")
        assert receiver.arrived.wait(FAILOVER), "the first delivery never arrived"
        standby = replicas.start("second")
        first.proc.kill()
        first.proc.wait(timeout=10)
        wait_until(
            lambda: len(receiver.delivered()) == len(KRS),
            timeout=FAILOVER + 15,
            what=f"every KR's delivery answered 200\n{standby.stderr()}",
        )
    hung = receiver.seen[0].key
    delivered = [s.key for s in receiver.delivered()]
    assert len(delivered) == len(set(delivered)) == len(KRS) and hung in delivered
    assert [s.key for s in receiver.seen].count(hung) == 2  # in flight, then once more
