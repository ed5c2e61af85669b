"""Signed JWT access tokens, one signing key per logical database.

Each database's key is derived from ``DXC_SECRET`` with HMAC, so a token of
one database is worthless for another and no key needs to be stored. Tokens
signed with an old secret (``DXC_OLD_SECRETS``) are accepted while it is listed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from dxc.secret_keys import Keyring

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
NOT_VALID = "the access token is not valid for this database"
#: Genuine tokens whose signature and claims were checked once (a device sends the same
#: token with every request for an hour): only the expiry is checked again.
VERIFIED_TOKENS = 4096


class InvalidToken(Exception):
    """An access token that is malformed, forged, expired or for another database."""


class ExpiredToken(InvalidToken):
    """A genuine access token past its expiry: the client should refresh it."""


@dataclass(frozen=True)
class AccessClaims:
    sub: str
    scopes: frozenset[str]
    user_type: str
    email: str | None = None
    name: str | None = None
    #: When the token expires (epoch seconds); set on claims :meth:`TokenSigner.verify` read.
    expires: int | None = None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_ms: int


@dataclass(frozen=True)
class ForeignIssuer:
    """Another installation whose access tokens one database here accepts until they
    expire: the database was copied from there and took over (docs/migration.md)."""

    issuer: str
    #: The database id at the source, which its tokens name as ``aud``.
    audience: str
    key: bytes


class TokenSigner:
    def __init__(
        self, keyring: Keyring, issuer: str, ttl_seconds: int,
        foreign: Callable[[str], ForeignIssuer | None] = lambda db_id: None,
    ) -> None:
        """``foreign(db_id)``: the other installation whose tokens ``db_id`` accepts too."""
        self._keyring = keyring
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.foreign = foreign

    def _key(self, db_id: str) -> bytes:
        return self._keyring.key(_purpose(db_id))

    def key_for(self, db_id: str) -> bytes:
        """The key of ``db_id``'s tokens, for the installation it moves to (nothing else)."""
        return self._key(db_id)

    def issue(
        self, db_id: str, claims: AccessClaims, ttl: int | None = None, not_before: int = 0
    ) -> IssuedToken:
        """A token for ``db_id`` valid from ``not_before`` seconds from now for ``ttl`` seconds."""
        now = int(time.time())
        expires = now + (self.ttl_seconds if ttl is None else ttl)
        payload = {
            "iss": self.issuer,
            "aud": db_id,
            "sub": claims.sub,
            "iat": now,
            "nbf": now + not_before,
            "exp": expires,
            "scopes": sorted(claims.scopes),
            "userType": claims.user_type,
        }
        if claims.email:
            payload["email"] = claims.email
        if claims.name:
            payload["name"] = claims.name
        return IssuedToken(jwt.encode(payload, self._key(db_id), ALGORITHM), expires * 1000)

    def verify(self, db_id: str, token: str) -> AccessClaims:
        """The claims of ``token`` for ``db_id``: issued here, or by the installation
        ``db_id`` was copied from (its tokens name its own database id)."""
        for key in self._keyring.keys(_purpose(db_id)):  # the current secret's, then old ones'
            try:
                return self._verify(token, key, db_id, self.issuer)
            except ExpiredToken:
                raise  # its signature matched: expired is the answer
            except InvalidToken:
                continue
        foreign = self.foreign(db_id)
        if foreign is None:
            raise InvalidToken(NOT_VALID)
        return self._verify(token, foreign.key, foreign.audience, foreign.issuer)

    @staticmethod
    def _verify(token: str, key: bytes, audience: str, issuer: str) -> AccessClaims:
        claims = _signed_claims(token, key, audience, issuer)
        if claims.expires is not None and time.time() > claims.expires + LEEWAY_SECONDS:
            raise ExpiredToken("the access token has expired")
        return claims


@functools.lru_cache(maxsize=VERIFIED_TOKENS)
def _signed_claims(token: str, key: bytes, audience: str, issuer: str) -> AccessClaims:
    """The claims of ``token`` if ``key`` signed it for ``audience`` by ``issuer``, expired
    or not (the caller checks the expiry each time). A refusal is not remembered, so
    forged tokens cannot fill the cache."""
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "aud", "iss"], "verify_exp": False},
        )
    except jwt.InvalidTokenError:
        raise InvalidToken(NOT_VALID) from None
    scopes = payload.get("scopes")
    if (
        not isinstance(payload["sub"], str)
        or not isinstance(scopes, list)
        or not isinstance(payload["exp"], int)
    ):
        raise InvalidToken(NOT_VALID)
    return AccessClaims(
        sub=payload["sub"],
        scopes=frozenset(s for s in scopes if isinstance(s, str)),
        user_type=str(payload.get("userType", "prod")),
        email=payload.get("email"),
        name=payload.get("name"),
        expires=payload["exp"],
    )


def _purpose(db_id: str) -> str:
    return "access-token:" + db_id
