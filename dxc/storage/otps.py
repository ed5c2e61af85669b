"""Pending one-time passwords of e-mail logins (control database).

Only an HMAC of each code is stored (see :mod:`dxc.auth.otp`). A row lives
until its code is used or it expires; once its attempts are spent, it takes
no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

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


_COLUMNS = (
    schema.otps.c.otp_id, schema.otps.c.audience, schema.otps.c.email, schema.otps.c.code_hash,
    schema.otps.c.scopes, schema.otps.c.intent, schema.otps.c.attempts, schema.otps.c.expires,
)


def _otp(row: Row[Any]) -> Otp:
    values = dict(row._mapping)
    values["scopes"] = tuple(values["scopes"].split())
    return Otp(**values)


def get_otp(connection: Connection, otp_id: str) -> Otp | None:
    row = connection.execute(
        select(*_COLUMNS).where(schema.otps.c.otp_id == otp_id)
    ).one_or_none()
    return None if row is None else _otp(row)


def take_attempt(
    connection: Connection, otp_id: str, audience: str, email: str | None, max_attempts: int
) -> Otp | None:
    """Spend one attempt of ``otp_id`` before its code is compared; None if none is left.

    The check and the increment are one conditional UPDATE: the row lock it
    takes orders parallel guesses, so no more than ``max_attempts`` codes are
    ever compared. The answer carries the attempts spent, this one included.
    None also when the OTP is unknown, expired, for another audience or (if
    ``email`` is given) for another address.
    """
    table = schema.otps
    query = update(table).where(
        table.c.otp_id == otp_id,
        table.c.audience == audience,
        table.c.attempts < max_attempts,
        table.c.expires > utcnow(),
    )
    if email:
        query = query.where(table.c.email == email)
    row = connection.execute(
        query.values(attempts=table.c.attempts + 1).returning(*_COLUMNS)
    ).one_or_none()
    return None if row is None else _otp(row)


def consume_otp(connection: Connection, otp_id: str) -> bool:
    """Delete ``otp_id``; False if it was already gone (used by a concurrent request)."""
    result = connection.execute(delete(schema.otps).where(schema.otps.c.otp_id == otp_id))
    return result.rowcount == 1


def delete_expired_otps(connection: Connection) -> None:
    connection.execute(delete(schema.otps).where(schema.otps.c.expires <= utcnow()))
