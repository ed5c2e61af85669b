"""Keeps every replication running: after a restart, a crash, or a job that gave up.

Each web worker checks now and then for replications whose lease ran out
and enqueues their job; the lease makes all but one of those jobs end at
once, so several workers (or installations sharing a control database) may
all supervise.
"""

from __future__ import annotations

import logging
import threading
import time

from dxc.replication.job import LEASE_SECONDS, attach, run_replication
from dxc.replication.relocations import RELOAD_SECONDS
from dxc.services import Services
from dxc.storage import replications

log = logging.getLogger(__name__)


def supervise(services: Services, period: float = LEASE_SECONDS / 3) -> None:
    """Start checking in the background (greenlets under gevent); also close the sockets
    of databases that moved away, so that their clients reconnect and are relayed."""
    attach(services)
    threading.Thread(
        target=_loop, args=(services, period), name="dxc-replication-supervisor", daemon=True
    ).start()
    threading.Thread(
        target=_watch_moves, args=(services,), name="dxc-moves", daemon=True
    ).start()


def _loop(services: Services, period: float) -> None:
    while True:
        try:
            resume_unclaimed(services)
        except Exception as error:  # a control database that does not answer: try later
            log.warning("replication supervisor: %s", error)
        time.sleep(period)


def _watch_moves(services: Services) -> None:
    while True:
        try:
            for db_id in services.relocations.reload():
                closed = services.live.close_database(db_id)
                log.info("%s moved: closed its %d socket(s) here", db_id, closed)
        except Exception as error:
            log.warning("watching moved databases: %s", error)
        time.sleep(RELOAD_SECONDS)


def resume_unclaimed(services: Services) -> list[str]:
    """Enqueue the job of every replication no job holds; their ids."""
    with services.control.connect() as connection:
        waiting = replications.unclaimed(connection)
    for db_id in waiting:
        services.jobs.enqueue(run_replication, db_id)
    return waiting
