"""The bus over PostgreSQL ``LISTEN``/``NOTIFY`` on the control database.

The listener keeps one connection of its own, outside the pool, and waits
for it with ``select.select``, which gevent's monkey patching turns into a
wait on the event loop (psycopg2 itself is made cooperative by psycogreen
in gunicorn's ``post_fork``).

``LISTEN`` needs a session of its own: behind a pooler in transaction mode
(PgBouncer's ``pool_mode = transaction``) the listening session is handed to
other clients between transactions and notifications never reach us. Each
worker checks at its start (:meth:`PostgresBus.check`) that a ``NOTIFY`` sent
through the pool reaches a ``LISTEN`` and refuses to run if it does not.

A change is sent after its commit, in a transaction of its own, with the
others that came meanwhile (:class:`~dxc.bus.outbox.Outbox`): a ``NOTIFY``
inside the writer's transaction would hold PostgreSQL's cluster-wide notify
lock through every writer's commit. A worker that dies between a commit and
its ``NOTIFY`` loses the notification, so every listener also reads the
revision counters of its databases every ``SAFETY_POLL_SECONDS``, as
:class:`~dxc.bus.local_bus.LocalBus` does.
"""

from __future__ import annotations

import secrets
import select
import time
from collections.abc import Callable

import psycopg2
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from dxc.bus.base import WAKE_SECONDS, BusUnusable, Change
from dxc.bus.outbox import Outbox
from dxc.bus.polling_bus import SAFETY_POLL_SECONDS, PollingBus
from dxc.storage.engines import single_statements
from dxc.storage.router import ShardRouter

CHANNEL = "dxc_changes"
#: NOTIFY payloads must stay below 8000 bytes; longer ones go without their realm list.
MAX_PAYLOAD_BYTES = 7900
#: A batch in one round trip, in its order: sent alone, the two statements are a transaction
#: of their own, whose commit need not wait for the disk (a notification has nothing to
#: keep: after a crash of PostgreSQL every listener reconnects and every socket checks).
_NOTIFY = text(
    "SET LOCAL synchronous_commit = off;"
    " SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) payload"
)
#: Seconds of silence after which the listener checks that its connection still works.
IDLE_CHECK_SECONDS = 30
#: Seconds the start-up check waits for its own notification (a direct connection: milliseconds).
PROBE_SECONDS = 5.0


class PostgresBus(PollingBus):
    name = "postgres-bus"
    # A restart of PostgreSQL: the pool's connect fails (DBAPIError), or our own
    # connection, used without SQLAlchemy, raises psycopg2's errors.
    outages = (DBAPIError, psycopg2.OperationalError, psycopg2.InterfaceError, OSError)

    def __init__(self, control: Engine, router: ShardRouter) -> None:
        super().__init__(router)
        self.control = control
        self._outbox = Outbox(self._notify_all, self.outages)

    def _send(self, change: Change) -> None:
        self._outbox.put(change)

    def _notify_all(self, changes: list[Change]) -> None:
        with single_statements(self.control) as connection:
            _notify(connection, changes)

    def check(self) -> None:
        """Refuse a control database reached through a pooler in transaction mode: a
        ``NOTIFY`` sent through the pool must reach a ``LISTEN`` on a connection of its own.
        An unreachable database is not refused (the listener waits for it as for any outage).
        """
        channel = f"dxc_probe_{secrets.token_hex(8)}"
        try:
            proxy = self.control.raw_connection()
        except self.outages:
            return
        try:
            listening = proxy.dbapi_connection
            listening.autocommit = True
            with listening.cursor() as cursor:
                cursor.execute(f"LISTEN {channel}")
            with self.control.begin() as connection:
                connection.execute(text("SELECT pg_notify(:name, 'probe')"), {"name": channel})
            deadline = time.monotonic() + PROBE_SECONDS
            while not listening.notifies and time.monotonic() < deadline:
                if select.select([listening], [], [], deadline - time.monotonic())[0]:
                    listening.poll()
            heard = bool(listening.notifies)
        except self.outages:
            return
        finally:
            proxy.invalidate()  # never back to the pool: its session listens
        if not heard:
            raise BusUnusable(
                "the PostgreSQL bus (LISTEN/NOTIFY) got no notification through DEXIE_CLOUD: "
                "is the control database behind a pooler in transaction mode (PgBouncer)? "
                "Give the server a direct (or session-pooled) connection, or use the Redis bus "
                "(REDIS_URL); see docs/shards.md"
            )

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
            next_poll = heard + SAFETY_POLL_SECONDS
            while not self.stopping:
                if select.select([connection], [], [], WAKE_SECONDS)[0]:
                    connection.poll()
                    heard = time.monotonic()
                elif time.monotonic() - heard > IDLE_CHECK_SECONDS:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1")  # raises if the connection died
                    heard = time.monotonic()
                while connection.notifies:
                    self._known(Change.from_json(connection.notifies.pop(0).payload))
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + SAFETY_POLL_SECONDS
                    self._poll()
        finally:
            # Not proxy.close(): its rollback would fail (and log) on a connection that died.
            proxy.dbapi_connection.close()


def _notify(connection: Connection, changes: list[Change]) -> None:
    payloads = []
    for change in changes:
        payload = change.to_json()
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            payload = change.to_json(drop_realms=True)
        payloads.append(payload)
    connection.execute(_NOTIFY, {"channel": CHANNEL, "payloads": payloads})
