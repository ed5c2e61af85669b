"""The grants of ``POST /token`` and the answers the real client expects.

Every successful answer is a ``200`` with ``type: "tokens"`` (or
``"otp-sent"``); a soft failure the client shows to its user is a ``200``
with ``type: "error"``; a request that is malformed or not allowed is a 4xx
with a JSON message, except a wrong one-time password: a ``401`` whose
plain-text body the client shows as it is, before asking again.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from dxc.auth.durations import BadDuration, to_seconds
from dxc.auth.otp import (
    SERVICE,
    Caller,
    CodeUnusable,
    OtpLogin,
    OtpRefused,
    Verified,
    WrongCode,
    is_email,
)
from dxc.auth.policy import may_create_databases
from dxc.auth.scopes import (
    ACCESS_DB,
    CONNECT_CLIENT,
    CREATE_DB,
    GLOBAL_READ,
    GLOBAL_WRITE,
    IMPERSONATE,
)
from dxc.auth.signatures import BadPublicKey, check_public_key, verify_refresh_signature
from dxc.auth.tokens import AccessClaims, TokenSigner
from dxc.config import Settings
from dxc.protocol.identifiers import USER_ID_BYTES, identifier_problem
from dxc.storage import credentials, databases, oauth, refresh_stamps, users
from dxc.storage.clock import as_utc, utcnow

USER_SCOPES = (ACCESS_DB,)
#: What an e-mail login may ask for, per audience: a database, or the service API.
OTP_SCOPES = {"database": (ACCESS_DB, CONNECT_CLIENT), SERVICE: (CREATE_DB,)}
#: What a token minted for a user by an API client (impersonation) may carry.
IMPERSONATED_SCOPES = (ACCESS_DB, GLOBAL_READ, GLOBAL_WRITE)
#: The ``userType`` of users who first log in by e-mail (docs/auth.md).
NEW_USER_TYPE = "prod"
INTENTS = (None, "login", "register")


class TokenRequestError(Exception):
    """A token request refused with an HTTP status and a message.

    ``code`` makes it a policy rejection (``{code, message}``, which the
    client shows and restarts its login with); ``plain_text`` sends the
    message alone as ``text/plain``; ``body`` replaces the JSON answer.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error: str = "token_request_refused",
        code: str | None = None,
        plain_text: bool = False,
        retry_after: int | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error
        self.code = code
        self.plain_text = plain_text
        self.retry_after = retry_after
        self.body = body


