"""The per-worker counts behind ``flask dxc stats``, summed over workers (in-process)."""

from __future__ import annotations

import time

import pytest

from dxc.activity import ALIVE_FLUSHES, Activity, current_minute
from dxc.storage import activity as store


def worker(services, sockets: dict[str, int], name: str) -> Activity:
    """What one worker process holds; its id set as ``start`` would, without its greenlet."""
    counted = Activity(services.control, lambda: sockets, period=5)
    counted.worker_id = name
    return counted


def totals(services, db_id: str, now: float) -> tuple[int, int, int, int]:
    with services.control.connect() as connection:
        minutes = store.minutes(connection, db_id, current_minute(now) - 4)
        open_now = store.sockets(connection, db_id, int(now - ALIVE_FLUSHES * 5))
    return (
        sum(m.syncs for m in minutes), sum(m.forwarded for m in minutes),
        open_now.sockets, open_now.relayed,
    )


def test_counts_of_every_worker_are_summed_and_a_dead_workers_sockets_drop_out(services):
    now = time.time()
    one_sockets, two_sockets = {"db1": 2}, {"db1": 1, "db2": 4}
    one, two = worker(services, one_sockets, "w1"), worker(services, two_sockets, "w2")
    for _ in range(3):
        one.synced("db1")
    two.synced("db1")
    two.forwarded("db1")
    two.synced("db2")
    with two.relaying("db1"):
        one.flush(now)
        two.flush(now)
        one.synced("db1")  # a second flush of the same minute adds to its row
        one.flush(now + 1)
        assert totals(services, "db1", now + 1) == (5, 1, 3, 1)
    assert totals(services, "db2", now + 1) == (1, 0, 4, 0)

    one_sockets.clear()  # w1's sockets closed; w2 stops flushing (it died)
    one.flush(now + 20)
    assert totals(services, "db1", now + 20) == (5, 1, 0, 0)
    assert totals(services, "db2", now + 20)[2] == 0


def test_counts_older_than_the_window_are_not_reported(services):
    now = time.time()
    old = worker(services, {}, "w1")
    old.synced("db1")
    old.flush(now)
    assert totals(services, "db1", now)[0] == 1
    assert totals(services, "db1", now + 10 * 60)[0] == 0


def test_a_flush_that_fails_keeps_its_counts_for_the_next(services, monkeypatch):
    now = time.time()
    counted = worker(services, {}, "w1")
    counted.synced("db1")

    def broken(*_args):
        raise RuntimeError("the control database does not answer")

    monkeypatch.setattr(store, "add_counts", broken)
    with pytest.raises(RuntimeError):
        counted.flush(now)
    monkeypatch.undo()
    counted.synced("db1")
    counted.flush(now)
    assert totals(services, "db1", now)[0] == 2
