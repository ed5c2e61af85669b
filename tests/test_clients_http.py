"""API clients over HTTP, in-process, on SQLite and PostgreSQL (spec B2, B3.2-B3.9).

``clients/connect`` needs a proven e-mail; the tests mint that
``CONNECT_CLIENT`` token with the server's signer (the e-mail login itself
is tested in test_auth_http.py and, with the real CLI, in
tests/e2e/test_clients_cli_e2e.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from dxc.auth.tokens import AccessClaims
from dxc.manage import databases
from dxc.manage.databases import ADMIN_SCOPES
from dxc.storage import schema
from dxc.storage.clock import utcnow

OWNER = "owner@example.com"
BOB = "bob@example.com"


@pytest.fixture
def created(app):
    return databases.create_database(app.extensions["dxc"], owner_email=OWNER)


@pytest.fixture
def client(app):
    return app.test_client()


def token(client, db_id: str, client_id: str, secret: str, scopes=ADMIN_SCOPES) -> Any:
    return client.post(f"/{db_id}/token", json={
        "grant_type": "client_credentials", "client_id": client_id,
        "client_secret": secret, "scopes": list(scopes),
    })


def bearer(client, db_id: str, client_id: str, secret: str, scopes=ADMIN_SCOPES) -> dict:
    answer = token(client, db_id, client_id, secret, scopes)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"Authorization": f"Bearer {answer.get_json()['accessToken']}"}


def owner(client, created, scopes=ADMIN_SCOPES) -> dict:
    return bearer(client, created.db_id, created.client_id, created.client_secret, scopes)


def proven(app, db_id: str, email: str) -> dict:
    """The token an e-mail login with ``CONNECT_CLIENT`` gives (``npx dexie-cloud connect``)."""
    claims = AccessClaims(email, frozenset({"CONNECT_CLIENT"}), "prod", email)
    issued = app.extensions["dxc"].signer.issue(db_id, claims)
    return {"Authorization": f"Bearer {issued.token}"}


def rows(client, created) -> list[dict]:
    answer = client.get(f"/{created.db_id}/clients", headers=owner(client, created))
    assert answer.status_code == 200
    return answer.get_json()


def test_list_shape_and_scopes(app, client, created):
    listed = rows(client, created)
    assert listed == [{
        "id": created.client_id, "email": OWNER, "emailVerified": True,
        "scopes": list(ADMIN_SCOPES), "serviceAccount": False, "expiresAt": None,
        "created": listed[0]["created"],
    }]
    assert listed[0]["created"].startswith(str(utcnow().year))
    path = f"/{created.db_id}/clients"
    assert client.get(path).status_code == 401
    weak = owner(client, created, ["ACCESS_DB", "GLOBAL_READ"])
    refused = client.get(path, headers=weak)
    assert refused.status_code == 403 and "MANAGE_DB" in refused.get_json()["message"]
    for sub in ("add", "delete", "rotate"):
        assert client.post(f"{path}/{sub}", json={}).status_code == 401
    assert client.post(f"{path}/add", json={"email": BOB}, headers=weak).status_code == 403


def test_client_token_carries_its_owners_email(client, created):
    answer = token(client, created.db_id, created.client_id, created.client_secret).get_json()
    assert answer["claims"] == {"sub": created.client_id, "email": OWNER}
    assert answer["userType"] == "client"


def test_authorize_then_reconnect_claims_the_pending_client(app, client, created):
    path = f"/{created.db_id}/clients"
    auth = owner(client, created)
    before_reconnect = client.post(f"{path}/connect", json={"requireUnverified": True},
                                   headers=proven(app, created.db_id, BOB))
    assert before_reconnect.status_code == 403
    assert "no pending API client" in before_reconnect.get_json()["message"]

    first = client.post(f"{path}/add", headers=auth, json={"email": BOB, "scopes": ["ACCESS_DB"]})
    assert first.get_json() == {"ok": True}
    # Authorizing again replaces the pending authorization.
    added = client.post(f"{path}/add", headers=auth, json={
        "email": " Bob@Example.com", "scopes": ["access_db", "GLOBAL_READ", "ACCESS_DB"],
        "serviceAccount": False,
    })
    assert added.status_code == 200 and added.get_json() == {"ok": True}
    pending, = [row for row in rows(client, created) if row["email"] == BOB]
    assert pending["emailVerified"] is False and pending["scopes"] == ["ACCESS_DB", "GLOBAL_READ"]
    # A pending client has no secret anybody knows; its row's digest is not a way in.
    with app.extensions["dxc"].control.connect() as connection:
        stored = connection.scalar(select(schema.api_clients.c.secret_hash).where(
            schema.api_clients.c.client_id == pending["id"]))
    assert token(client, created.db_id, pending["id"], stored).status_code == 401

    claimed = client.post(f"{path}/connect", json={"requireUnverified": True},
                          headers=proven(app, created.db_id, BOB))
    assert claimed.status_code == 200, claimed.get_data(as_text=True)
    keys = claimed.get_json()
    assert keys["clientId"] == pending["id"]
    answer = token(client, created.db_id, keys["clientId"], keys["clientSecret"]).get_json()
    assert set(app.extensions["dxc"].signer.verify(created.db_id, answer["accessToken"]).scopes) \
        == {"ACCESS_DB", "GLOBAL_READ"}
    bob, = [row for row in rows(client, created) if row["email"] == BOB]
    assert bob["emailVerified"] is True
    again = client.post(f"{path}/connect", json={"requireUnverified": True},
                        headers=proven(app, created.db_id, BOB))
    assert again.status_code == 403


def test_connect_prefers_a_pending_client_and_refuses_strangers(app, client, created):
    path = f"/{created.db_id}/clients"
    auth = owner(client, created)
    assert client.post(f"{path}/add", headers=auth, json={
        "email": OWNER, "scopes": ["ACCESS_DB"], "serviceAccount": False}).status_code == 200
    pending, = [row for row in rows(client, created) if not row["emailVerified"]]
    first = client.post(f"{path}/connect", json={"requireUnverified": False},
                        headers=proven(app, created.db_id, OWNER)).get_json()
    assert first["clientId"] == pending["id"]
    second = client.post(f"{path}/connect", json={"requireUnverified": False},
                         headers=proven(app, created.db_id, OWNER)).get_json()
    assert second["clientId"] not in (pending["id"], created.client_id)
    assert len(rows(client, created)) == 3
    stranger = client.post(f"{path}/connect", json={}, headers=proven(app, created.db_id, BOB))
    assert stranger.status_code == 403


def test_service_account_gets_its_secret_at_once(app, client, created):
    added = client.post(f"/{created.db_id}/clients/add", headers=owner(client, created), json={
        "email": "ci@example.com", "scopes": ["GLOBAL_READ"], "serviceAccount": True})
    body = added.get_json()
    assert added.status_code == 200 and body["ok"] is True
    row, = [r for r in rows(client, created) if r["id"] == body["clientId"]]
    assert row["serviceAccount"] is True and row["emailVerified"] is True
    answer = token(client, created.db_id, body["clientId"], body["clientSecret"]).get_json()
    assert answer["claims"]["email"] == "ci@example.com"


@pytest.mark.parametrize("body", [
    None, [], {"scopes": ["ACCESS_DB"]}, {"email": "not-an-address"}, {"email": 7},
    {"email": BOB, "scopes": "ACCESS_DB"}, {"email": BOB, "scopes": []},
    {"email": BOB, "scopes": ["ACCESS_DB", 3]}, {"email": BOB, "scopes": ["CREATE_DB"]},
    {"email": BOB, "scopes": ["CONNECT_CLIENT"]}, {"email": BOB, "serviceAccount": "yes"},
])
def test_add_refuses_bad_bodies_and_stores_nothing(client, created, body):
    auth = owner(client, created)
    refused = client.post(f"/{created.db_id}/clients/add", json=body, headers=auth)
    assert refused.status_code == 400 and refused.get_json()["message"]
    assert len(rows(client, created)) == 1


def test_a_manager_grants_only_scopes_it_has(client, created):
    path = f"/{created.db_id}/clients/add"
    limited = owner(client, created, ["MANAGE_DB", "ACCESS_DB"])
    refused = client.post(path, headers=limited, json={
        "email": BOB, "scopes": ["ACCESS_DB", "GLOBAL_WRITE"], "serviceAccount": True})
    assert refused.status_code == 403 and "GLOBAL_WRITE" in refused.get_json()["message"]
    default = client.post(path, headers=limited, json={"email": BOB})  # default: all scopes
    assert default.status_code == 403
    ok = client.post(path, headers=limited, json={"email": BOB, "scopes": ["ACCESS_DB"]})
    assert ok.status_code == 200
    assert len(rows(client, created)) == 2


def test_delete_keeps_a_full_admin(app, client, created):
    path = f"/{created.db_id}/clients/delete"
    auth = owner(client, created)
    last = client.post(path, json={"client_id": created.client_id}, headers=auth)
    assert last.status_code == 409 and "all scopes" in last.get_json()["message"]
    assert client.post(path, json={"email": OWNER.upper()}, headers=auth).status_code == 409
    # A second admin that is only pending, or lacks a scope, does not count.
    add = f"/{created.db_id}/clients/add"
    client.post(add, headers=auth, json={"email": BOB})
    client.post(add, headers=auth, json={
        "email": "ci@example.com", "scopes": list(ADMIN_SCOPES[:-1]), "serviceAccount": True})
    assert client.post(path, json={"email": OWNER}, headers=auth).status_code == 409
    assert len(rows(client, created)) == 3

    admin = client.post(add, headers=auth, json={"email": "ops@example.com",
                                                 "serviceAccount": True}).get_json()
    assert client.post(path, json={"client_id": "nope"}, headers=auth).get_json() == {
        "ok": True, "numClients": 0}
    gone = client.post(path, json={"email": OWNER}, headers=auth)
    assert gone.get_json() == {"ok": True, "numClients": 1}
    ops = bearer(client, created.db_id, admin["clientId"], admin["clientSecret"])
    assert client.post(path, json={"email": BOB}, headers=ops).get_json()["numClients"] == 1
    assert client.post(path, json={"client_id": admin["clientId"]},
                       headers=ops).status_code == 409


@pytest.mark.parametrize("body", [
    None, [], {}, {"email": OWNER, "client_id": "x"}, {"email": ""}, {"client_id": 5},
])
def test_delete_refuses_bad_bodies(client, created, body):
    refused = client.post(f"/{created.db_id}/clients/delete", json=body,
                          headers=owner(client, created))
    assert refused.status_code == 400
    assert len(rows(client, created)) == 1


def expire(app, client_id: str) -> None:
    """What time does to a rotated client: its expiry passes."""
    with app.extensions["dxc"].control.begin() as connection:
        connection.execute(update(schema.api_clients).where(
            schema.api_clients.c.client_id == client_id
        ).values(expires=utcnow() - timedelta(seconds=1)))


def test_rotate_own_client_and_the_old_one_expires(app, client, created):
    auth = owner(client, created)
    start = utcnow()
    rotated = client.post(f"/{created.db_id}/clients/rotate", json={}, headers=auth)
    assert rotated.status_code == 200, rotated.get_data(as_text=True)
    body = rotated.get_json()
    assert body["oldClientId"] == created.client_id and body["clientId"] != created.client_id
    expires = datetime.fromisoformat(body["oldClientExpiresAt"])
    assert timedelta(days=7) <= expires - start < timedelta(days=7, minutes=5)
    listed = {row["id"]: row for row in rows(client, created)}
    assert listed[body["clientId"]]["scopes"] == list(ADMIN_SCOPES)
    assert listed[body["clientId"]]["email"] == OWNER
    assert listed[created.client_id]["expiresAt"] is not None
    # Until it expires the old key works; afterwards /token says "expired" (the CLI recovers).
    assert token(client, created.db_id, created.client_id, created.client_secret).status_code == 200
    expire(app, created.client_id)
    refused = token(client, created.db_id, created.client_id, created.client_secret)
    assert refused.status_code == 401 and "expired" in refused.get_json()["error"]
    assert token(client, created.db_id, body["clientId"], body["clientSecret"]).status_code == 200
    # An expired admin no longer counts: the new one cannot be revoked.
    new = bearer(client, created.db_id, body["clientId"], body["clientSecret"])
    assert client.post(f"/{created.db_id}/clients/delete", json={"client_id": body["clientId"]},
                       headers=new).status_code == 409


def test_rotate_another_client_as_manager(app, client, created):
    auth = owner(client, created)
    path = f"/{created.db_id}/clients"
    ci = client.post(f"{path}/add", headers=auth, json={
        "email": "ci@example.com", "scopes": ["GLOBAL_READ"], "serviceAccount": True}).get_json()
    rotated = client.post(f"{path}/rotate", headers=auth, json={
        "clientId": ci["clientId"], "oldClientExpiryDays": 0.5}).get_json()
    row, = [r for r in rows(client, created) if r["id"] == rotated["clientId"]]
    assert row["serviceAccount"] is True and row["scopes"] == ["GLOBAL_READ"]
    limited = owner(client, created, ["MANAGE_DB"])
    assert client.post(f"{path}/rotate", headers=limited,
                       json={"clientId": rotated["clientId"]}).status_code == 403
    assert client.post(f"{path}/rotate", headers=proven(app, created.db_id, OWNER),
                       json={}).status_code == 403  # CONNECT_CLIENT is not MANAGE_DB
    # A token that is no client's must name the client to rotate.
    claims = AccessClaims(OWNER, frozenset(ADMIN_SCOPES), "prod", OWNER)
    issued = app.extensions["dxc"].signer.issue(created.db_id, claims)
    user = {"Authorization": f"Bearer {issued.token}"}
    assert client.post(f"{path}/rotate", headers=user, json={}).status_code == 400
    assert client.post(f"{path}/rotate", headers=auth,
                       json={"clientId": "missing"}).status_code == 404
    client.post(f"{path}/add", headers=auth, json={"email": BOB})
    pending, = [r for r in rows(client, created) if not r["emailVerified"]]
    assert client.post(f"{path}/rotate", headers=auth,
                       json={"clientId": pending["id"]}).status_code == 409


@pytest.mark.parametrize("days", [0, -1, "3", True, 1e9, None])
def test_rotate_refuses_bad_days(client, created, days):
    body: Any = {"oldClientExpiryDays": days} if days is not None else ["not", "an", "object"]
    refused = client.post(f"/{created.db_id}/clients/rotate", json=body,
                          headers=owner(client, created))
    assert refused.status_code == 400
    assert len(rows(client, created)) == 1


def test_two_databases_do_not_share_clients(app, client, created):
    other = databases.create_database(app.extensions["dxc"], owner_email=BOB)
    auth = owner(client, created)
    foreign = bearer(client, other.db_id, other.client_id, other.client_secret)
    assert client.get(f"/{created.db_id}/clients", headers=foreign).status_code in (401, 403)
    assert [r["id"] for r in rows(client, created)] == [created.client_id]
    assert token(client, created.db_id, other.client_id, other.client_secret).status_code == 401
    deleted = client.post(f"/{created.db_id}/clients/delete", headers=auth,
                          json={"client_id": other.client_id})
    assert deleted.get_json()["numClients"] == 0
    assert client.post(f"/{created.db_id}/clients/rotate", headers=auth,
                       json={"clientId": other.client_id}).status_code == 404
    assert client.post(f"/{created.db_id}/clients/connect", json={},
                       headers=proven(app, created.db_id, BOB)).status_code == 403


def impersonated(client, created, sub: str) -> dict:
    """A user token that an IMPERSONATE client mints for the user id ``sub``."""
    answer = client.post(f"/{created.db_id}/token", json={
        "grant_type": "client_credentials", "client_id": created.client_id,
        "client_secret": created.client_secret, "scopes": list(ADMIN_SCOPES),
        "claims": {"sub": sub}})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"Authorization": f"Bearer {answer.get_json()['accessToken']}"}


@pytest.mark.parametrize("scopes", [[], ["ACCESS_DB"], ["MANAGE_DB"], ["MANAGE_DB", "ACCESS_DB"]])
def test_rotating_needs_manage_db_and_every_scope_of_the_client(client, created, scopes):
    """A token scoped down (``connect`` asks for none) must not buy a key with all scopes."""
    path = f"/{created.db_id}/clients/rotate"
    for body in ({}, {"clientId": created.client_id}):
        refused = client.post(path, json=body, headers=owner(client, created, scopes))
        assert refused.status_code == 403, refused.get_data(as_text=True)
        assert refused.get_json()["message"]
    assert [r["id"] for r in rows(client, created)] == [created.client_id]
    assert rows(client, created)[0]["expiresAt"] is None


def test_a_user_named_like_a_client_cannot_rotate_it(client, created):
    """An impersonated user whose id is a client's id is not that client."""
    user = impersonated(client, created, created.client_id)
    path = f"/{created.db_id}/clients/rotate"
    for body in ({"clientId": created.client_id}, {}):
        refused = client.post(path, json=body, headers=user)
        assert refused.status_code == 403, refused.get_data(as_text=True)
    assert [r["id"] for r in rows(client, created)] == [created.client_id]


