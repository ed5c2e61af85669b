"""How psycopg2 waits for PostgreSQL in a gevent worker.

A query normally waits on the event loop (psycogreen's callback), so that the
worker serves other requests meanwhile. That is wrong for a transaction that
holds a database's revision lock: each of its round trips would queue it
behind every request the worker has in hand, and every writer of that
database, in every worker, waits as long as it. So a greenlet inside
:func:`holding_lock` waits for its answers without yielding, for at most
``BLOCK_AT_MOST`` seconds per wait (then it yields after all): the lock is
held for the time its statements take, not for the time the worker is busy.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager

import gevent
import psycopg2
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
