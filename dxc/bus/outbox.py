"""Changes on their way to the bus, merged while a send is in flight.

A ``NOTIFY`` costs a transaction of its own on the control database, and
PostgreSQL serialises every committing ``NOTIFY`` of the cluster on one
lock. One per write made many writers of a database wait for each other,
so a worker sends its changes in batches instead: the first change after
a quiet moment goes out at once (the writer sends it), and those that come
while it is on its way wait for the next batch, merged to one per database
(the newest revision, every realm). A socket needs nothing more: it reads
what it is missing from the database, whatever the change said.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dxc import cooperative
from dxc.bus.base import Change

log = logging.getLogger(__name__)


class Outbox:
    """Hands changes to ``send`` in batches: one :class:`Change` per database and shard,
    awareness updates (never merged) in their order.

    A writer that finds nothing on its way sends its change itself, at once; the
    batches that gather meanwhile go out from a greenlet of their own under gevent,
    so that no writer waits for the others' news. Elsewhere (a command) the writer
    sends them too, so that nothing is left unsent at the process's exit."""

    def __init__(
        self, send: Callable[[list[Change]], None], outages: tuple[type[Exception], ...] = ()
    ) -> None:
        """``outages``: what ``send`` raises while its broker is away (one line each in the
        log, no traceback: repeated while it lasts)."""
        self._send = send
        self._outages = outages
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, int | None], Change] = {}
        self._awareness: list[Change] = []
        self._sending = False

    def put(self, change: Change) -> None:
        with self._lock:
            if change.awareness is not None:
                self._awareness.append(change)
            else:
                key = (change.db_id, change.shard_id)
                waiting = self._waiting.get(key)
                self._waiting[key] = change if waiting is None else waiting.merged(change)
            if self._sending:
                return  # goes out with the next batch of the one sending
            self._sending = True
        if self._send_batch() and cooperative.under_gevent():
            cooperative.start(self._drain)
        else:
            self._drain()

    def _drain(self) -> None:
        while self._send_batch():
            pass

    def _send_batch(self) -> bool:
        """Send what waits; False when nothing did (the next change finds no one sending)."""
        with self._lock:
            batch = [*self._awareness, *self._waiting.values()]
            self._awareness, self._waiting = [], {}
            if not batch:
                self._sending = False
                return False
        try:
            self._send(batch)
        except self._outages as error:
            log.warning("could not send %d changes (%s): sockets catch up at the next poll",
                        len(batch), type(error).__name__)
        except Exception:
            log.exception("could not send %d changes (sockets catch up at the next poll)",
                          len(batch))
        return True
