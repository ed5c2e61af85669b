"""Logging in over HTTP, in-process, on SQLite and PostgreSQL (spec: auth-and-websocket.md §2).

One-time passwords reach a real web-hook receiver (``tests/mailbox.py``)
through the e-mail channel and the in-process job runner.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from dxc import tson
from dxc.auth.tokens import AccessClaims, TokenSigner
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.secret_keys import Keyring
from dxc.storage import credentials, schema, users
from dxc.storage.clock import utcnow
from tests.protocol_client import refresh_body

ANN = "ann@example.com"
OWNER = "owner@example.com"
CODE = re.compile(r"^[2-9A-HJ-NP-Z]{8}$")


@pytest.fixture
def app(mail_app):
    return mail_app


@pytest.fixture
def created(app):
    """A database created by OWNER (who owns its admin API client), with a demo user."""
    services = app.extensions["dxc"]
    created = databases.create_database(services, owner_email=OWNER)
    import_document(services, created.db_id, {"demoUsers": {"alice@demo.local": {}}})
    return created


@pytest.fixture
def path(created) -> str:
    return "/" + created.db_id


def key_pair() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode().strip()


def request_otp(client, path: str, email: str = ANN, **extra: Any) -> str:
    body = {"grant_type": "otp", "email": email, "scopes": ["ACCESS_DB"], **extra}
    response = client.post(f"{path}/token", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["type"] == "otp-sent"
    return answer["otp_id"]


def otp_login(client, mailbox, path: str, email: str = ANN, scopes=("ACCESS_DB",), **extra):
    """Both OTP steps as the client sends them (``extra`` in both); the step-2 response."""
    body = {"grant_type": "otp", "email": email, "scopes": list(scopes)}
    if "intent" in extra:
        body["intent"] = extra.pop("intent")
    sent = len(mailbox.mails_to(email))
    otp_id = request_otp(client, path, **{k: v for k, v in body.items() if k != "grant_type"})
    code = mailbox.code(email, sent + 1)
    return client.post(f"{path}/token", json={**body, "otp_id": otp_id, "otp": code, **extra})


def sync(client, path: str, token: str | None = None):
    body = tson.dumps({"v": 3, "clientIdentity": "c1", "schema": {}, "changes": []})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(f"{path}/sync", data=body, headers=headers)
    response.get_data()  # the whole stream, in this request's context
    return response


# --- OTP ---------------------------------------------------------------------------------------


def test_otp_login_creates_the_user_and_refreshes(app, path, mailbox):
    client = app.test_client()
    providers = client.get(f"{path}/auth-providers")
    assert providers.get_json() == {"providers": [], "otpEnabled": True}

    origin = {"Origin": "http://localhost:8080"}
    body = {"grant_type": "otp", "email": "Ann@Example.com", "scopes": ["ACCESS_DB"]}
    sent = client.post(f"{path}/token", json=body, headers=origin)
    assert sent.status_code == 200 and sent.headers["Cache-Control"] == "no-store"
    otp_id = sent.get_json()["otp_id"]
    mail = mailbox.wait_for_mail(ANN)
    assert mailbox.bad_signatures == 0
    assert set(mail) == {"id", "to", "subject", "text", "html", "template", "variables"}
    code = mail["variables"]["otp"]
    assert CODE.match(code)
    assert mail["template"] == "otp"
    assert f"OTP: {code}" in mail["text"] and code in mail["subject"] and code in mail["html"]
    assert mail["variables"]["originName"] == "localhost:8080"

    key, pem = key_pair()
    step2 = {**body, "otp_id": otp_id, "otp": code.lower(), "public_key": pem}
    answer = client.post(f"{path}/token", json=step2).get_json()
    assert answer["type"] == "tokens"
    assert answer["claims"] == {"sub": ANN, "email": ANN, "name": "ann"}
    assert answer["userType"] == "prod"
    assert answer["accessTokenExpiration"] > time.time() * 1000
    assert sync(client, path, answer["accessToken"]).status_code == 200

    services = app.extensions["dxc"]
    with services.control.connect() as connection:
        user = connection.execute(
            select(schema.users).where(schema.users.c.user_id == ANN)
        ).one()
    assert (user.email, user.name, user.user_type) == (ANN, "ann", "prod")
    assert user.created is not None and user.last_login is not None

    refreshed = client.post(f"{path}/token", json=refresh_body(key, answer["refreshToken"]))
    assert refreshed.status_code == 200
    assert refreshed.get_json()["claims"]["sub"] == ANN

    # Single use: the same code again is a soft error that ends the client's loop.
    again = client.post(f"{path}/token", json=step2)
    assert again.status_code == 200
    assert again.get_json()["type"] == "error"
    assert again.get_json()["messageCode"] == "INVALID_OTP"


def test_magic_link_needs_no_email(app, path, mailbox):
    client = app.test_client()
    otp_id = request_otp(client, path)
    code = mailbox.code(ANN)
    body = {"grant_type": "otp", "otp_id": otp_id, "otp": code, "scopes": ["ACCESS_DB"]}
    answer = client.post(f"{path}/token", json=body).get_json()
    assert answer["type"] == "tokens" and answer["claims"]["sub"] == ANN


def test_wrong_codes_are_401_text_until_the_attempts_run_out(app, path, mailbox):
    client = app.test_client()
    otp_id = request_otp(client, path)
    code = mailbox.code(ANN)
    wrong = "22222222" if code != "22222222" else "33333333"
    body = {"grant_type": "otp", "email": ANN, "otp_id": otp_id, "scopes": ["ACCESS_DB"]}
    attempts = app.extensions["dxc"].settings.otp_max_attempts
    for _ in range(attempts - 1):
        response = client.post(f"{path}/token", json={**body, "otp": wrong})
        assert response.status_code == 401
        assert response.mimetype == "text/plain"
        assert response.get_data(as_text=True) == "Invalid OTP. Please try again."
    last = client.post(f"{path}/token", json={**body, "otp": wrong})
    assert last.status_code == 200
    assert last.get_json()["type"] == "error" and last.get_json()["messageCode"] == "INVALID_OTP"
    # The right code no longer helps: the OTP is gone.
    late = client.post(f"{path}/token", json={**body, "otp": code})
    assert late.get_json()["messageCode"] == "INVALID_OTP"


def test_expired_or_foreign_codes_are_refused(app, path, mailbox, created):
    client = app.test_client()
    otp_id = request_otp(client, path)
    code = mailbox.code(ANN)
    body = {"grant_type": "otp", "email": ANN, "otp_id": otp_id, "otp": code}
    # Another database, or another address, cannot use it.
    other = databases.create_database(app.extensions["dxc"])
    assert client.post(f"/{other.db_id}/token", json=body).get_json()["type"] == "error"
    assert client.post(
        f"{path}/token", json={**body, "email": "eve@example.com"}
    ).get_json()["type"] == "error"
    with app.extensions["dxc"].control.begin() as connection:
        connection.execute(update(schema.otps).values(expires=schema.otps.c.created))
    expired = client.post(f"{path}/token", json=body).get_json()
    assert expired["type"] == "error" and "expired" in expired["message"]


def test_intent_login_refuses_unknown_users(app, path, mailbox):
    client = app.test_client()
    response = otp_login(client, mailbox, path, intent="login")
    assert response.status_code == 403
    assert response.get_json()["code"] == "USER_NOT_REGISTERED"
    assert isinstance(response.get_json()["message"], str)
    # Once known (registered), the same intent logs in.
    assert otp_login(client, mailbox, path, intent="register").get_json()["type"] == "tokens"
    assert otp_login(client, mailbox, path, intent="login").get_json()["type"] == "tokens"


def test_a_flood_of_otp_requests_is_throttled(make_app, created_on):
    app = make_app(otp_max_per_email=3, otp_max_per_address=5)
    path = created_on(app)
    client = app.test_client()
    for _ in range(3):
        request_otp(client, path)
    refused = client.post(f"{path}/token", json={"grant_type": "otp", "email": ANN})
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "too_many_requests"
    assert "e-mail address" in refused.get_json()["message"]
    assert int(refused.headers["Retry-After"]) > 0
    # Other addresses from the same client address: 5 in all, then refused too.
    request_otp(client, path, "bob@example.com")
    request_otp(client, path, "cy@example.com")
    flood = client.post(f"{path}/token", json={"grant_type": "otp", "email": "dan@example.com"})
    assert flood.status_code == 429
    assert "your address" in flood.get_json()["message"]
    other_client = client.post(
        f"{path}/token", json={"grant_type": "otp", "email": "dan@example.com"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert other_client.status_code == 200


@pytest.fixture
def created_on():
    def create(app) -> str:
        return "/" + databases.create_database(app.extensions["dxc"]).db_id

    return create


def test_without_a_channel_development_logs_the_code(make_app, created_on, caplog):
    app = make_app()
    path = created_on(app)
    client = app.test_client()
    with caplog.at_level(logging.WARNING):
        otp_id = request_otp(client, path)
    logged = re.search(r"one-time password for ann@example.com is ([A-Z0-9]{8})", caplog.text)
    assert logged, caplog.text
    body = {"grant_type": "otp", "email": ANN, "otp_id": otp_id, "otp": logged.group(1)}
    assert client.post(f"{path}/token", json=body).get_json()["type"] == "tokens"


def test_without_a_channel_production_refuses_with_503(make_app, created_on):
    app = make_app(env="production")
    path = created_on(app)
    response = app.test_client().post(f"{path}/token", json={"grant_type": "otp", "email": ANN})
    assert response.status_code == 503
    assert response.get_json()["error"] == "email_channel_missing"
    assert "init-email-channel" in response.get_json()["message"]


def test_secrets_never_reach_the_log(app, path, mailbox, created, caplog):
    client = app.test_client()
    with caplog.at_level(logging.DEBUG):
        key, pem = key_pair()
        tokens = otp_login(client, mailbox, path, public_key=pem).get_json()
        client.post(f"{path}/token", json=refresh_body(key, tokens["refreshToken"]))
        creds = client.post(f"{path}/token", json={
            "grant_type": "client_credentials", "client_id": created.client_id,
            "client_secret": created.client_secret, "scopes": ["ACCESS_DB"],
        }).get_json()
        client.post(f"{path}/token", json={
            "grant_type": "client_credentials", "client_id": created.client_id,
            "client_secret": "wrong-" + created.client_secret, "scopes": [],
        })
    secrets_seen = [
        mailbox.code(ANN), tokens["accessToken"], tokens["refreshToken"],
        created.client_secret, creds["accessToken"], mailbox.secret,
    ]
    for secret in secrets_seen:
        assert secret not in caplog.text


# --- client_credentials -------------------------------------------------------------------------


def credentials_body(created, **extra: Any) -> dict[str, Any]:
    return {
        "grant_type": "client_credentials",
        "client_id": created.client_id,
        "client_secret": created.client_secret,
        "scopes": ["IMPERSONATE", "MANAGE_DB", "DELETE_DB", "ACCESS_DB", "GLOBAL_READ",
                   "GLOBAL_WRITE"],
        **extra,
    }


def token_scopes(app, db_id: str, token: str) -> set[str]:
    return set(app.extensions["dxc"].signer.verify(db_id, token).scopes)


def test_client_credentials_grant_the_overlap_of_scopes(app, path, created):
    client = app.test_client()
    answer = client.post(f"{path}/token", json=credentials_body(created)).get_json()
    assert answer["type"] == "tokens"
    assert answer["userType"] == "client" and answer["claims"]["sub"] == created.client_id
    assert "refreshToken" not in answer
    assert token_scopes(app, created.db_id, answer["accessToken"]) == set(databases.ADMIN_SCOPES)

    empty = client.post(f"{path}/token", json=credentials_body(created, scopes=[]))
    assert empty.status_code == 200
    assert token_scopes(app, created.db_id, empty.get_json()["accessToken"]) == set()

    services = app.extensions["dxc"]
    with services.control.begin() as connection:
        limited, secret = credentials.create_api_client(
            connection, created.db_id, ("GLOBAL_READ",), None
        )
    narrow = client.post(f"{path}/token", json=credentials_body(
        created, client_id=limited.client_id, client_secret=secret
    )).get_json()
    assert token_scopes(app, created.db_id, narrow["accessToken"]) == {"GLOBAL_READ"}
    # ...and it may not impersonate.
    refused = client.post(f"{path}/token", json=credentials_body(
        created, client_id=limited.client_id, client_secret=secret, claims={"sub": ANN}
    ))
    assert refused.status_code == 403 and refused.get_json()["error"]


def test_invalid_client_credentials_are_401_json(app, path, created):
    client = app.test_client()
    wrong = client.post(f"{path}/token", json=credentials_body(created, client_secret="nope"))
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "invalid_client"
    unknown = client.post(f"{path}/token", json=credentials_body(created, client_id="x"))
    assert unknown.status_code == 401
    other = databases.create_database(app.extensions["dxc"])
    elsewhere = client.post(f"/{other.db_id}/token", json=credentials_body(created))
    assert elsewhere.status_code == 401


def test_impersonation_issues_a_user_token(app, path, created):
    client = app.test_client()
    key, pem = key_pair()
    before = int(time.time())
    answer = client.post(f"{path}/token", json=credentials_body(
        created, scopes=["ACCESS_DB", "IMPERSONATE"], public_key=pem, expires_in="2h",
        claims={"sub": "user-7", "email": "seven@example.com", "name": "Seven"},
    )).get_json()
    after = int(time.time())
    assert answer["claims"] == {"sub": "user-7", "email": "seven@example.com", "name": "Seven"}
    assert answer["userType"] == "prod"
    assert (before + 7200) * 1000 <= answer["accessTokenExpiration"] <= (after + 7200) * 1000
    assert token_scopes(app, created.db_id, answer["accessToken"]) == {"ACCESS_DB"}
    synced = tson.loads(sync(client, path, answer["accessToken"]).get_data())
    assert "user-7" in synced["realms"]
    refreshed = client.post(f"{path}/token", json=refresh_body(key, answer["refreshToken"]))
    assert refreshed.status_code == 200 and refreshed.get_json()["claims"]["sub"] == "user-7"
    # Once the API client is gone, its sessions are too.
    with app.extensions["dxc"].control.begin() as connection:
        connection.execute(schema.api_clients.delete())
    gone = client.post(f"{path}/token", json=refresh_body(key, answer["refreshToken"]))
    assert gone.status_code == 401


def test_not_before_delays_the_token(app, path, created):
    client = app.test_client()
    answer = client.post(f"{path}/token", json=credentials_body(
        created, claims={"sub": ANN}, not_before="10m", expires_in="1h"
    )).get_json()
    assert sync(client, path, answer["accessToken"]).status_code == 401


# --- tokens refused ------------------------------------------------------------------------------


def test_forged_expired_and_foreign_tokens_are_refused(app, path, created):
    client = app.test_client()
    services = app.extensions["dxc"]
    claims = AccessClaims(ANN, frozenset({"ACCESS_DB"}), "prod", ANN)
    issuer = services.settings.public_url
    forged = TokenSigner(Keyring("another-secret-of-enough-length"), issuer, 3600).issue(
        created.db_id, claims
    )
    expired = TokenSigner(services.settings.keyring, issuer, -3600).issue(created.db_id, claims)
    service_token = services.signer.issue("service", claims)
    good = services.signer.issue(created.db_id, claims)
    assert sync(client, path, good.token).status_code == 200
    for token in (forged.token, expired.token, service_token.token, "not.a.jwt"):
        response = sync(client, path, token)
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_token"
    assert "expired" in sync(client, path, expired.token).get_json()["message"]


def test_refresh_requests_are_checked(app, path, created, mailbox):
    client = app.test_client()
    key, pem = key_pair()
    tokens = otp_login(client, mailbox, path, public_key=pem).get_json()
    other = databases.create_database(app.extensions["dxc"])
    body = refresh_body(key, tokens["refreshToken"])
    assert client.post(f"/{other.db_id}/token", json=body).status_code == 401
    assert client.post(f"{path}/token", json={**body, "signature": "AAAA"}).status_code == 401
    unknown = refresh_body(key, "no-such-token")
    assert client.post(f"{path}/token", json=unknown).status_code == 401
    with app.extensions["dxc"].control.begin() as connection:
        assert credentials.revoke_refresh_tokens(connection, ANN, created.db_id) == 1
    revoked = client.post(f"{path}/token", json=refresh_body(key, tokens["refreshToken"]))
    assert revoked.status_code == 401
    assert revoked.get_json()["error"]


@pytest.mark.parametrize("body", [
    None,
    {"grant_type": "otp"},
    {"grant_type": "otp", "email": 7},
    {"grant_type": "otp", "email": ANN, "scopes": "ACCESS_DB"},
    {"grant_type": "otp", "email": ANN, "scopes": ["GLOBAL_WRITE"]},
    {"grant_type": "otp", "email": ANN, "intent": "sneak"},
    {"grant_type": "otp", "email": ANN, "otp_id": 5, "otp": "X"},
    {"grant_type": "otp", "otp_id": "abc"},
    {"grant_type": "otp", "otp_id": "abc", "otp": "ABCDEFGH", "public_key": "nope"},
    {"grant_type": "client_credentials", "client_id": "x"},
    {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y", "claims": {}},
    {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y",
     "expires_in": "soon"},
    {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y",
     "expires_in": "-1h"},
    {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y",
     "expires_in": float("nan")},
    {"grant_type": "refresh_token", "refresh_token": "x"},
    {"grant_type": "password"},
])
def test_malformed_token_requests_get_a_json_400(app, path, body):
    response = app.test_client().post(f"{path}/token", json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["message"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)
TOKEN_FIELDS = ["grant_type", "email", "scopes", "intent", "otp", "otp_id", "public_key",
                "client_id", "client_secret", "claims", "expires_in", "not_before",
                "refresh_token", "signature", "time_stamp", "demo_user"]
GRANTS = st.sampled_from(["otp", "demo", "client_credentials", "refresh_token"])


@hypothesis_settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.fixed_dictionaries(
    {"grant_type": GRANTS},
    optional={name: JSON_VALUES for name in TOKEN_FIELDS[1:]},
))
def test_no_token_request_gets_a_500(app, path, body):
    response = app.test_client().post(f"{path}/token", json=body)
    assert response.status_code < 500, (body, response.get_data(as_text=True))
    if response.status_code != 401 or response.mimetype != "text/plain":
        assert isinstance(response.get_json(), dict)


def test_invalid_emails_are_soft_errors(app, path):
    client = app.test_client()
    for email in ("nobody", "a@localhost", "me@example.com as you@example.com"):
        answer = client.post(f"{path}/token", json={"grant_type": "otp", "email": email})
        assert answer.status_code == 200
        assert answer.get_json()["messageCode"] == "INVALID_EMAIL"


# --- the CLI's service endpoints ----------------------------------------------------------------


def test_create_db_through_the_service_url(app, mailbox):
    client = app.test_client()
    tokens = otp_login(client, mailbox, "/service", OWNER, scopes=("CREATE_DB",)).get_json()
    assert tokens["type"] == "tokens" and "refreshToken" not in tokens
    auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
    created = client.post("/service/create-db", json={"timeZone": "UTC"}, headers=auth)
    assert created.status_code == 200, created.get_data(as_text=True)
    answer = created.get_json()
    settings = app.extensions["dxc"].settings
    db_id = answer["url"].rsplit("/", 1)[1]
    assert answer["url"] == settings.database_url_for(db_id)
    login = client.post(f"/{db_id}/token", json={
        "grant_type": "client_credentials", "client_id": answer["clientId"],
        "client_secret": answer["clientSecret"], "scopes": [],
    })
    assert login.status_code == 200
    # Tokens of the service are not tokens of a database, and the reverse.
    assert client.post("/service/create-db", json={}).status_code == 401
    db_token = {"Authorization": f"Bearer {login.get_json()['accessToken']}"}
    assert client.post("/service/create-db", json={}, headers=db_token).status_code == 401
    assert sync(client, f"/{db_id}", tokens["accessToken"]).status_code == 401


def test_create_db_allow_list(make_app, mailbox):
    app = make_app(create_db_emails=("boss@example.com", "@corp.example"))
    app.extensions["dxc"].mailer.configure(mailbox.url, mailbox.secret)
    client = app.test_client()
    for email, allowed in [
        ("boss@example.com", True), ("dev@corp.example", True), ("ann@example.com", False),
    ]:
        response = otp_login(client, mailbox, "/service", email, scopes=("CREATE_DB",))
        if allowed:
            assert response.get_json()["type"] == "tokens"
        else:
            assert response.status_code == 403
            assert response.get_json()["code"] == "USER_NOT_ACCEPTED"


def test_clients_connect_only_for_the_owner(app, path, mailbox, created):
    client = app.test_client()
    owner = otp_login(client, mailbox, path, OWNER, scopes=("CONNECT_CLIENT",)).get_json()
    auth = {"Authorization": f"Bearer {owner['accessToken']}"}
    connected = client.post(f"{path}/clients/connect", json={"requireUnverified": False},
                            headers=auth)
    assert connected.status_code == 200, connected.get_data(as_text=True)
    fresh = connected.get_json()
    assert fresh["clientId"] != created.client_id
    login = client.post(f"{path}/token", json=credentials_body(
        created, client_id=fresh["clientId"], client_secret=fresh["clientSecret"]
    ))
    assert token_scopes(app, created.db_id, login.get_json()["accessToken"]) == set(
        databases.ADMIN_SCOPES
    )
    reconnect = client.post(f"{path}/clients/connect", json={"requireUnverified": True},
                            headers=auth)
    assert reconnect.status_code == 403

    stranger = otp_login(client, mailbox, path, ANN, scopes=("CONNECT_CLIENT",)).get_json()
    refused = client.post(f"{path}/clients/connect", json={},
                          headers={"Authorization": f"Bearer {stranger['accessToken']}"})
    assert refused.status_code == 403 and "no API client" in refused.get_json()["message"]
    user = otp_login(client, mailbox, path, OWNER).get_json()  # ACCESS_DB only
    wrong_scope = client.post(f"{path}/clients/connect", json={},
                              headers={"Authorization": f"Bearer {user['accessToken']}"})
    assert wrong_scope.status_code == 403
    assert client.post(f"{path}/clients/connect", json={}).status_code == 401


def test_a_json_body_nested_too_deeply_is_a_400(app, path):
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = app.test_client().post(f"{path}/token", data=deep, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "the JSON body is nested too deeply"


# --- abuse: parallel requests, replays, deactivated users ---------------------------------------


def in_parallel(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(0..count-1)`` from ``count`` threads released at the same moment."""
    start = threading.Barrier(count)

    def run(index: int) -> Any:
        start.wait()
        return call(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_otp_requests_send_no_more_codes_than_the_limit(make_app, created_on):
    # No e-mail channel: the codes are logged (rendering mails is not thread-safe, and
    # gevent never runs two renderings at once).
    app = make_app()
    path = created_on(app)
    limit = app.extensions["dxc"].settings.otp_max_per_email
    body = {"grant_type": "otp", "email": ANN, "scopes": ["ACCESS_DB"]}
    answers = in_parallel(40, lambda _: app.test_client().post(f"{path}/token", json=body))
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) == {200, 429}, statuses
    sent = statuses.count(200)
    assert sent == limit, f"{sent} codes sent for one address (limit {limit})"
    refused = [answer.get_json()["error"] for answer in answers if answer.status_code == 429]
    assert set(refused) == {"too_many_requests"}
    with app.extensions["dxc"].control.connect() as connection:
        stored = connection.scalar(
            select(func.count()).select_from(schema.otps).where(schema.otps.c.email == ANN)
        )
    assert stored == limit


