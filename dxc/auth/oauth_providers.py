"""The providers users log in with, and what each proves about them.

Authlib does the protocol: discovery (``/.well-known/openid-configuration``),
PKCE, the code exchange and the ID token's checks (signature from the JWKS,
issuer, audience, nonce, expiry). What is ours is the small part that
differs between providers: where they are, the scopes to ask for, and when
an e-mail address counts as verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OAuthError, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from cryptography.fernet import InvalidToken
from joserfc.errors import JoseError

from dxc.secret_keys import Keyring
from dxc.storage.oauth import Provider

CUSTOM = "custom-oauth2"
#: Seconds to wait for a provider's answer; a login is a page load, not a batch job.
TIMEOUT = 10
#: Microsoft's tenant of personal accounts, whose addresses Microsoft has verified.
MICROSOFT_CONSUMERS = "9188040d-6c67-4c5b-b112-36a304b66dad"
GITHUB_API = "https://api.github.com/"
#: The purpose of the key that seals client secrets.
SEALING_PURPOSE = "oauth-client-secret"


@dataclass(frozen=True)
class Kind:
    """What a provider type needs besides the app's client id and secret."""

    display_name: str | None
    issuer: str | None  # OpenID Connect issuer; None: GitHub, or the operator gives it
    scopes: tuple[str, ...]
    #: Extra parameters of the authorization request.
    authorize_params: tuple[tuple[str, str], ...] = ()


KINDS: dict[str, Kind] = {
    "google": Kind("Google", "https://accounts.google.com", ("openid", "email", "profile")),
    "microsoft": Kind(
        "Microsoft", "https://login.microsoftonline.com/common/v2.0",
        ("openid", "email", "profile"),
    ),
    # Apple posts its answer (form_post) when names or e-mail are asked for.
    "apple": Kind(
        "Apple", "https://appleid.apple.com", ("name", "email"),
        (("response_mode", "form_post"),),
    ),
    "github": Kind("GitHub", None, ("read:user", "user:email")),
    CUSTOM: Kind(None, None, ("openid", "email", "profile")),
}


class ProviderFailure(Exception):
    """The provider refused, failed or answered something we cannot trust."""


@dataclass(frozen=True)
class Identity:
    """Who the provider says logged in."""

    email: str | None
    email_verified: bool
    name: str | None


