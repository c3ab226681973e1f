"""The leader lease in the store: who leads, epochs as fencing tokens, takeover on expiry."""

from __future__ import annotations

import threading

import pytest

from okrsync.service.leadership import Leadership, NotLeader
from okrsync.store import lease
from okrsync.store.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def replica(store: Store, clock: Clock, changes: list[bool]) -> Leadership:
    return Leadership(store, threading.Lock(), 15.0, clock, changes.append)


def test_one_holder_at_a_time_and_a_new_epoch_on_takeover(db_url: str) -> None:
    store = Store(db_url)
    db = store.db
    with store.transaction():
        assert lease.acquire(db, "a", 15, 1_000) == 1
        assert lease.acquire(db, "b", 15, 1_010) is None  # a's runs until 1015
        assert lease.acquire(db, "a", 15, 1_010) == 1  # its own: extended, same epoch
        assert lease.acquire(db, "b", 15, 1_026) == 2  # expired: taken, a new epoch
        assert not lease.renew(db, "a", 1, 15, 1_027)
        assert not lease.holds(db, "a", 1) and lease.holds(db, "b", 2)
        assert lease.renew(db, "b", 2, 15, 1_050)  # lapsed, but nobody took it: still b's
        lease.release(db, "b", 2)
        assert lease.acquire(db, "a", 15, 1_051) == 3
    store.close()


def test_two_replicas_one_leads_and_a_late_write_is_refused(db_url: str) -> None:
    """The standby takes the lease once the leader's has expired; the old leader's next
    write is refused inside its transaction, nothing written, and it steps down."""
    clock = Clock()
    a_changes: list[bool] = []
    b_changes: list[bool] = []
    a_store, b_store = Store(db_url), Store(db_url)
    a, b = replica(a_store, clock, a_changes), replica(b_store, clock, b_changes)
    a.step()
    b.step()
    assert a.leading and not b.leading and a_changes == [True] and b_changes == []
    clock.now += 10
    a.step()  # renewed: until 1025
    clock.now += 14
    b.step()
    assert not b.leading
    clock.now += 2  # a paused past its lease
    b.step()
    assert b.leading and b.epoch == 2 and b_changes == [True]
    with pytest.raises(NotLeader), a_store.transaction(fence=a.fence):
        a_store.db.execute("INSERT INTO runs (id, kind) VALUES ('late', 'daemon')")
    assert not a.leading and a_changes == [True, False]
    assert b_store.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    with b_store.transaction(fence=b.fence):
        b_store.db.execute("INSERT INTO runs (id, kind) VALUES ('b', 'daemon')")
    a.step()  # b's lease runs: a stands by
    assert not a.leading
    b.stop()  # a clean stop gives it up
    a.step()
    assert a.leading and a.epoch == 3
    for store in (a_store, b_store):
        store.close()


def test_a_standby_follows_the_store_at_each_check(db_url: str) -> None:
    clock = Clock()
    followed: list[int] = []
    stores = [Store(db_url) for _ in range(2)]
    leader = replica(stores[0], clock, [])
    standby = Leadership(
        stores[1], threading.Lock(), 3.0, clock, lambda _: None, lambda: followed.append(1)
    )
    leader.step()
    standby.step()
    standby.step()
    assert followed == [1, 1] and standby.every == 1.0
    for store in stores:
        store.close()
