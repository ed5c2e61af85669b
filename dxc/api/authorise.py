"""The one way an endpoint learns who calls it and whether it may.

:func:`authorise` resolves the database (404 for an unknown one), verifies
the ``Authorization: Bearer`` token once (401 if it is bad, expired or its
user deactivated: :mod:`dxc.auth.accounts`) and checks its scopes (403).
:func:`caller` is the same for endpoints that anonymous callers may use too,
and gives the :class:`~dxc.access.Principal` the access rules see.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import Forbidden, Unauthorized

from dxc.access import ANONYMOUS, Principal
from dxc.api import services
from dxc.auth.accounts import require_active
from dxc.auth.otp import SERVICE
from dxc.auth.tokens import AccessClaims, InvalidToken


def authorise(audience: str, *scopes: str, action: str | None = None) -> AccessClaims:
    """The claims of the caller's token for ``audience``, which carries every one of ``scopes``.

    ``audience`` is a database id or :data:`~dxc.auth.otp.SERVICE`. No token
    is a 401; a missing scope a 403 that names it, and ``action`` if given
    ("Not authorized to <action>").
    """
    claims = _claims(audience)
    if claims is None:
        raise Unauthorized("this request needs an access token (Authorization: Bearer …)")
    missing = [scope for scope in scopes if scope not in claims.scopes]
    if missing:
        lacks = f"the access token lacks {', '.join(missing)}"
        raise Forbidden(f"Not authorized to {action} ({lacks})" if action else lacks)
    return claims


def caller(db_id: str) -> Principal:
    """The caller of a request to ``db_id``; :data:`~dxc.access.ANONYMOUS` without a token."""
    claims = _claims(db_id)
    return ANONYMOUS if claims is None else principal(claims)


def principal(claims: AccessClaims, scopes: frozenset[str] | None = None) -> Principal:
    """What the access rules see of ``claims``, acting with ``scopes`` (default: the token's)."""
    return Principal(claims.sub, claims.scopes if scopes is None else scopes, claims.email,
                     claims.name)


def _claims(audience: str) -> AccessClaims | None:
    if audience != SERVICE:
        services().router.shard_for(audience)  # UnknownDatabase: 404
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("the Authorization header must be 'Bearer <token>'")
    claims = services().signer.verify(audience, token.strip())
    return require_active(services().control, audience, claims)
