"""The grants of ``POST /token`` and the answers the real client expects.

Every successful answer is a ``200`` with ``type: "tokens"``; a soft failure
the client shows to its user is a ``200`` with ``type: "error"``; a request
that is malformed or not allowed is a 4xx with a JSON message.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from dxc.auth.signatures import BadPublicKey, check_public_key, verify_refresh_signature
from dxc.auth.tokens import AccessClaims, TokenSigner
from dxc.storage import credentials, users
from dxc.storage.clock import as_utc, utcnow

USER_SCOPES = frozenset({"ACCESS_DB"})


class TokenRequestError(Exception):
    """A token request refused with an HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def soft_error(title: str, message: str, code: str = "GENERIC_ERROR") -> dict[str, Any]:
    """A failure the client shows in a dialog (``200`` with ``type: "error"``)."""
    return {"type": "error", "title": title, "messageCode": code, "message": message}


class TokenService:
    def __init__(
        self, control: Engine, signer: TokenSigner, refresh_ttl: int, clock_skew: int
    ) -> None:
        self.control = control
        self.signer = signer
        self.refresh_ttl = refresh_ttl
        self.clock_skew = clock_skew

    def handle(self, db_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise TokenRequestError(400, "the body must be a JSON object")
        grant = body.get("grant_type")
        if grant == "demo":
            return self._demo(db_id, body)
        if grant == "refresh_token":
            return self._refresh(db_id, body)
        raise TokenRequestError(400, f"grant_type {grant!r} is not supported")

    def _demo(self, db_id: str, body: dict[str, Any]) -> dict[str, Any]:
        email = body.get("demo_user")
        if not isinstance(email, str) or not email.strip():
            raise TokenRequestError(400, "demo_user must be an e-mail address")
        public_key = _public_key(body)
        with self.control.begin() as connection:
            user = users.get_user(connection, db_id, email.strip().lower())
            if user is None or not user.is_demo:
                return soft_error("Unknown demo user", f"{email} is not a demo user")
            users.record_login(connection, db_id, user.user_id)
            claims = AccessClaims(user.user_id, USER_SCOPES, "demo", user.email, user.name)
            answer = self._tokens(db_id, claims)
            if public_key:
                answer.update(self._refresh_token(connection, db_id, user.user_id, public_key))
        return answer

    def _refresh(self, db_id: str, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("refresh_token")
        signature = body.get("signature")
        time_stamp = body.get("time_stamp")
        if not (
            isinstance(token, str)
            and isinstance(signature, str)
            and isinstance(time_stamp, int)
            and not isinstance(time_stamp, bool)
        ):
            raise TokenRequestError(
                400, "refresh_token, signature and time_stamp (ms) are required"
            )
        if abs(time.time() * 1000 - time_stamp) > self.clock_skew * 1000:
            raise TokenRequestError(401, "time_stamp is too far from the server's clock")
        with self.control.begin() as connection:
            record = credentials.find_refresh_token(connection, token)
            if (
                record is None
                or record.db_id != db_id
                or record.revoked is not None
                or as_utc(record.expires) <= utcnow()
            ):
                raise TokenRequestError(401, "the refresh token is not valid")
            if not verify_refresh_signature(record.public_key, token, time_stamp, signature):
                raise TokenRequestError(401, "the refresh token signature is not valid")
            user = users.get_user(connection, db_id, record.user_id)
            if user is None:
                raise TokenRequestError(401, "the user no longer exists")
            claims = AccessClaims(user.user_id, USER_SCOPES, user.user_type, user.email, user.name)
        return self._tokens(db_id, claims)

    def _tokens(self, db_id: str, claims: AccessClaims) -> dict[str, Any]:
        issued = self.signer.issue(db_id, claims)
        public_claims = {"sub": claims.sub}
        if claims.email:
            public_claims["email"] = claims.email
        if claims.name:
            public_claims["name"] = claims.name
        return {
            "type": "tokens",
            "claims": public_claims,
            "accessToken": issued.token,
            "accessTokenExpiration": issued.expires_ms,
            "userType": claims.user_type,
        }

    def _refresh_token(
        self, connection: Any, db_id: str, user_id: str, public_key: str
    ) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(seconds=self.refresh_ttl)
        credentials.store_refresh_token(connection, token, db_id, user_id, public_key, expires)
        return {
            "refreshToken": token,
            "refreshTokenExpiration": int(expires.timestamp() * 1000),
        }


def _public_key(body: dict[str, Any]) -> str | None:
    pem = body.get("public_key")
    if pem is None:
        return None
    if not isinstance(pem, str):
        raise TokenRequestError(400, "public_key must be a PEM string")
    try:
        return check_public_key(pem)
    except BadPublicKey as error:
        raise TokenRequestError(400, str(error)) from None
