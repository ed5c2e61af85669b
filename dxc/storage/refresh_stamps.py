"""Signed refresh requests already answered (control database).

The client signs a refresh request over the refresh token and its time
stamp, and the server accepts a time stamp within ``DXC_REFRESH_CLOCK_SKEW``
of its clock; without a record, a captured request could be sent again for
that long. Each (token, time stamp) is remembered until its stamp leaves the
window, so every signed request is answered once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert
from sqlalchemy.exc import IntegrityError

from dxc.storage import schema
from dxc.storage.clock import utcnow

#: How long a record outlives its expiry: a request that passed the clock check
#: a moment before the expiry must still find it when it records its own.
GRACE = timedelta(minutes=1)


def use(connection: Connection, token_hash: str, time_stamp: int, expires: datetime) -> bool:
    """Record the request signed at ``time_stamp``; False if it was answered already.

    The primary key decides between parallel copies: on PostgreSQL the
    second insert waits for the first transaction and fails if it commits.
    """
    table = schema.used_refresh_stamps
    connection.execute(delete(table).where(table.c.expires < utcnow() - GRACE))
    try:
        with connection.begin_nested():
            connection.execute(
                insert(table).values(token_hash=token_hash, time_stamp=time_stamp, expires=expires)
            )
    except IntegrityError:
        return False
    return True