def test_parallel_wrong_guesses_compare_no_more_codes_than_the_attempts(
    app, path, mailbox, monkeypatch
):
    client = app.test_client()
    otp_id = request_otp(client, path)
    code = mailbox.code(ANN)
    wrong = "22222222" if code != "22222222" else "33333333"
    login = app.extensions["dxc"].tokens.otp
    digest, compared, lock = login._digest, [], threading.Lock()

    def counting_digest(key: bytes, otp_id: str, guess: str) -> str:
        with lock:
            compared.append(guess)
        return digest(key, otp_id, guess)

    monkeypatch.setattr(login, "_digest", counting_digest)
    body = {"grant_type": "otp", "email": ANN, "otp_id": otp_id, "scopes": ["ACCESS_DB"]}
    answers = in_parallel(
        60, lambda _: app.test_client().post(f"{path}/token", json={**body, "otp": wrong})
    )
    attempts = app.extensions["dxc"].settings.otp_max_attempts
    assert len(compared) <= attempts, f"{len(compared)} guesses compared (limit {attempts})"
    for answer in answers:
        if answer.status_code == 401:
            assert answer.get_data(as_text=True) == "Invalid OTP. Please try again."
        else:
            assert answer.status_code == 200
            assert answer.get_json()["messageCode"] == "INVALID_OTP"
    late = client.post(f"{path}/token", json={**body, "otp": code})
    assert late.status_code == 200 and late.get_json()["messageCode"] == "INVALID_OTP"


