"""Whether the user an access token names may still use it.

Access tokens are self-contained JWTs, valid until they expire, and cannot be
revoked one by one; deactivating a user (``POST /users`` with ``deactivated``)
must still bite at once. So every request with a bearer token and every open
``/changes`` socket asks the users table: one primary-key lookup. Tokens of
API clients name no user and pass.
"""

from __future__ import annotations

from sqlalchemy import Engine

from dxc.auth.tokens import AccessClaims, InvalidToken
from dxc.storage import users
from dxc.storage.engines import single_statements


class AccountDeactivated(InvalidToken):
    """A genuine access token of a user who was deactivated after it was issued."""


def is_deactivated(control: Engine, db_id: str, user_id: str) -> bool:
    with single_statements(control) as connection:
        return users.is_deactivated(connection, db_id, user_id)


def require_active(control: Engine, db_id: str, claims: AccessClaims) -> AccessClaims:
    """``claims``, unless their user is deactivated (:class:`AccountDeactivated`)."""
    if is_deactivated(control, db_id, claims.sub):
        raise AccountDeactivated(f"the account {claims.sub} is deactivated")
    return claims
