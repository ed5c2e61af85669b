"""Create SQLAlchemy engines tuned for each backend we support."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry

#: Seconds to wait for a PostgreSQL connection: a request fails (503) instead of hanging.
CONNECT_TIMEOUT_SECONDS = 5
#: Seconds after which a pooled PostgreSQL connection is replaced by a new one.
RECYCLE_SECONDS = 1800
#: Seconds a pooled connection may sit unused before it is pinged at its next checkout.
IDLE_PING_SECONDS = 30


class UnstorableValue(ValueError):
    """A bound value the driver cannot send: text with a NUL (psycopg2) or a lone
    surrogate (not UTF-8), an integer beyond SQLite's 64 bits. The request's
    fault, always; the entry points check their input first, this is the net."""


def make_engine(url: URL | str, *, pool_size: int = 5) -> Engine:
    """An engine for PostgreSQL (production) or SQLite (the embedded default).

    SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` so that several
    worker processes can share one file: a writing transaction takes the
    write lock up front instead of failing at its first write. Connections
    with the ``read_only`` execution option begin a plain (deferred)
    transaction and never wait for writers.

    PostgreSQL connections are not pinged before every use (a round trip
    each time): a connection that fails with a disconnect invalidates the
    whole pool, so a server restart costs the requests that meet it (a 503
    the client retries); connections are recycled by age and pinged only
    after sitting idle (a restart or a proxy's idle timeout while nobody
    used them). Their connect timeout is bounded (unless the URL sets
    ``connect_timeout``).
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _serialize_sqlite_writers(engine)
    else:
        connect_args = {}
        if url.get_driver_name() == "psycopg2" and "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=RECYCLE_SECONDS,
            connect_args=connect_args,
        )
        _ping_idle_connections(engine)
    event.listen(engine, "handle_error", _unstorable_values)
    return engine


@contextmanager
def single_statements(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that need no transaction around them.

    On PostgreSQL each statement commits itself: a lookup costs one round trip
    instead of three (``BEGIN``, the statement, ``ROLLBACK``). Under READ COMMITTED
    (the engines' level) each statement of a transaction sees its own snapshot anyway,
    so reads that follow each other see nothing less. psycopg2's ``autocommit`` is
    switched on the client (SQLAlchemy's ``AUTOCOMMIT`` isolation level would send a
    ``SET`` each way); :func:`in_transaction` switches it back for a server-side
    cursor. SQLite reads in a deferred transaction, which costs no round trip."""
    with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            connection.execution_options(read_only=True)
            yield connection
            return
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.autocommit = True  # type: ignore[union-attr]
        try:
            yield connection
        finally:  # an invalidated connection is thrown away: leave it be
            if not connection.invalidated:
                in_transaction(connection)


def in_transaction(connection: Connection) -> None:
    """Let the statements that follow on ``connection`` run in one transaction (a
    server-side cursor needs one) if :func:`single_statements` made it autocommit."""
    dbapi_connection = connection.connection.dbapi_connection
    if getattr(dbapi_connection, "autocommit", False) is True and not dbapi_connection.closed:
        dbapi_connection.autocommit = False  # type: ignore[union-attr]


def _unstorable_values(context: ExceptionContext) -> Exception | None:
    """Name a driver's refusal of a bound value (a plain ValueError or
    OverflowError, which SQLAlchemy passes through unwrapped) as what it is."""
    error = context.original_exception
    if context.sqlalchemy_exception is None and isinstance(error, ValueError | OverflowError):
        return UnstorableValue(str(error))
    return None


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a connection at checkout only if it sat unused for ``IDLE_PING_SECONDS``:
    a dead one is then replaced before the request uses it (the pool retries)."""
    dbapi_error = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except dbapi_error as error:
            raise DisconnectionError(str(error)) from error


def _serialize_sqlite_writers(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below rule
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):  # type: ignore[no-untyped-def]
        read_only = connection.get_execution_options().get("read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
