"""Sliding-window rate limits kept in the control database.

Every worker process sees the same counts, which an in-memory limiter
would not give. What is limited (an e-mail address, a client address) is
stored only as a digest.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import Connection, delete, func, insert, select

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow


def hit(connection: Connection, key: str, limit: int, window: timedelta) -> timedelta | None:
    """Count one event for ``key``; None if allowed, else how long until the next is.

    Counting and recording must not interleave between transactions, or
    parallel requests all count below the limit and all pass. SQLite writers
    are serialised already (``BEGIN IMMEDIATE``); on PostgreSQL a lock per
    bucket, held until the caller's transaction ends, does it.
    """
    table = schema.rate_events
    bucket = hashlib.sha256(key.encode()).hexdigest()
    if connection.dialect.name == "postgresql":
        lock = int.from_bytes(bytes.fromhex(bucket)[:8], "big", signed=True)
        connection.execute(select(func.pg_advisory_xact_lock(lock)))
    now = utcnow()
    since = now - window
    count, oldest = connection.execute(
        select(func.count(), func.min(table.c.at)).where(
            table.c.bucket == bucket, table.c.at > since
        )
    ).one()
    if count >= limit:
        return as_utc(oldest) + window - now
    connection.execute(insert(table).values(bucket=bucket, at=now))
    return None


def forget_before(connection: Connection, window: timedelta) -> None:
    """Drop events older than ``window``: they no longer count."""
    table = schema.rate_events
    connection.execute(delete(table).where(table.c.at <= utcnow() - window))