class UserDeactivated(Exception):
    """The user was deactivated (``POST /users`` with ``deactivated``): no more tokens."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"The account {user_id} is deactivated. Contact the app's administrator.")


def _refuse_deactivated(user: users.User) -> None:
    if user.deactivated is not None:
        raise UserDeactivated(user.user_id)


def soft_error(title: str, message: str, code: str = "GENERIC_ERROR") -> dict[str, Any]:
    """A failure the client shows in a dialog (``200`` with ``type: "error"``)."""
    return {"type": "error", "title": title, "messageCode": code, "message": message}


class TokenService:
    def __init__(
        self, control: Engine, signer: TokenSigner, settings: Settings, otp: OtpLogin
    ) -> None:
        self.control = control
        self.signer = signer
        self.settings = settings
        self.otp = otp

    def handle(self, audience: str, body: Any, caller: Caller) -> dict[str, Any]:
        """Answer a token request for database ``audience`` (or :data:`SERVICE`)."""
        try:
            return self._grant(audience, body, caller)
        except UserDeactivated as refused:  # nothing it wrote (a login time) is kept
            return soft_error("Account deactivated", str(refused))

    def _grant(self, audience: str, body: Any, caller: Caller) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise TokenRequestError(400, "the body must be a JSON object")
        grant = body.get("grant_type")
        if grant == "otp":
            return self._otp(audience, body, caller)
        if audience == SERVICE:
            raise TokenRequestError(400, "the service API only grants grant_type 'otp'")
        if grant == "demo":
            return self._demo(audience, body)
        if grant == "client_credentials":
            return self._client_credentials(audience, body)
        if grant == "refresh_token":
            return self._refresh(audience, body)
        if grant == "authorization_code":
            return self._authorization_code(audience, body)
        raise TokenRequestError(400, f"grant_type {grant!r} is not supported")

    # --- otp ------------------------------------------------------------------

    def _otp(self, audience: str, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
        email = body.get("email")
        if email is not None and not isinstance(email, str):
            raise TokenRequestError(400, "email must be a string")
        email = email.strip().lower() if email else None
        if "otp" in body or "otp_id" in body:
            return self._otp_verify(audience, body, email)
        if not email:
            raise TokenRequestError(400, "email is required")
        if " as " in email:
            return soft_error(
                "Not supported", "Logging in as another user is not supported.", "INVALID_EMAIL"
            )
        if not is_email(email):
            return soft_error(
                "Invalid e-mail", "Please enter a valid e-mail address.", "INVALID_EMAIL"
            )
        intent = body.get("intent")
        if intent not in INTENTS:
            raise TokenRequestError(400, "intent must be 'login' or 'register'")
        scopes = _otp_scopes(audience, body)
        if audience != SERVICE and ACCESS_DB in scopes:
            with self.control.connect() as connection:
                if not oauth.otp_enabled(connection, audience):
                    return soft_error(
                        "E-mail login disabled",
                        "This app does not offer login by e-mail. Choose another way to sign in.",
                    )
        try:
            otp_id = self.otp.request(audience, email, scopes, intent, caller)
        except OtpRefused as refused:
            raise TokenRequestError(
                refused.status, refused.message, error=refused.error,
                retry_after=refused.retry_after,
            ) from None
        return {"type": "otp-sent", "otp_id": otp_id}

    def _otp_verify(
        self, audience: str, body: dict[str, Any], email: str | None
    ) -> dict[str, Any]:
        otp_id, code = body.get("otp_id"), body.get("otp")
        if not (isinstance(otp_id, str) and otp_id and isinstance(code, str)):
            raise TokenRequestError(400, "otp_id and otp must be strings")
        public_key = _public_key(body)
        try:
            verified = self.otp.verify(audience, otp_id, code, email)
        except WrongCode as wrong:
            raise TokenRequestError(401, str(wrong), plain_text=True) from None
        except CodeUnusable as unusable:
            return soft_error("Login failed", str(unusable), "INVALID_OTP")
        if audience == SERVICE:
            if not may_create_databases(self.settings.create_db_emails, verified.email):
                raise TokenRequestError(
                    403,
                    f"{verified.email} may not create databases on this server.",
                    code="USER_NOT_ACCEPTED",
                )
            name = verified.email.split("@", 1)[0]
            scopes = frozenset(verified.scopes)
            return self._tokens(
                SERVICE, AccessClaims(verified.email, scopes, NEW_USER_TYPE, verified.email, name)
            )
        with self.control.begin() as connection:
            claims = self._otp_user(connection, audience, verified)
            answer = self._tokens(audience, claims)
            if public_key:
                answer.update(self._refresh_token(
                    connection, audience, claims.sub, public_key, verified.scopes
                ))
        return answer

    def _otp_user(
        self, connection: Connection, db_id: str, verified: Verified, name: str | None = None
    ) -> AccessClaims:
        """The claims of a proven address; a database user if it asked for ``ACCESS_DB``."""
        email = verified.email
        name = name or email.split("@", 1)[0]
        scopes = frozenset(verified.scopes)
        if ACCESS_DB not in scopes:  # the CLI's CONNECT_CLIENT: an admin, not an app user
            return AccessClaims(email, scopes, NEW_USER_TYPE, email, name)
        known = users.get_user(connection, db_id, email)
        if known is None and verified.intent == "login":
            raise TokenRequestError(
                403, f"There is no user {email} in this app.", code="USER_NOT_REGISTERED"
            )
        user = known or users.ensure_user(connection, db_id, email, email, name, NEW_USER_TYPE)
        _refuse_deactivated(user)
        users.record_login(connection, db_id, user.user_id)
        return AccessClaims(user.user_id, scopes, user.user_type, user.email, user.name)

    # --- authorization_code (OAuth, docs/oauth.md) -----------------------------

    def _authorization_code(self, db_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A Dexie code from the OAuth broker: the same answer as an e-mail login.

        The user is the provider's verified address, so whoever logged in by
        e-mail with it before is the same user, with the same data.
        """
        code = body.get("code")
        if not isinstance(code, str) or not code:
            raise TokenRequestError(400, "code must be a string")
        intent = body.get("intent")
        if intent not in INTENTS:
            raise TokenRequestError(400, "intent must be 'login' or 'register'")
        if _scopes(body, USER_SCOPES) not in ((), USER_SCOPES):
            raise TokenRequestError(400, "an OAuth login grants ACCESS_DB only")
        public_key = _public_key(body)
        with self.control.begin() as connection:
            identity = oauth.take_code(connection, db_id, code)
        if identity is None:  # the client reads INVALID_OTP in a 400 as "expired_code"
            raise TokenRequestError(400, "invalid code", body=soft_error(
                "Login failed", "The authorization code is invalid or has expired",
                "INVALID_OTP",
            ))
        verified = Verified(identity.email, USER_SCOPES, intent)
        with self.control.begin() as connection:
            claims = self._otp_user(connection, db_id, verified, identity.name)
            answer = self._tokens(db_id, claims)
            if public_key:
                answer.update(self._refresh_token(connection, db_id, claims.sub, public_key))
        return answer

    # --- demo -----------------------------------------------------------------

    def _demo(self, db_id: str, body: dict[str, Any]) -> dict[str, Any]:
        email = body.get("demo_user")
        if not isinstance(email, str) or not email.strip():
            raise TokenRequestError(400, "demo_user must be an e-mail address")
        public_key = _public_key(body)
        with self.control.begin() as connection:
            user = users.get_user(connection, db_id, email.strip().lower())
            if user is None or not user.is_demo:
                return soft_error("Unknown demo user", f"{email} is not a demo user")
            _refuse_deactivated(user)
            users.record_login(connection, db_id, user.user_id)
            claims = AccessClaims(
                user.user_id, frozenset(USER_SCOPES), "demo", user.email, user.name
            )
            answer = self._tokens(db_id, claims)
            if public_key:
                answer.update(self._refresh_token(connection, db_id, user.user_id, public_key))
        return answer

    # --- client_credentials ---------------------------------------------------

    def _client_credentials(self, db_id: str, body: dict[str, Any]) -> dict[str, Any]:
        client_id, secret = body.get("client_id"), body.get("client_secret")
        if not (isinstance(client_id, str) and isinstance(secret, str)):
            raise TokenRequestError(400, "client_id and client_secret must be strings")
        requested = _scopes(body, ())
        impersonate = body.get("claims")
        if impersonate is not None and not (
            isinstance(impersonate, dict)
            and isinstance(impersonate.get("sub"), str)
            and impersonate["sub"].strip()
        ):
            raise TokenRequestError(400, "claims must be an object with a non-empty 'sub'")
        if impersonate is not None:
            for name in ("sub", "email", "name"):
                _bounded_claim(impersonate, name)
        ttl = _seconds(body, "expires_in")
        not_before = _seconds(body, "not_before") or 0
        if ttl is not None and ttl <= 0:
            raise TokenRequestError(400, "expires_in must be a positive timespan")
        if not_before < 0 or not_before >= (ttl or self.signer.ttl_seconds):
            raise TokenRequestError(400, "not_before must be from now and before expires_in")
        public_key = _public_key(body)
        with self.control.begin() as connection:
            client = credentials.authenticate_api_client(connection, client_id, secret)
            if client is None or client.db_id != db_id:
                raise TokenRequestError(401, "Invalid client credentials", error="invalid_client")
            if client.expired(utcnow()):  # rotated: the CLI recovers by e-mail on "expired"
                raise TokenRequestError(
                    401, "API client key expired", error="api_client_key_expired"
                )
            granted = tuple(dict.fromkeys(s for s in requested if s in client.scopes))
            if impersonate is None:  # the client itself, with its owner's e-mail
                claims = AccessClaims(client.client_id, frozenset(granted), "client", client.email)
                return self._tokens(db_id, claims, ttl, not_before)
            if IMPERSONATE not in client.scopes:
                raise TokenRequestError(
                    403, "this API client may not impersonate users (no IMPERSONATE scope)",
                    error="forbidden",
                )
            scopes = tuple(s for s in granted if s in IMPERSONATED_SCOPES)
            user = users.ensure_user(
                connection, db_id, impersonate["sub"].strip(),
                _optional_text(impersonate, "email"), _optional_text(impersonate, "name"),
                NEW_USER_TYPE,
            )
            _refuse_deactivated(user)
            users.record_login(connection, db_id, user.user_id)
            claims = AccessClaims(
                user.user_id, frozenset(scopes), user.user_type,
                _optional_text(impersonate, "email") or user.email,
                _optional_text(impersonate, "name") or user.name,
            )
            answer = self._tokens(db_id, claims, ttl, not_before)
            if public_key:
                answer.update(self._refresh_token(
                    connection, db_id, user.user_id, public_key, scopes, client.client_id
                ))
        return answer

    # --- refresh_token --------------------------------------------------------

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
        skew = self.settings.refresh_clock_skew
        if abs(time.time() * 1000 - time_stamp) > skew * 1000:
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
            # The signature stays valid while its time stamp does: answer it once only.
            token_hash = credentials.digest(token)
            usable_until = datetime.fromtimestamp(time_stamp / 1000 + skew, UTC)
            if not refresh_stamps.use(connection, token_hash, time_stamp, usable_until):
                raise TokenRequestError(
                    401, "this signed refresh request was already used; sign a new one",
                    error="refresh_replayed",
                )
            if record.client_id is not None:
                client = credentials.get_api_client(connection, record.client_id)
                if client is None or client.db_id != db_id or IMPERSONATE not in client.scopes:
                    raise TokenRequestError(401, "the API client of this session is gone")
            user = users.get_user(connection, db_id, record.user_id)
            if user is None:
                raise TokenRequestError(401, "the user no longer exists")
            _refuse_deactivated(user)
            scopes = record.scopes if record.scopes is not None else USER_SCOPES
            claims = AccessClaims(
                user.user_id, frozenset(scopes), user.user_type, user.email, user.name
            )
        return self._tokens(db_id, claims)

    # --- answers --------------------------------------------------------------

    def _tokens(
        self, audience: str, claims: AccessClaims, ttl: float | None = None,
        not_before: float = 0,
    ) -> dict[str, Any]:
        issued = self.signer.issue(
            audience, claims, None if ttl is None else max(1, round(ttl)), round(not_before)
        )
        public_claims = {"sub": claims.sub}
        if claims.email:
            public_claims["email"] = claims.email
        if claims.name:
            public_claims["name"] = claims.name
        answer: dict[str, Any] = {
            "type": "tokens",
            "claims": public_claims,
            "accessToken": issued.token,
            "accessTokenExpiration": issued.expires_ms,
            "userType": claims.user_type,
        }
        if audience != SERVICE:
            with self.control.connect() as connection:  # read-only: callers may hold the lock
                connection.execution_options(read_only=True)
                deleted = databases.deleted_since(connection, audience)
            if deleted:  # soft-deleted: every client is told the final date
                purge = databases.purge_date(deleted, self.settings.deleted_db_grace_days)
                answer["alerts"] = [{
                    "type": "warning",
                    "messageCode": "DATABASE_DELETED",
                    "message": f"Database {audience} is marked for deletion and will be deleted"
                    f" on {purge:%Y-%m-%d}. Undo it with `npx dexie-cloud undelete`.",
                }]
        return answer

    def _refresh_token(
        self,
        connection: Connection,
        db_id: str,
        user_id: str,
        public_key: str,
        scopes: tuple[str, ...] | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(seconds=self.settings.refresh_token_ttl)
        credentials.store_refresh_token(
            connection, token, db_id, user_id, public_key, expires, scopes, client_id
        )
        return {
            "refreshToken": token,
            "refreshTokenExpiration": int(expires.timestamp() * 1000),
        }


def _scopes(body: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    scopes = body.get("scopes")
    if scopes is None:
        return default
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise TokenRequestError(400, "scopes must be a list of strings")
    return tuple(dict.fromkeys(scopes))


def _otp_scopes(audience: str, body: dict[str, Any]) -> tuple[str, ...]:
    allowed = OTP_SCOPES[SERVICE if audience == SERVICE else "database"]
    scopes = _scopes(body, allowed[:1]) or allowed[:1]
    refused = [s for s in scopes if s not in allowed]
    if refused:
        raise TokenRequestError(
            400, f"an e-mail login cannot grant {', '.join(refused)} here "
            f"(only {', '.join(allowed)})",
        )
    return scopes


def _seconds(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return to_seconds(value)
    except BadDuration as error:
        raise TokenRequestError(400, f"{name}: {error}") from None


def _bounded_claim(claims: dict[str, Any], name: str) -> None:
    """Impersonated claims are stored (VARCHAR(320)) and travel in every token,
    which must fit the socket URL: at most ``USER_ID_BYTES`` bytes of storable text."""
    value = claims.get(name)
    if isinstance(value, str) and (problem := identifier_problem(value, USER_ID_BYTES)):
        raise TokenRequestError(400, f"claims.{name} {problem}")


def _optional_text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


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
