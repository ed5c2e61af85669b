"""OAuth logins in the control database: providers, OTP switch, pending states, codes.

Client secrets arrive sealed (:mod:`dxc.auth.oauth_providers` encrypts them);
states and codes are stored as SHA-256 digests, like refresh tokens, so a
copy of the table lets nobody finish a login. States and codes are taken
with one ``DELETE … RETURNING``: of two requests with the same value, one
gets the row and the other nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from dxc.storage import schema
from dxc.storage.clock import as_utc, utcnow
from dxc.storage.credentials import digest


@dataclass(frozen=True)
class Provider:
    db_id: str
    name: str
    type: str
    client_id: str
    sealed_secret: str
    issuer: str | None
    display_name: str | None
    icon_url: str | None
    scopes: tuple[str, ...]
    updated: datetime


@dataclass(frozen=True)
class PendingLogin:
    """A login sent to a provider: what its callback needs."""

    db_id: str
    provider: str
    redirect_uri: str
    code_verifier: str
    nonce: str
    expires: datetime

    @property
    def expired(self) -> bool:
        return as_utc(self.expires) <= utcnow()


@dataclass(frozen=True)
class ProvenIdentity:
    """What a Dexie authorization code stands for: a verified address."""

    db_id: str
    provider: str
    email: str
    name: str | None


# --- providers ----------------------------------------------------------------

_PROVIDER = schema.oauth_providers


def _provider(row: object) -> Provider:
    values = dict(row._mapping)  # type: ignore[attr-defined]
    values["sealed_secret"] = values.pop("secret")
    values["scopes"] = tuple(values["scopes"].split())
    return Provider(**values)


def save_provider(connection: Connection, provider: Provider) -> None:
    """Add ``provider``, or replace the one of the same name."""
    connection.execute(delete(_PROVIDER).where(
        _PROVIDER.c.db_id == provider.db_id, _PROVIDER.c.name == provider.name
    ))
    connection.execute(insert(_PROVIDER).values(
        db_id=provider.db_id, name=provider.name, type=provider.type,
        client_id=provider.client_id, secret=provider.sealed_secret, issuer=provider.issuer,
        display_name=provider.display_name, icon_url=provider.icon_url,
        scopes=" ".join(provider.scopes), updated=provider.updated,
    ))


def list_providers(connection: Connection, db_id: str) -> list[Provider]:
    rows = connection.execute(
        select(_PROVIDER).where(_PROVIDER.c.db_id == db_id).order_by(_PROVIDER.c.name)
    )
    return [_provider(row) for row in rows]


def get_provider(connection: Connection, db_id: str, name: str) -> Provider | None:
    row = connection.execute(select(_PROVIDER).where(
        _PROVIDER.c.db_id == db_id, _PROVIDER.c.name == name
    )).one_or_none()
    return None if row is None else _provider(row)


def remove_provider(connection: Connection, db_id: str, name: str) -> bool:
    return connection.execute(delete(_PROVIDER).where(
        _PROVIDER.c.db_id == db_id, _PROVIDER.c.name == name
    )).rowcount == 1


# --- the OTP switch -------------------------------------------------------------


def otp_enabled(connection: Connection, db_id: str) -> bool:
    table = schema.login_settings
    value = connection.scalar(select(table.c.otp_enabled).where(table.c.db_id == db_id))
    return value is not False


def set_otp_enabled(connection: Connection, db_id: str, enabled: bool) -> None:
    table = schema.login_settings
    changed = connection.execute(
        update(table).where(table.c.db_id == db_id).values(otp_enabled=enabled)
    ).rowcount
    if not changed:
        connection.execute(insert(table).values(db_id=db_id, otp_enabled=enabled))


# --- pending logins (state, PKCE verifier, nonce) ---------------------------------


def store_state(connection: Connection, state: str, pending: PendingLogin) -> None:
    table = schema.oauth_states
    connection.execute(delete(table).where(table.c.expires <= utcnow()))
    connection.execute(insert(table).values(
        state_hash=digest(state), db_id=pending.db_id, provider=pending.provider,
        redirect_uri=pending.redirect_uri, code_verifier=pending.code_verifier,
        nonce=pending.nonce, expires=pending.expires,
    ))


def take_state(connection: Connection, state: str) -> PendingLogin | None:
    """The pending login of ``state``, deleted: a state is used once, expired or not."""
    table = schema.oauth_states
    row = connection.execute(
        delete(table).where(table.c.state_hash == digest(state)).returning(
            table.c.db_id, table.c.provider, table.c.redirect_uri, table.c.code_verifier,
            table.c.nonce, table.c.expires,
        )
    ).one_or_none()
    return None if row is None else PendingLogin(**row._mapping)


# --- Dexie authorization codes ------------------------------------------------------


def store_code(
    connection: Connection, code: str, identity: ProvenIdentity, expires: datetime
) -> None:
    table = schema.oauth_codes
    connection.execute(delete(table).where(table.c.expires <= utcnow()))
    connection.execute(insert(table).values(
        code_hash=digest(code), db_id=identity.db_id, provider=identity.provider,
        email=identity.email, name=identity.name, expires=expires,
    ))


def take_code(connection: Connection, db_id: str, code: str) -> ProvenIdentity | None:
    """The identity of an unexpired ``code`` of ``db_id``; the code is gone afterwards."""
    table = schema.oauth_codes
    row = connection.execute(
        delete(table).where(table.c.code_hash == digest(code)).returning(
            table.c.db_id, table.c.provider, table.c.email, table.c.name, table.c.expires,
        )
    ).one_or_none()
    if row is None or row.db_id != db_id or as_utc(row.expires) <= utcnow():
        return None
    return ProvenIdentity(row.db_id, row.provider, row.email, row.name)
