"""The caller's access token, from ``Authorization: Bearer <token>``."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import Forbidden, Unauthorized

from dxc.api import services
from dxc.auth.accounts import require_active
from dxc.auth.tokens import AccessClaims, InvalidToken


def bearer_claims(audience: str) -> AccessClaims | None:
    """The verified claims of the token for ``audience``; None without a token.

    A token of a user deactivated since it was issued is refused like a
    revoked one (401), on every endpoint (see :mod:`dxc.auth.accounts`).
    """
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("the Authorization header must be 'Bearer <token>'")
    claims = services().signer.verify(audience, token.strip())
    return require_active(services().control, audience, claims)


def require_scope(audience: str, *scopes: str) -> AccessClaims:
    """The caller's claims if its token for ``audience`` carries every one of ``scopes``.

    No token is a 401, a token without a needed scope a 403 that names it.
    """
    claims = bearer_claims(audience)
    if claims is None:
        raise Unauthorized("this request needs an access token (Authorization: Bearer …)")
    missing = [scope for scope in scopes if scope not in claims.scopes]
    if missing:
        raise Forbidden(f"the access token lacks the {', '.join(missing)} scope")
    return claims
