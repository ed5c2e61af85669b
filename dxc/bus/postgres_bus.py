"""The bus over PostgreSQL ``LISTEN``/``NOTIFY`` on the control database.

The listener keeps one connection of its own, outside the pool, and waits
for it with ``select.select``, which gevent's monkey patching turns into a
wait on the event loop (psycopg2 itself is made cooperative by psycogreen
in gunicorn's ``post_fork``).
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable

import psycopg2
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from dxc import metrics
from dxc.bus.base import WAKE_SECONDS, Bus, Change

CHANNEL = "dxc_changes"
#: NOTIFY payloads must stay below 8000 bytes; longer ones go without their realm list.
MAX_PAYLOAD_BYTES = 7900
#: Seconds of silence after which the listener checks that its connection still works.
IDLE_CHECK_SECONDS = 30


class PostgresBus(Bus):
    name = "postgres-bus"
    # A restart of PostgreSQL: the pool's connect fails (DBAPIError), or our own
    # connection, used without SQLAlchemy, raises psycopg2's errors.
    outages = (DBAPIError, psycopg2.OperationalError, psycopg2.InterfaceError, OSError)

    def __init__(self, control: Engine) -> None:
        super().__init__()
        self.control = control

    def publish_in(self, connection: Connection, change: Change) -> bool:
        """A ``NOTIFY`` is delivered at commit: in a transaction on the control
        database (the default shard) it needs no transaction of its own."""
        if connection.engine is not self.control:
            return False
        _notify(connection, change)
        metrics.BUS_CHANGES.labels("published").inc()
        return True

    def _send(self, change: Change) -> None:
        with self.control.begin() as connection:
            _notify(connection, change)

    def _listen(self, connected: Callable[[], None]) -> None:
        proxy = self.control.raw_connection()
        proxy.detach()  # held for good: closing it closes the connection
        try:
            connection = proxy.dbapi_connection
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            connected()
            heard = time.monotonic()
            while not self.stopping:
                if select.select([connection], [], [], WAKE_SECONDS)[0]:
                    connection.poll()
                    heard = time.monotonic()
                elif time.monotonic() - heard > IDLE_CHECK_SECONDS:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1")  # raises if the connection died
                    heard = time.monotonic()
                while connection.notifies:
                    self._received(Change.from_json(connection.notifies.pop(0).payload))
        finally:
            # Not proxy.close(): its rollback would fail (and log) on a connection that died.
            proxy.dbapi_connection.close()


def _notify(connection: Connection, change: Change) -> None:
    payload = change.to_json()
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        payload = change.to_json(drop_realms=True)
    connection.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
    )
