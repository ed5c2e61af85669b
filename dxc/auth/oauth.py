"""The OAuth broker: the app's page → the provider → a Dexie code in ``dxc-auth``.

``begin`` stores a state with its PKCE verifier, nonce and the app's
``redirect_uri`` (30 minutes) and sends the browser to the provider;
``finish`` takes the state back (once), exchanges the provider's code,
requires a verified e-mail address and sends the browser back to the app
with a single-use Dexie code (5 minutes) that ``POST /token`` exchanges
(``grant_type: "authorization_code"``, :mod:`dxc.auth.grants`). Errors the
app should show travel the same way, worded so that the client classifies
them (``access_denied``, ``email_not_verified``, ``provider_error``);
a request we cannot tie to a stored login gets an error page, never a
redirect, so nothing is ever sent to an address we did not check.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from dxc.auth.oauth_providers import KINDS, ProviderClient, ProviderFailure, SecretBox
from dxc.auth.otp import is_email
from dxc.config import Settings
from dxc.storage import oauth as store
from dxc.storage.clock import utcnow

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=30)
CODE_TTL = timedelta(minutes=5)
#: Schemes never redirected to, whatever a whitelist says.
_NEVER = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})


class LoginRefused(Exception):
    """No redirect is safe: answer ``status`` with an error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class RedirectPolicy:
    """Which pages a database's logins may return to."""

    #: Whether a browser page of this origin may use the database (CORS rules).
    origin_allowed: Callable[[str], bool]
    #: The database's whitelist entries, for app schemes (``myapp:``, ``capacitor://x``).
    whitelist: frozenset[str]

    def allows(self, redirect_uri: str) -> bool:
        scheme, sep, rest = redirect_uri.partition(":")
        scheme = scheme.lower()
        if not sep or not scheme or scheme in _NEVER or any(c in redirect_uri for c in "\r\n\t"):
            return False
        if scheme in ("http", "https"):
            if not rest.startswith("//"):
                return False
            authority = rest[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
            if not authority or "@" in authority or "\\" in authority:
                return False
            return self.origin_allowed(f"{scheme}://{authority.lower()}")
        host = rest[2:].split("/", 1)[0].split("?", 1)[0].lower() if rest.startswith("//") else ""
        return f"{scheme}:" in self.whitelist or (
            bool(host) and f"{scheme}://{host}" in self.whitelist
        )


def with_dxc_auth(redirect_uri: str, payload: Mapping[str, str]) -> str:
    """``redirect_uri`` with ``dxc-auth`` (base64url JSON) in its query, before any fragment.

    Other query parameters stay as they were; a stale ``dxc-auth`` goes.
    """
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    base, hash_mark, fragment = redirect_uri.partition("#")
    path, _, query = base.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("dxc-auth=")]
    params.append(f"dxc-auth={encoded}")
    return f"{path}?{'&'.join(params)}{hash_mark}{fragment}"


