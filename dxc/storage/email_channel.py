"""The installation's e-mail channel: one web-hook (control database).

The secret that signs the web-hook's payloads is stored as the caller seals
it (:mod:`dxc.mail` encrypts it); this module never sees it in clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from dxc.storage import schema
from dxc.storage.clock import utcnow

DEFAULT = "default"


@dataclass(frozen=True)
class StoredChannel:
    url: str
    sealed_secret: str


def set_channel(connection: Connection, url: str, sealed_secret: str) -> None:
    table = schema.email_channels
    connection.execute(delete(table).where(table.c.name == DEFAULT))
    connection.execute(
        insert(table).values(name=DEFAULT, url=url, secret=sealed_secret, updated=utcnow())
    )


def get_channel(connection: Connection) -> StoredChannel | None:
    table = schema.email_channels
    row = connection.execute(
        select(table.c.url, table.c.secret).where(table.c.name == DEFAULT)
    ).one_or_none()
    return StoredChannel(row.url, row.secret) if row else None