class SecretBox:
    """Encrypts client secrets with a key derived from ``DXC_SECRET``."""

    def __init__(self, keyring: Keyring) -> None:
        self._fernet = keyring.fernet(SEALING_PURPOSE)

    def seal(self, client_secret: str) -> str:
        return self._fernet.encrypt(client_secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ProviderFailure(
                "the client secret cannot be decrypted (was DXC_SECRET changed? list the old "
                "one in DXC_OLD_SECRETS); else add the provider again with `flask dxc oauth add`"
            ) from None


class _App(OAuth2Mixin, OpenIDMixin, BaseApp):
    """Authlib's framework-independent client; state lives in our tables, not a session."""

    client_cls = OAuth2Session


class ProviderClient:
    """One configured provider of one database, with its discovery and keys cached."""

    def __init__(self, provider: Provider, client_secret: str) -> None:
        self.provider = provider
        self.kind = KINDS[provider.type]
        options: dict[str, Any] = {
            "scope": " ".join(provider.scopes),
            "code_challenge_method": "S256",
            "default_timeout": TIMEOUT,
        }
        if provider.issuer:
            endpoints: dict[str, Any] = {
                "server_metadata_url": discovery_url(provider.issuer),
            }
        else:  # GitHub: plain OAuth 2, no discovery and no ID token
            endpoints = {
                "authorize_url": "https://github.com/login/oauth/authorize",
                "access_token_url": "https://github.com/login/oauth/access_token",
                "api_base_url": GITHUB_API,
            }
        self._app = _App(
            None, provider.name, client_id=provider.client_id, client_secret=client_secret,
            client_kwargs=options, **endpoints,
        )

    def authorization_url(
        self, callback: str, state: str, code_verifier: str, nonce: str
    ) -> str:
        params = dict(self.kind.authorize_params)
        if self.provider.issuer:
            params["nonce"] = nonce
        with _failures():
            created = self._app.create_authorization_url(
                callback, state=state, code_verifier=code_verifier, **params
            )
        return created["url"]

    def identity(self, callback: str, code: str, code_verifier: str, nonce: str) -> Identity:
        """Exchange ``code`` and read who logged in; :class:`ProviderFailure` if anything is off."""
        with _failures():
            self._app.client_kwargs["token_endpoint_auth_method"] = self._auth_method()
            token = self._app.fetch_access_token(
                callback, code=code, code_verifier=code_verifier
            )
            if not self.provider.issuer:
                return self._github_identity(token)
            claims = self._app.parse_id_token(
                token, nonce, claims_options=self._claims_options()
            )
            if claims is None:
                raise ProviderFailure("the provider sent no ID token")
            if not claims.get("email") and self._app.load_server_metadata().get(
                "userinfo_endpoint"
            ):
                claims = self._with_userinfo(token, dict(claims))
        return Identity(
            _text(claims.get("email")), self._email_verified(claims), _text(claims.get("name"))
        )

    def _auth_method(self) -> str:
        """How the client secret goes to the token endpoint: Basic unless only POST is offered
        (Apple; GitHub has no metadata and takes POST)."""
        if not self.provider.issuer:
            return "client_secret_post"
        offered = self._app.load_server_metadata().get("token_endpoint_auth_methods_supported")
        if not offered or "client_secret_basic" in offered:
            return "client_secret_basic"
        return "client_secret_post"

    def _claims_options(self) -> dict[str, Any]:
        issuer = self._app.load_server_metadata().get("issuer") or self.provider.issuer
        options: dict[str, Any] = {"aud": {"essential": True, "value": self.provider.client_id}}
        if "{tenantid}" in issuer:  # Microsoft's multi-tenant endpoints
            options["iss"] = {
                "essential": True,
                "validate": lambda claims, value: value
                == issuer.replace("{tenantid}", str(claims.get("tid"))),
            }
        else:
            options["iss"] = {"essential": True, "value": issuer}
        return options

    def _with_userinfo(self, token: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
        """Providers that keep the ID token small answer the profile at ``userinfo``."""
        info = self._app.userinfo(token=token)
        if info.get("sub") != claims.get("sub"):
            raise ProviderFailure("the userinfo answer is about another subject")
        return {**info, **{k: v for k, v in claims.items() if k not in ("email", "name")}}

    def _email_verified(self, claims: dict[str, Any]) -> bool:
        if self.provider.type == "microsoft":
            # Microsoft leaves ``email`` unverified in work tenants (nOAuth): trust it only for
            # personal accounts or when the tenant owns the address's domain.
            return claims.get("tid") == MICROSOFT_CONSUMERS or claims.get("xms_edov") in (
                True, "true", "1", 1,
            )
        return claims.get("email_verified") in (True, "true")  # Apple sends a string

    def _github_identity(self, token: dict[str, Any]) -> Identity:
        user = self._app.get("user", token=token)
        user.raise_for_status()
        emails = self._app.get("user/emails", token=token)
        emails.raise_for_status()
        primary = next((e for e in emails.json() if e.get("primary")), None) or {}
        profile = user.json()
        return Identity(
            _text(primary.get("email")), primary.get("verified") is True,
            _text(profile.get("name")) or _text(profile.get("login")),
        )


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


@contextmanager
def _failures() -> Iterator[None]:
    """Turn what Authlib, joserfc and requests raise into :class:`ProviderFailure`."""
    try:
        yield
    except ProviderFailure:
        raise
    except OAuthError as error:
        raise ProviderFailure(f"{error.error}: {error.description or 'no description'}") from error
    except JoseError as error:
        raise ProviderFailure(f"the ID token is not valid ({error})") from error
    except requests.RequestException as error:
        raise ProviderFailure(
            f"the provider could not be reached ({type(error).__name__})"
        ) from error
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise ProviderFailure(
            f"the provider's answer is not usable ({type(error).__name__})"
        ) from error
