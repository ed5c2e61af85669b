"""Sign-in with an OAuth/OIDC provider, in-process, against a fake provider (docs/oauth.md).

The fake (``tests/fake_oidc.py``) is a real HTTP server with real signed ID
tokens; only the user's visit to its login page is skipped. Every way the
round trip can go wrong must end in what the client classifies (spec
§2.8.3/§2.8.4) and in no token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from dxc.manage import databases
from dxc.storage import schema
from dxc.storage.clock import utcnow
from tests.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tests.protocol_client import Device, item, refresh_body
from tests.test_auth_http import key_pair, otp_login

ANN = "ann@example.com"
APP = "http://localhost:5173"
PAGE = f"{APP}/notes?tab=2#top"


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.close()


@pytest.fixture
def app(mail_app):
    return mail_app


@pytest.fixture
def db_id(app, provider) -> str:
    """A database that offers sign-in with the fake provider as ``acme``."""
    db_id = databases.create_database(app.extensions["dxc"]).db_id
    add_provider(app, db_id, provider)
    return db_id


@pytest.fixture
def client(app):
    return app.test_client()


def cli(app, *args: str) -> Any:
    """``flask dxc …`` in-process, in an app context as the ``flask`` command runs it."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=["dxc", *args])


def add_provider(app, db_id: str, provider: FakeProvider) -> Any:
    result = cli(
        app, "oauth", "add", "acme", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
        "--issuer", provider.issuer, "--display-name", "Acme ID", "--db", db_id,
    )
    assert result.exit_code == 0, result.output
    return result


def start(client, db_id: str, redirect_uri: str = PAGE):
    return client.get(f"/{db_id}/oauth/login/acme", query_string={"redirect_uri": redirect_uri})


def dxc_auth(location: str) -> dict[str, Any]:
    """The payload the client reads, decoded as the client does (handleOAuthCallback.ts)."""
    encoded = parse_qs(urlsplit(location).query)["dxc-auth"][0]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def classify(error: str) -> str:
    """The client's classification of an ``error`` payload (handleOAuthCallback.ts)."""
    lower = error.lower()
    if "access_denied" in lower or "access denied" in lower:
        return "access_denied"
    if "email" in lower and "verif" in lower:
        return "email_not_verified"
    return "provider_error"


def round_trip(client, db_id: str, provider: FakeProvider, email: str = ANN, **approve: Any):
    """Login → provider → callback; the callback's response."""
    started = start(client, db_id)
    assert started.status_code == 302, started.get_data(as_text=True)
    code, state = provider.approve(started.location, email, **approve)
    return client.get(f"/{db_id}/oauth/callback/acme", query_string={"code": code, "state": state})


def exchange(client, db_id: str, code: str, public_key: str | None = None, **extra: Any):
    body = {"grant_type": "authorization_code", "code": code, "scopes": ["ACCESS_DB"], **extra}
    if public_key:
        body["public_key"] = public_key
    return client.post(f"/{db_id}/token", json=body)


def test_auth_providers_lists_the_provider_and_the_email_switch(app, client, db_id):
    answer = client.get(f"/{db_id}/auth-providers").get_json()
    assert answer == {
        "providers": [{
            "type": "custom-oauth2", "name": "acme", "displayName": "Acme ID",
            "scopes": ["openid", "email", "profile"],
        }],
        "otpEnabled": True,
    }
    assert cli(app, "oauth", "otp", "off", "--db", db_id).exit_code == 0
    assert client.get(f"/{db_id}/auth-providers").get_json()["otpEnabled"] is False
    assert cli(app, "oauth", "remove", "acme", "--db", db_id).exit_code == 0
    assert client.get(f"/{db_id}/auth-providers").get_json()["providers"] == []


def test_the_client_secret_is_stored_sealed_and_never_printed(app, db_id, provider):
    added = add_provider(app, db_id, provider)
    assert f"/{db_id}/oauth/callback/acme" in added.output
    listed = cli(app, "oauth", "list", "--db", db_id, "--json")
    assert json.loads(listed.output)["providers"][0]["clientId"] == CLIENT_ID
    with app.extensions["dxc"].control.connect() as connection:
        sealed = connection.scalar(select(schema.oauth_providers.c.secret))
    for text in (added.output, listed.output, sealed):
        assert CLIENT_SECRET not in text


