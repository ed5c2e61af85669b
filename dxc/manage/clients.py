"""A database's API clients: ``npx dexie-cloud clients|authorize|unauthorize|revoke|rotate``.

A manager can only hand out scopes its token holds, and only replace, rotate
or delete clients whose every scope its token holds too: otherwise a token
scoped down (``connect`` asks for none) or a lesser manager could mint itself
a stronger key or remove the stronger managers. No change may leave the
database without a verified, unexpired client that holds every scope:
someone must always be able to manage and delete it.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from dxc.auth.otp import is_email
from dxc.auth.scopes import ADMIN_SCOPES
from dxc.auth.tokens import AccessClaims
from dxc.errors import Conflict, Forbidden, Invalid, NotFound
from dxc.services import Services
from dxc.storage import credentials
from dxc.storage.clock import utcnow

#: Days a rotated client keeps working unless ``oldClientExpiryDays`` says otherwise.
DEFAULT_EXPIRY_DAYS = 7
MAX_EXPIRY_DAYS = 3650


def client_row(client: credentials.ApiClient) -> dict[str, Any]:
    """One row of ``GET /clients`` (``DXCClient`` plus a few columns)."""
    return {
        "id": client.client_id,
        "email": client.email,
        "emailVerified": client.verified,
        "scopes": list(client.scopes),
        "serviceAccount": client.service_account,
        "expiresAt": client.expires.isoformat() if client.expires else None,
        "created": client.created.isoformat() if client.created else None,
    }


def list_clients(services: Services, db_id: str) -> list[dict[str, Any]]:
    with services.control.connect() as connection:
        connection.execution_options(read_only=True)
        return [client_row(c) for c in credentials.list_api_clients(connection, db_id)]


def add_client(
    services: Services, db_id: str, caller: AccessClaims, body: Any
) -> dict[str, Any]:
    """``clients/add``: a pending client, or a service account with its secret at once."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object {email, scopes, serviceAccount}")
    email = body.get("email")
    if not isinstance(email, str) or not is_email(email.strip()):
        raise Invalid("email must be an e-mail address")
    email = email.strip().lower()
    service_account = body.get("serviceAccount", False)
    if not isinstance(service_account, bool):
        raise Invalid("serviceAccount must be true or false")
    scopes = _scopes(body.get("scopes"), caller)
    with services.control.begin() as connection:
        if service_account:
            client, secret = credentials.create_api_client(
                connection, db_id, scopes, email, service_account=True
            )
            return {"ok": True, "clientId": client.client_id, "clientSecret": secret}
        # Authorizing again replaces a pending authorization: the newest scopes count.
        mine = credentials.api_clients_of(connection, db_id, email)
        pending = [c for c in mine if not c.verified]
        _refuse_stronger(pending, caller, "replace")
        credentials.delete_api_clients(connection, [c.client_id for c in pending])
        credentials.authorize_api_client(connection, db_id, scopes, email)
    return {"ok": True}


def _scopes(value: Any, caller: AccessClaims) -> tuple[str, ...]:
    """Valid, deduplicated scopes that the caller holds too."""
    if value is None:
        value = list(ADMIN_SCOPES)
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise Invalid("scopes must be a non-empty list of scope names")
    scopes = tuple(dict.fromkeys(s.strip().upper() for s in value))
    unknown = [s for s in scopes if s not in ADMIN_SCOPES]
    if unknown:
        raise Invalid(
            f"unknown scope {', '.join(unknown)} (valid: {', '.join(ADMIN_SCOPES)})"
        )
    _require_held(scopes, caller)
    return scopes


def _require_held(scopes: tuple[str, ...], caller: AccessClaims) -> None:
    missing = [s for s in scopes if s not in caller.scopes]
    if missing:
        raise Forbidden(
            f"you can only grant scopes that your own token has; missing {', '.join(missing)}"
        )


