"""How psycopg2 waits for PostgreSQL in a gevent worker.

A query normally waits on the event loop (psycogreen's callback), so that the
worker serves other requests meanwhile. That is wrong for a transaction that
holds a database's revision lock: each of its round trips would queue it
behind every request the worker has in hand, and every writer of that
database, in every worker, waits as long as it. So a greenlet inside
:func:`holding_lock` waits for its answers without yielding, for at most
``BLOCK_AT_MOST`` seconds per wait (then it yields after all): the lock is
held for the time its statements take, not for the time the worker is busy.

A writer waits for the lock itself on the loop, and enters
:func:`holding_lock` once it has it: waiting without yielding would stall
the holder if that is in the same worker. And the writers of a database in
one worker take turns (:func:`turn`) before they ask PostgreSQL for the lock,
so that one greenlet per worker waits for it and the worker's writers are
served in the order they came (without turns, with 50 writers of one
database, some waited seconds: ``docs/architecture.md``).
"""

from __future__ import annotations

import functools
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
import psycopg2
from gevent import monkey
from gevent.monkey import get_original
from gevent.socket import wait_read, wait_write
from psycogreen.gevent import gevent_wait_callback
from psycopg2 import extensions

#: Seconds one wait of a lock holder may stall its worker before it yields.
BLOCK_AT_MOST = 0.05

# poll, not select: a worker with many sockets has descriptors above select's 1024.
_poll = get_original("select", "poll")
#: Greenlets inside :func:`holding_lock`.
_holders: set[object] = set()
#: Databases share this many turns (:func:`turn`): a few writers of two databases
#: that hash alike wait for each other in a worker, and memory stays bounded.
TURNS = 64


def install() -> None:
    """Make psycopg2 cooperative (psycogreen), but for lock holders."""
    extensions.set_wait_callback(_wait)


@contextmanager
def holding_lock() -> Iterator[None]:
    """Wait for PostgreSQL without yielding to other greenlets until the block ends."""
    current = gevent.getcurrent()
    _holders.add(current)
    try:
        yield
    finally:
        _holders.discard(current)


@contextmanager
def turn(db_id: str) -> Iterator[None]:
    """Let this worker's writers of ``db_id`` go for its revision lock one at a time,
    first come first served, waiting on the event loop meanwhile.

    Only an ordering of this process's writers: PostgreSQL's lock (SQLite's
    ``BEGIN IMMEDIATE``) is what keeps revisions in order. Reentrant, so that a
    writer that nests another write of a database sharing the turn goes on."""
    with _turns(monkey.is_module_patched("threading"))[hash(db_id) % TURNS]:
        yield


@functools.cache
def _turns(patched: bool) -> list[threading.RLock]:
    """The turns, made anew once gevent has patched ``threading`` (a worker imports
    this module before): a turn must be waited for on the event loop."""
    return [threading.RLock() for _ in range(TURNS)]


def _wait(connection, timeout: float | None = None) -> None:  # type: ignore[no-untyped-def]
    if gevent.getcurrent() not in _holders:
        gevent_wait_callback(connection, timeout)
        return
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        fileno = connection.fileno()
        if state == extensions.POLL_READ:
            if not _ready(fileno, select.POLLIN):
                wait_read(fileno, timeout=timeout)
        elif state == extensions.POLL_WRITE:
            if not _ready(fileno, select.POLLOUT):
                wait_write(fileno, timeout=timeout)
        else:
            raise psycopg2.OperationalError(f"Bad result from poll: {state!r}")


def _ready(fileno: int, event: int) -> bool:
    """Whether ``fileno`` is ready for ``event`` within ``BLOCK_AT_MOST`` (blocking the worker)."""
    poller = _poll()
    poller.register(fileno, event)
    return bool(poller.poll(BLOCK_AT_MOST * 1000))
