"""Pending one-time passwords of e-mail logins (control database).

Only an HMAC of each code is stored (see :mod:`dxc.auth.otp`). A row lives
until its code is used, its attempts are exhausted or it expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow


@dataclass(frozen=True)
class Otp:
    otp_id: str
    audience: str
    email: str
    code_hash: str
    scopes: tuple[str, ...]
    intent: str | None
    attempts: int
    expires: datetime

    @property
    def expired(self) -> bool:
        return as_utc(self.expires) <= utcnow()


def create_otp(connection: Connection, otp: Otp) -> None:
    connection.execute(
        insert(schema.otps).values(
            otp_id=otp.otp_id,
            audience=otp.audience,
            email=otp.email,
            code_hash=otp.code_hash,
            scopes=" ".join(otp.scopes),
            intent=otp.intent,
            attempts=otp.attempts,
            created=utcnow(),
            expires=otp.expires,
        )
    )


def get_otp(connection: Connection, otp_id: str) -> Otp | None:
    table = schema.otps
    row = connection.execute(
        select(
            table.c.otp_id, table.c.audience, table.c.email, table.c.code_hash, table.c.scopes,
            table.c.intent, table.c.attempts, table.c.expires,
        ).where(table.c.otp_id == otp_id)
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    values["scopes"] = tuple(values["scopes"].split())
    return Otp(**values)


def count_wrong_attempt(connection: Connection, otp_id: str) -> int:
    """Add one wrong attempt to ``otp_id``; the number of wrong attempts so far."""
    table = schema.otps
    connection.execute(
        update(table).where(table.c.otp_id == otp_id).values(attempts=table.c.attempts + 1)
    )
    return connection.scalar(select(table.c.attempts).where(table.c.otp_id == otp_id)) or 0


def consume_otp(connection: Connection, otp_id: str) -> bool:
    """Delete ``otp_id``; False if it was already gone (used by a concurrent request)."""
    result = connection.execute(delete(schema.otps).where(schema.otps.c.otp_id == otp_id))
    return result.rowcount == 1


def delete_expired_otps(connection: Connection) -> None:
    connection.execute(delete(schema.otps).where(schema.otps.c.expires <= utcnow()))
