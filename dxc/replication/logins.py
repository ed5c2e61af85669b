"""The logins of a database, handed from its source to the copy that takes over.

Clients keep the access and refresh tokens the source issued and send them
to the copy (forwarded by the source, or directly once the app is
republished). So the copy takes, once the source stopped writing: the
users (a refresh needs its user), the sessions (refresh tokens as SHA-256
digests with the client's public key: useless without the client's private
key), and the key of the source's access tokens for this one database, which
the copy accepts (:class:`dxc.auth.tokens.ForeignIssuer`) until they expire.
Sessions minted by API clients (impersonation) stay behind: their client
does not move.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Table, select
from sqlalchemy.exc import IntegrityError

from dxc.errors import Conflict
from dxc.protocol import ProtocolError
from dxc.services import Services
from dxc.storage import schema
from dxc.storage.clock import utcnow
from dxc.storage.objects import ObjectStore

SESSION_COLUMNS = ("token_hash", "user_id", "public_key", "created", "expires", "scopes")


def export_logins(services: Services, db_id: str) -> dict[str, Any]:
    """What the copy of ``db_id`` needs to accept its clients' logins; only once the
    database here stopped taking writes (``flask dxc redirect``)."""
    with services.router.shard_for(db_id).transaction(read_only=True) as connection:
        _, frozen = ObjectStore(connection, db_id).head()
    if not frozen:
        raise Conflict(
            f"{db_id} still takes writes here: its logins leave with it (flask dxc redirect)"
        )
    users, sessions = schema.users, schema.refresh_tokens
    with services.control.connect() as connection:
        user_rows = connection.execute(select(users).where(users.c.db_id == db_id))
        session_rows = connection.execute(
            select(*(sessions.c[name] for name in SESSION_COLUMNS)).where(
                sessions.c.db_id == db_id, sessions.c.revoked.is_(None),
                sessions.c.client_id.is_(None), sessions.c.expires > utcnow(),
            )
        )
        return {
            "issuer": services.signer.issuer,
            "audience": db_id,
            "tokenKey": base64.b64encode(services.signer.key_for(db_id)).decode(),
            "users": [_out(row) for row in user_rows],
            "sessions": [_out(row) for row in session_rows],
        }


def import_logins(connection: Connection, db_id: str, document: Any) -> tuple[str, str, bytes]:
    """Store the users and sessions of ``document`` for ``db_id`` (those not here yet);
    the source's issuer, its database id and its token key."""
    if not isinstance(document, dict):
        raise ProtocolError("the source's logins are not a JSON object")
    issuer, audience, key = document.get("issuer"), document.get("audience"), document.get(
        "tokenKey"
    )
    if not (isinstance(issuer, str) and isinstance(audience, str) and isinstance(key, str)):
        raise ProtocolError("the source's logins lack issuer, audience or tokenKey")
    try:
        raw_key = base64.b64decode(key, validate=True)
    except binascii.Error:
        raise ProtocolError("the source's tokenKey is not base64") from None
    for row in _rows(document, "users"):
        _insert_new(connection, schema.users, db_id, row)
    for row in _rows(document, "sessions"):
        _insert_new(connection, schema.refresh_tokens, db_id, row, SESSION_COLUMNS)
    return issuer, audience, raw_key


def _out(row: Any) -> dict[str, Any]:
    values = dict(row._mapping)
    values.pop("db_id", None)
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def _rows(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = document.get(name) or []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ProtocolError(f"the source's {name} are not a list of objects")
    return rows


def _insert_new(
    connection: Connection, table: Table, db_id: str, row: dict[str, Any],
    columns: tuple[str, ...] | None = None,
) -> None:
    """Insert ``row`` unless its key is taken here (a user who logged in here already)."""
    names = columns or tuple(c.name for c in table.columns if c.name != "db_id")
    values: dict[str, Any] = {"db_id": db_id}
    for name in names:
        value = row.get(name)
        if isinstance(table.c[name].type, DateTime) and isinstance(value, str):
            value = datetime.fromisoformat(value)
        values[name] = value
    try:
        with connection.begin_nested():
            connection.execute(table.insert().values(**values))
    except IntegrityError:
        pass