class OAuthBroker:
    def __init__(self, control: Engine, settings: Settings) -> None:
        self.control = control
        self.settings = settings
        self.secrets = SecretBox(settings.keyring)
        self._clients: dict[tuple[str, str], tuple[object, ProviderClient]] = {}

    # --- /auth-providers ---------------------------------------------------------

    def providers_answer(self, db_id: str) -> dict[str, object]:
        """What ``GET /auth-providers`` answers: the chooser's entries and the e-mail option."""
        with self.control.connect() as connection:
            connection.execution_options(read_only=True)
            providers = store.list_providers(connection, db_id)
            otp = store.otp_enabled(connection, db_id)
        return {
            "providers": [_public_info(p) for p in providers],
            "otpEnabled": otp,
        }

    def callback_url(self, db_id: str, provider: str) -> str:
        """What is registered at the provider as the redirect (callback) URL."""
        return f"{self.settings.database_url_for(db_id)}/oauth/callback/{provider}"

    # --- the round trip ----------------------------------------------------------

    def begin(self, db_id: str, name: str, redirect_uri: str | None, policy: RedirectPolicy) -> str:
        """The provider's URL to send the browser to; or, if the provider fails, the app's."""
        provider = self._provider(db_id, name)
        if not redirect_uri:
            raise LoginRefused(400, "redirect_uri is missing: the app must say where to return.")
        if len(redirect_uri) > 2048 or not policy.allows(redirect_uri):
            raise LoginRefused(
                400, "redirect_uri is not on this database's whitelist: whitelist the app's "
                "origin with `npx dexie-cloud whitelist <origin>`.",
            )
        state, verifier, nonce = (
            secrets.token_urlsafe(32), secrets.token_urlsafe(64), secrets.token_urlsafe(24)
        )
        try:
            url = self._client(provider).authorization_url(
                self.callback_url(db_id, name), state, verifier, nonce
            )
        except ProviderFailure as failure:
            log.warning("oauth provider %s of %s failed to start: %s", name, db_id, failure)
            return self._error(redirect_uri, name, "", _provider_error(provider, failure))
        with self.control.begin() as connection:
            store.store_state(connection, state, store.PendingLogin(
                db_id, name, redirect_uri, verifier, nonce, utcnow() + STATE_TTL
            ))
        return url

    def finish(self, db_id: str, name: str, params: Mapping[str, str]) -> str:
        """Where the provider's answer sends the browser: the app, with ``dxc-auth``."""
        state = params.get("state") or ""
        with self.control.begin() as connection:
            pending = store.take_state(connection, state) if state else None
        if pending is None or pending.db_id != db_id or pending.provider != name:
            raise LoginRefused(
                400, "This sign-in link is unknown or was already used. Start the login again "
                "from the app.",
            )
        back = pending.redirect_uri
        if pending.expired:
            return self._error(
                back, name, state, "The sign-in took too long. Please try again."
            )
        if params.get("error"):
            return self._error(back, name, state, _provider_said(name, params))
        provider = self._provider(db_id, name)
        if not params.get("code"):
            return self._error(back, name, state, f"{_display(provider)} sent no code.")
        try:
            identity = self._client(provider).identity(
                self.callback_url(db_id, name), params["code"], pending.code_verifier,
                pending.nonce,
            )
        except ProviderFailure as failure:
            log.warning("oauth login with %s of %s failed: %s", name, db_id, failure)
            return self._error(back, name, state, _provider_error(provider, failure))
        email = (identity.email or "").lower()
        if not email or not is_email(email):
            return self._error(
                back, name, state, f"{_display(provider)} did not tell us your address.",
            )
        if not identity.email_verified:
            return self._error(
                back, name, state, f"The email address {email} is not verified at "
                f"{_display(provider)}. Verify it there, then sign in again.",
            )
        code = secrets.token_urlsafe(32)
        with self.control.begin() as connection:
            store.store_code(
                connection, code, store.ProvenIdentity(db_id, name, email, identity.name),
                utcnow() + CODE_TTL,
            )
        return with_dxc_auth(back, {"code": code, "provider": name, "state": state})

    # --- helpers -------------------------------------------------------------------

    def _provider(self, db_id: str, name: str) -> store.Provider:
        with self.control.connect() as connection:
            connection.execution_options(read_only=True)
            provider = store.get_provider(connection, db_id, name)
        if provider is None:
            raise LoginRefused(404, f"This app offers no sign-in with {name!r}.")
        return provider

    def _client(self, provider: store.Provider) -> ProviderClient:
        """A client per provider and process: discovery and keys are fetched once."""
        key = (provider.db_id, provider.name)
        cached = self._clients.get(key)
        if cached is not None and cached[0] == provider.updated:
            return cached[1]
        client = ProviderClient(provider, self.secrets.open(provider.sealed_secret))
        if len(self._clients) >= 1024:
            self._clients.clear()
        self._clients[key] = (provider.updated, client)
        return client

    @staticmethod
    def _error(redirect_uri: str, name: str, state: str, message: str) -> str:
        return with_dxc_auth(redirect_uri, {"error": message, "provider": name, "state": state})


def _public_info(provider: store.Provider) -> dict[str, object]:
    info: dict[str, object] = {
        "type": provider.type,
        "name": provider.name,
        "displayName": _display(provider),
        "scopes": list(provider.scopes),
    }
    if provider.icon_url:
        info["iconUrl"] = provider.icon_url
    return info


def _display(provider: store.Provider) -> str:
    return provider.display_name or KINDS[provider.type].display_name or provider.name


def _provider_said(name: str, params: Mapping[str, str]) -> str:
    """The provider's own error: ``access_denied`` keeps its name, so the client knows it."""
    error = params["error"]
    description = params.get("error_description") or ""
    if error == "access_denied":
        return f"access_denied: the sign-in with {name} was cancelled or refused. {description}"
    return f"The sign-in with {name} failed ({error}). {description}".strip()


def _provider_error(provider: store.Provider, failure: ProviderFailure) -> str:
    return f"{_display(provider)} could not sign you in: {failure}"
