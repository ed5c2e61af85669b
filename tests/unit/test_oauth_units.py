"""The broker's pure parts: where a login may return to, and how ``dxc-auth`` is added."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from dxc.auth.oauth import RedirectPolicy, with_dxc_auth
from dxc.auth.oauth_providers import MICROSOFT_CONSUMERS, ProviderClient, SecretBox
from dxc.secret_keys import Keyring
from dxc.storage.oauth import Provider

POLICY = RedirectPolicy(
    origin_allowed=lambda origin: origin in {"https://app.example.com", "http://localhost:5173"},
    whitelist=frozenset({"https://app.example.com", "myapp:", "capacitor://localhost"}),
)


@pytest.mark.parametrize("uri", [
    "https://app.example.com", "https://APP.example.com/x?y=1#z", "http://localhost:5173/",
    "myapp://", "myapp://done?x=1", "MyApp:/path", "capacitor://localhost/index.html",
])
def test_allowed_redirects(uri):
    assert POLICY.allows(uri)


@pytest.mark.parametrize("uri", [
    "https://evil.example", "https://app.example.com@evil.example/", "https:app.example.com",
    "//app.example.com", "javascript:alert(1)", "data:text/html,hi", "capacitor://evil",
    "otherapp://done", "https://app.example.com\r\nSet-Cookie: x", "app.example.com",
    "https://app.example.com\\@evil.example",
])
def test_refused_redirects(uri):
    assert not POLICY.allows(uri)


def _payload(uri: str) -> dict:
    encoded = uri.split("dxc-auth=", 1)[1].split("&")[0].split("#")[0]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def test_dxc_auth_goes_in_the_query_before_the_fragment_and_replaces_a_stale_one():
    uri = with_dxc_auth("https://app.example.com/p?a=1&dxc-auth=old&b=%20#frag", {"code": "c"})
    assert uri.startswith("https://app.example.com/p?a=1&b=%20&dxc-auth=")
    assert uri.endswith("#frag") and uri.count("dxc-auth=") == 1
    assert _payload(uri) == {"code": "c"}
    assert "=" not in uri.split("dxc-auth=", 1)[1].split("#")[0]  # no padding
    assert with_dxc_auth("myapp://", {"code": "c"}).startswith("myapp://?dxc-auth=")


def test_secrets_are_sealed_per_installation_secret():
    sealed = SecretBox(Keyring("s" * 32)).seal("client-secret")
    assert "client-secret" not in sealed
    assert SecretBox(Keyring("s" * 32)).open(sealed) == "client-secret"


def _microsoft() -> ProviderClient:
    provider = Provider(
        "db", "microsoft", "microsoft", "id", "sealed",
        "https://login.microsoftonline.com/common/v2.0", None, None, ("openid",),
        datetime.now(UTC),
    )
    return ProviderClient(provider, "secret")


@pytest.mark.parametrize(("claims", "verified"), [
    ({"tid": MICROSOFT_CONSUMERS, "email": "a@outlook.com"}, True),
    ({"tid": "some-work-tenant", "email": "ceo@bank.example"}, False),
    ({"tid": "some-work-tenant", "email": "a@corp.example", "xms_edov": True}, True),
    ({"tid": "some-work-tenant", "email_verified": True}, False),  # not Microsoft's word
])
def test_microsoft_addresses_count_as_verified_only_when_microsoft_vouches(claims, verified):
    assert _microsoft()._email_verified(claims) is verified