def test_a_login_round_trip_gives_the_tokens_of_the_email_user(
    app, client, mailbox, db_id, provider
):
    # Ann first logs in by e-mail and writes; then with the provider: the same user and data.
    by_email = otp_login(client, mailbox, f"/{db_id}").get_json()
    assert by_email["claims"]["sub"] == ANN
    laptop = Device(client, f"/{db_id}", "laptop")
    laptop.token = by_email["accessToken"]
    laptop.sync([laptop.op("items", "insert", ["itm1"], "t1",
                           values=[item("itm1", owner=ANN, title="from the e-mail login")])])

    callback = round_trip(client, db_id, provider, email="Ann@Example.com")
    assert callback.status_code == 302
    location = callback.location
    assert location.startswith(f"{APP}/notes?tab=2&dxc-auth=") and location.endswith("#top")
    payload = dxc_auth(location)
    assert payload["provider"] == "acme" and payload["state"] and "error" not in payload

    key, pem = key_pair()
    answer = exchange(client, db_id, payload["code"], pem)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    tokens = answer.get_json()
    assert tokens["type"] == "tokens" and tokens["userType"] == "prod"
    assert tokens["claims"] == by_email["claims"]
    assert tokens["refreshToken"] and tokens["accessTokenExpiration"]

    refreshed = client.post(f"/{db_id}/token", json=refresh_body(key, tokens["refreshToken"]))
    assert refreshed.get_json()["claims"]["sub"] == ANN

    phone = Device(client, f"/{db_id}", "phone")
    phone.token = tokens["accessToken"]
    phone.sync()
    assert phone.state["items"]["itm1"]["title"] == "from the e-mail login"


def test_a_posted_callback_works_like_apple_form_post(client, db_id, provider):
    started = start(client, db_id)
    code, state = provider.approve(started.location, ANN)
    back = client.post(f"/{db_id}/oauth/callback/acme", data={"code": code, "state": state})
    assert back.status_code == 302 and exchange(
        client, db_id, dxc_auth(back.location)["code"]).status_code == 200


def test_a_new_user_is_made_from_the_provider_identity(app, client, db_id, provider):
    payload = dxc_auth(round_trip(client, db_id, provider, email="bo@example.org").location)
    tokens = exchange(client, db_id, payload["code"]).get_json()
    assert tokens["claims"] == {"sub": "bo@example.org", "email": "bo@example.org",
                                "name": "Ann Example"}


def test_intent_login_refuses_an_unknown_user(client, db_id, provider):
    payload = dxc_auth(round_trip(client, db_id, provider, email="new@example.org").location)
    refused = exchange(client, db_id, payload["code"], intent="login")
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "USER_NOT_REGISTERED"


def test_a_code_is_used_once(client, db_id, provider):
    code = dxc_auth(round_trip(client, db_id, provider).location)["code"]
    assert exchange(client, db_id, code).status_code == 200
    again = exchange(client, db_id, code)
    assert again.status_code == 400
    assert again.get_json()["type"] == "error"
    assert again.get_json()["messageCode"] == "INVALID_OTP"  # the client: expired_code


def test_an_expired_or_foreign_code_gives_no_token(app, client, db_id, provider):
    code = dxc_auth(round_trip(client, db_id, provider).location)["code"]
    with app.extensions["dxc"].control.begin() as connection:
        connection.execute(update(schema.oauth_codes).values(expires=utcnow() - timedelta(1)))
    assert exchange(client, db_id, code).get_json()["messageCode"] == "INVALID_OTP"

    other = databases.create_database(app.extensions["dxc"]).db_id
    code = dxc_auth(round_trip(client, db_id, provider).location)["code"]
    assert exchange(client, other, code).get_json()["messageCode"] == "INVALID_OTP"
    assert exchange(client, db_id, "made-up").status_code == 400


def test_a_forged_or_replayed_state_gets_an_error_page_and_no_redirect(client, db_id, provider):
    started = start(client, db_id)
    code, state = provider.approve(started.location, ANN)
    forged = client.get(f"/{db_id}/oauth/callback/acme", query_string={
        "code": code, "state": state + "x"})
    assert forged.status_code == 400 and forged.location is None
    assert "text/html" in forged.content_type

    first = client.get(f"/{db_id}/oauth/callback/acme", query_string={
        "code": code, "state": state})
    assert "code" in dxc_auth(first.location)
    replayed = client.get(f"/{db_id}/oauth/callback/acme", query_string={
        "code": code, "state": state})
    assert replayed.status_code == 400 and replayed.location is None


def test_an_expired_state_goes_back_with_an_error(app, client, db_id, provider):
    started = start(client, db_id)
    code, state = provider.approve(started.location, ANN)
    with app.extensions["dxc"].control.begin() as connection:
        connection.execute(update(schema.oauth_states).values(expires=utcnow() - timedelta(1)))
    back = client.get(f"/{db_id}/oauth/callback/acme", query_string={
        "code": code, "state": state})
    payload = dxc_auth(back.location)
    assert "code" not in payload and classify(payload["error"]) == "provider_error"
    assert provider.token_requests == 0