def test_a_rotated_client_keeps_its_scopes_not_the_callers(app, client, created):
    path = f"/{created.db_id}/clients"
    ci = client.post(f"{path}/add", headers=owner(client, created), json={
        "email": "ci@example.com", "scopes": ["MANAGE_DB", "ACCESS_DB"],
        "serviceAccount": True}).get_json()
    rotated = client.post(f"{path}/rotate", json={}, headers=bearer(
        client, created.db_id, ci["clientId"], ci["clientSecret"])).get_json()
    row, = [r for r in rows(client, created) if r["id"] == rotated["clientId"]]
    assert row["scopes"] == ["MANAGE_DB", "ACCESS_DB"]
    answer = token(client, created.db_id, rotated["clientId"], rotated["clientSecret"]).get_json()
    assert set(app.extensions["dxc"].signer.verify(created.db_id, answer["accessToken"]).scopes) \
        == {"MANAGE_DB", "ACCESS_DB"}


def test_a_manager_cannot_delete_a_client_with_more_scopes(client, created):
    path = f"/{created.db_id}/clients"
    auth = owner(client, created)
    # A second full admin, so that the last-admin rule (409) is not what refuses.
    client.post(f"{path}/add", headers=auth, json={"email": "ops@example.com",
                                                  "serviceAccount": True})
    weak = client.post(f"{path}/add", headers=auth, json={
        "email": "ci@example.com", "scopes": ["MANAGE_DB", "ACCESS_DB"],
        "serviceAccount": True}).get_json()
    limited = bearer(client, created.db_id, weak["clientId"], weak["clientSecret"])
    for body in ({"client_id": created.client_id}, {"email": OWNER}, {"email": "OPS@example.com"}):
        refused = client.post(f"{path}/delete", json=body, headers=limited)
        assert refused.status_code == 403, body
        assert "GLOBAL_WRITE" in refused.get_json()["message"]
    assert len(rows(client, created)) == 3
    # Its equals and lesser clients it may delete, itself included.
    client.post(f"{path}/add", headers=auth, json={"email": BOB, "scopes": ["ACCESS_DB"]})
    assert client.post(f"{path}/delete", json={"email": BOB},
                       headers=limited).get_json() == {"ok": True, "numClients": 1}
    assert client.post(f"{path}/delete", json={"client_id": weak["clientId"]},
                       headers=limited).get_json() == {"ok": True, "numClients": 1}
    assert len(rows(client, created)) == 2


def test_authorizing_again_cannot_replace_a_pending_client_with_more_scopes(client, created):
    path = f"/{created.db_id}/clients/add"
    client.post(path, headers=owner(client, created), json={"email": BOB})  # all scopes
    limited = owner(client, created, ["MANAGE_DB", "ACCESS_DB"])
    refused = client.post(path, headers=limited, json={"email": BOB, "scopes": ["ACCESS_DB"]})
    assert refused.status_code == 403 and "GLOBAL_WRITE" in refused.get_json()["message"]
    pending, = [r for r in rows(client, created) if r["email"] == BOB]
    assert pending["scopes"] == list(ADMIN_SCOPES)
