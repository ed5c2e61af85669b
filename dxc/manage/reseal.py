"""Resealing the stored secrets with the current ``DXC_SECRET`` (``flask dxc reseal``).

After ``DXC_SECRET`` changed, with the previous one in ``DXC_OLD_SECRETS``,
what the previous one sealed still opens, but only while it stays listed.
Resealing rewrites those values with the current key, so that the old
secret can go (docs/security.md, "Rotating DXC_SECRET"). Every value is
opened before anything is written: one that no accepted key opens is
refused by name, and then nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import Column, Connection, select, update

from dxc import mail
from dxc.auth import oauth_providers
from dxc.errors import Conflict
from dxc.replication import relocations
from dxc.secret_keys import Keyring
from dxc.storage import schema, shard_urls


@dataclass(frozen=True)
class Sealed:
    """A column of sealed values, and how a refusal names one of its rows."""

    kind: str
    column: Column[Any]
    purpose: str
    #: The row's name: ``str.format`` with the row's columns.
    label: str


#: Every sealed value in the control database.
SEALED = (
    Sealed("shard connection strings", schema.shards.c.sealed_url,
           shard_urls.SEALING_PURPOSE, "shard {name}"),
    Sealed("OAuth client secrets", schema.oauth_providers.c.secret,
           oauth_providers.SEALING_PURPOSE, "OAuth provider {name} of database {db_id}"),
    Sealed("e-mail channel secrets", schema.email_channels.c.secret,
           mail.SEALING_PURPOSE, "the e-mail channel ({name})"),
    Sealed("replication source secrets", schema.replications.c.sealed_secret,
           relocations.SEALING_PURPOSE,
           "the replication of database {db_id} (its source's API client secret)"),
    Sealed("replication token keys", schema.replications.c.sealed_token_key,
           relocations.SEALING_PURPOSE,
           "the replication of database {db_id} (its source's access-token key)"),
)


@dataclass(frozen=True)
class Resealed:
    """What ``reseal`` did to one kind of value."""

    kind: str
    resealed: int
    #: Already sealed with the current key: left as they were.
    current: int


def reseal(connection: Connection, keyring: Keyring) -> list[Resealed]:
    """Reseal with the current key every sealed value that another accepted key sealed.

    :class:`Conflict` naming the values that no accepted key opens, before
    anything is written. Rows are locked (PostgreSQL) until the caller commits.
    """
    report, writes, unreadable = [], [], []
    for sealed in SEALED:
        table = sealed.column.table
        current, accepted = keyring.current_fernet(sealed.purpose), keyring.fernet(sealed.purpose)
        rows = connection.execute(
            select(table).where(sealed.column.is_not(None)).with_for_update()
        ).all()
        done = 0
        for row in rows:
            token = row._mapping[sealed.column].encode()
            try:
                current.decrypt(token)
                continue
            except InvalidToken:
                pass
            try:
                new = accepted.rotate(token).decode()
            except InvalidToken:
                unreadable.append(sealed.label.format(**row._mapping))
                continue
            key = [column == row._mapping[column] for column in table.primary_key]
            writes.append(update(table).where(*key).values({sealed.column.name: new}))
            done += 1
        report.append(Resealed(sealed.kind, done, len(rows) - done))
    if unreadable:
        raise Conflict(
            "nothing was resealed: neither DXC_SECRET nor DXC_OLD_SECRETS opens "
            + "; ".join(unreadable)
            + ". Add the secret that sealed them to DXC_OLD_SECRETS, or give them again "
            "(update-shard NAME --url, oauth add, init-email-channel)."
        )
    for statement in writes:
        connection.execute(statement)
    return report
