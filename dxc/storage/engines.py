"""Create SQLAlchemy engines tuned for each backend we support."""

from __future__ import annotations

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url

#: Seconds to wait for a PostgreSQL connection: a request fails (503) instead of hanging.
CONNECT_TIMEOUT_SECONDS = 5


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

    PostgreSQL connections are pinged before use, so that a server restart
    costs the requests made while it is down and nothing after it, and their
    connect timeout is bounded (unless the URL sets ``connect_timeout``).
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
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    event.listen(engine, "handle_error", _unstorable_values)
    return engine


def _unstorable_values(context: ExceptionContext) -> Exception | None:
    """Name a driver's refusal of a bound value (a plain ValueError or
    OverflowError, which SQLAlchemy passes through unwrapped) as what it is."""
    error = context.original_exception
    if context.sqlalchemy_exception is None and isinstance(error, ValueError | OverflowError):
        return UnstorableValue(str(error))
    return None


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