def test_a_signed_refresh_request_is_answered_once(app, path, mailbox):
    client = app.test_client()
    key, pem = key_pair()
    tokens = otp_login(client, mailbox, path, public_key=pem).get_json()
    body = refresh_body(key, tokens["refreshToken"])
    assert client.post(f"{path}/token", json=body).get_json()["type"] == "tokens"
    replayed = client.post(f"{path}/token", json=body)
    assert replayed.status_code == 401
    assert replayed.get_json()["error"] == "refresh_replayed"
    assert "already used" in replayed.get_json()["message"]
    # The real client signs a fresh time stamp each time.
    fresh = refresh_body(key, tokens["refreshToken"], body["time_stamp"] + 1)
    assert client.post(f"{path}/token", json=fresh).get_json()["type"] == "tokens"


def test_a_refresh_request_sent_in_parallel_is_answered_once(app, path, mailbox):
    client = app.test_client()
    key, pem = key_pair()
    tokens = otp_login(client, mailbox, path, public_key=pem).get_json()
    body = refresh_body(key, tokens["refreshToken"])
    answers = in_parallel(12, lambda _: app.test_client().post(f"{path}/token", json=body))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [401] * 11, statuses


def test_a_deactivated_user_is_refused_at_once_by_sync_and_refresh(app, path, mailbox, created):
    client = app.test_client()
    key, pem = key_pair()
    tokens = otp_login(client, mailbox, path, public_key=pem).get_json()
    assert sync(client, path, tokens["accessToken"]).status_code == 200
    with app.extensions["dxc"].control.begin() as connection:
        users.update_user(connection, created.db_id, ANN, deactivated=utcnow())

    refused = sync(client, path, tokens["accessToken"])
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "invalid_token"
    assert "deactivated" in refused.get_json()["message"]
    refresh = client.post(f"{path}/token", json=refresh_body(key, tokens["refreshToken"]))
    assert refresh.status_code == 200
    assert refresh.get_json()["type"] == "error" and "accessToken" not in refresh.get_json()
    assert refresh.get_json()["title"] == "Account deactivated"

    with app.extensions["dxc"].control.begin() as connection:
        users.update_user(connection, created.db_id, ANN, deactivated=None)
    assert sync(client, path, tokens["accessToken"]).status_code == 200
