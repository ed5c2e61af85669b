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
from dxc.services import Services
from dxc.storage import replications

log = logging.getLogger(__name__)


def supervise(services: Services, period: float = LEASE_SECONDS / 3) -> None:
    """Start checking in the background (a greenlet under gevent)."""
    attach(services)
    threading.Thread(
        target=_loop, args=(services, period), name="dxc-replication-supervisor", daemon=True
    ).start()


def _loop(services: Services, period: float) -> None:
    while True:
        try:
            resume_unclaimed(services)
        except Exception as error:  # a control database that does not answer: try later
            log.warning("replication supervisor: %s", error)
        time.sleep(period)


def resume_unclaimed(services: Services) -> list[str]:
    """Enqueue the job of every replication no job holds; their ids."""
    with services.control.connect() as connection:
        waiting = replications.unclaimed(connection)
    for db_id in waiting:
        services.jobs.enqueue(run_replication, db_id)
    return waiting