def _refuse_stronger(
    clients: list[credentials.ApiClient], caller: AccessClaims, action: str
) -> None:
    """Refuse to ``action`` clients holding a scope the caller's token lacks (no escalation)."""
    missing = sorted({s for c in clients for s in c.scopes if s not in caller.scopes})
    if missing:
        raise Forbidden(
            f"you can only {action} API clients whose scopes your own token has; "
            f"missing {', '.join(missing)}"
        )


def delete_clients(services: Services, db_id: str, caller: AccessClaims, body: Any) -> int:
    """``clients/delete`` by ``email`` (all their clients) or ``client_id``; how many went."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object {email} or {client_id}")
    email, client_id = body.get("email"), body.get("client_id")
    if (email is None) == (client_id is None):
        raise Invalid("give either email or client_id")
    key, value = ("email", email) if email is not None else ("client_id", client_id)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{key} must be a non-empty string")
    value = value.strip()
    with services.control.begin() as connection:
        clients = credentials.list_api_clients(connection, db_id, for_update=True)
        if key == "email":
            gone = {c.client_id for c in clients if (c.email or "").lower() == value.lower()}
        else:
            gone = {c.client_id for c in clients if c.client_id == value}
        if gone:
            _refuse_stronger([c for c in clients if c.client_id in gone], caller, "delete")
            _require_an_admin([c for c in clients if c.client_id not in gone])
        return credentials.delete_api_clients(connection, sorted(gone))


def _require_an_admin(remaining: list[credentials.ApiClient]) -> None:
    now = utcnow()
    if not any(
        c.verified and not c.expired(now) and set(ADMIN_SCOPES) <= set(c.scopes)
        for c in remaining
    ):
        raise Conflict(
            "refused: the database must keep at least one verified, unexpired API client "
            f"with all scopes ({' '.join(ADMIN_SCOPES)}). Authorize another one first."
        )


def rotate_client(
    services: Services, db_id: str, caller: AccessClaims, body: Any
) -> dict[str, Any]:
    """``clients/rotate``: a new client like the old one, which expires after some days.

    Without ``clientId`` the caller's own client (its client token's ``sub``)
    is rotated. The caller (``MANAGE_DB``, checked by the route) must hold
    every scope of the rotated client, its own too: the new key gets exactly
    the old one's scopes, so a scoped-down token cannot trade itself up.
    """
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object {oldClientExpiryDays?, clientId?}")
    days = _expiry_days(body.get("oldClientExpiryDays"))
    client_id = body.get("clientId")
    if client_id is None:
        if caller.user_type != "client":
            raise Invalid("only an API client's token can rotate itself; give clientId")
        client_id = caller.sub
    elif not isinstance(client_id, str) or not client_id.strip():
        raise Invalid("clientId must be a non-empty string")
    now = utcnow()
    with services.control.begin() as connection:
        old = credentials.get_api_client(connection, client_id.strip())
        if old is None or old.db_id != db_id:
            raise NotFound(f"there is no API client {client_id} in this database")
        _refuse_stronger([old], caller, "rotate")
        if not old.verified:
            raise Conflict("this API client was never connected: it has no key to rotate")
        if old.expired(now):
            raise Conflict("this API client has expired already")
        new, secret = credentials.create_api_client(
            connection, db_id, old.scopes, old.email, service_account=old.service_account
        )
        expires = now + timedelta(days=days)
        if old.expires is not None:
            expires = min(expires, old.expires)
        credentials.expire_api_client(connection, old.client_id, expires)
    return {
        "clientId": new.client_id,
        "clientSecret": secret,
        "oldClientExpiresAt": expires.isoformat(),
        "oldClientId": old.client_id,
    }


def _expiry_days(value: Any) -> float:
    if value is None:
        return DEFAULT_EXPIRY_DAYS
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_EXPIRY_DAYS
    ):
        raise Invalid(
            f"oldClientExpiryDays must be a number of days above 0, at most {MAX_EXPIRY_DAYS}"
        )
    return value