def test_redirect_uri_must_be_whitelisted(make_app, provider):
    app = make_app(cors_origins=())  # as in production: only the whitelist counts
    client = app.test_client()
    db_id = databases.create_database(app.extensions["dxc"]).db_id
    add_provider(app, db_id, provider)
    for refused in (PAGE, "javascript:alert(1)", "https://app.example.com@evil.example/",
                    "myapp://done", "", "//evil.example/"):
        answer = start(client, db_id, refused)
        assert answer.status_code == 400 and answer.location is None, refused

    for origin in ("https://app.example.com", "myapp://"):
        result = cli(app, "whitelist", origin, "--db", db_id, "--force")
        assert result.exit_code == 0, result.output
    app.extensions["dxc_origins"].whitelists.forget(db_id)
    for allowed in ("https://app.example.com/x?y=1", "myapp://done"):
        answer = start(client, db_id, allowed)
        assert answer.status_code == 302 and answer.location.startswith(provider.issuer), allowed


def test_a_custom_scheme_gets_the_code_in_its_query(make_app, provider):
    app = make_app(cors_origins=())
    client = app.test_client()
    db_id = databases.create_database(app.extensions["dxc"]).db_id
    add_provider(app, db_id, provider)
    result = cli(app, "whitelist", "myapp://", "--db", db_id, "--force")
    assert result.exit_code == 0, result.output
    started = start(client, db_id, "myapp://")
    code, state = provider.approve(started.location, ANN)
    back = client.get(f"/{db_id}/oauth/callback/acme", query_string={"code": code, "state": state})
    assert back.location.startswith("myapp://?dxc-auth=")
    assert "code" in dxc_auth(back.location)


def test_an_unverified_email_is_refused(client, db_id, provider):
    payload = dxc_auth(round_trip(client, db_id, provider, email_verified=False).location)
    assert "code" not in payload
    assert classify(payload["error"]) == "email_not_verified"


def test_the_user_refusing_at_the_provider_is_access_denied(client, db_id, provider):
    started = start(client, db_id)
    _, state = provider.approve(started.location, ANN)
    back = client.get(f"/{db_id}/oauth/callback/acme", query_string={
        "error": "access_denied", "error_description": "The user said no", "state": state})
    payload = dxc_auth(back.location)
    assert classify(payload["error"]) == "access_denied" and "code" not in payload
    assert provider.token_requests == 0


@pytest.mark.parametrize("tamper", [
    {"error": "invalid_grant"},  # the token endpoint refuses
    {"nonce": "another-nonce"},  # an ID token of another login
    {"aud": "another-client"},  # an ID token for another app
    {"iss": "https://evil.example"},  # an ID token from elsewhere
    {"exp": 1000},  # expired long ago
])
def test_a_provider_error_or_a_bad_id_token_is_provider_error(client, db_id, provider, tamper):
    provider.tamper = tamper
    payload = dxc_auth(round_trip(client, db_id, provider).location)
    assert "code" not in payload
    assert classify(payload["error"]) == "provider_error", payload


def test_an_unreachable_provider_sends_the_user_back_with_an_error(app, client, db_id, provider):
    provider.close()
    app.extensions["dxc_oauth"]._clients.clear()  # forget the discovery fetched at `add`
    answer = start(client, db_id)
    assert answer.status_code == 302 and answer.location.startswith(APP)
    assert classify(dxc_auth(answer.location)["error"]) == "provider_error"


def test_an_unknown_provider_or_database(client, db_id):
    assert client.get(f"/{db_id}/oauth/login/nope?redirect_uri={PAGE}").status_code == 404
    assert client.get("/zzzzzzzz/oauth/login/acme").status_code == 404
    assert client.get("/zzzzzzzz/auth-providers").status_code == 404


def test_email_login_can_be_turned_off_for_app_users(app, client, db_id):
    result = cli(app, "oauth", "otp", "off", "--db", db_id)
    assert result.exit_code == 0
    refused = client.post(f"/{db_id}/token", json={
        "grant_type": "otp", "email": ANN, "scopes": ["ACCESS_DB"]})
    assert refused.status_code == 200 and refused.get_json()["type"] == "error"
    cli_login = client.post(f"/{db_id}/token", json={
        "grant_type": "otp", "email": ANN, "scopes": ["CONNECT_CLIENT"]})
    assert cli_login.get_json()["type"] == "otp-sent"


def test_add_refuses_what_cannot_work(app, db_id, provider):
    def add(*args: str) -> Any:
        return cli(app, "oauth", "add", *args, "--client-id", "x", "--client-secret", "y",
                   "--db", db_id)

    assert "needs --issuer" in add("acme2").output
    assert "no issuer" in add("github", "--issuer", provider.issuer).output
    assert "https://" in add("corp", "--issuer", "http://id.corp.example").output
    assert "discovery" in add("corp", "--issuer", provider.issuer + "/nowhere").output
    assert add("Bad_Name", "--issuer", provider.issuer).exit_code != 0
    google = add("google")  # a known type: its issuer, no discovery needed here
    assert google.exit_code == 0 and "/oauth/callback/google" in google.output
    listed = cli(app, "oauth", "list", "--db", db_id).output
    assert "acme" in listed and "google" in listed and "Login by e-mail: on" in listed
