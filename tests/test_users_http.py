"""``/<db>/users`` in-process, on SQLite and PostgreSQL: listing, paging, creating,
updating, validation, and erasing a user with their private data."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dxc import tson
from dxc.rest import user_admin
from dxc.storage import schema
from dxc.storage import users as user_store
from tests.protocol_client import ALICE, BOB, refresh_body
from tests.test_rest_http import GLOBAL, Db

CAROL = "carol@demo.local"


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def users_path(query: str = "") -> str:
    return "/users" + (f"?{query}" if query else "")


def test_scopes(db):
    reader = db.token(db.created.client_id, "ACCESS_DB", "GLOBAL_READ")
    db.get(users_path(), status=401)
    db.get(users_path(), db.token(ALICE, "ACCESS_DB"), status=403)
    db.get(f"/users/{ALICE}", db.token(ALICE, "ACCESS_DB"), status=403)
    assert len(db.get(users_path(), reader)["data"]) == 2
    new = {"userId": CAROL, "type": "prod"}
    db.post("/users", [new], {}, status=401)
    db.post("/users", [new], reader, status=403)
    db.delete(f"/users/{ALICE}", {}, status=401)
    db.delete(f"/users/{ALICE}", db.token(BOB, "ACCESS_DB"), status=403)
    db.delete(f"/users/{ALICE}", reader, status=403)
    db.delete(f"/users/{ALICE}", db.token(ALICE, "GLOBAL_READ"), status=403)
    other = Db(db.app)
    db.get(users_path(), other.admin, status=401)
    db.delete(f"/users/{ALICE}", other.token(ALICE, "ACCESS_DB"), status=401)
    assert len(db.get(users_path(), db.admin)["data"]) == 2, "nothing changed"


def test_create_update_and_validate(db):
    created = db.post(
        "/users",
        [
            {"userId": CAROL, "type": "prod", "data": {"displayName": "Carol", "email": CAROL}},
            {"userId": "dave", "type": "eval", "deactivated": False, "validUntil": None},
        ],
        db.admin,
    )
    assert [u["userId"] for u in created] == [CAROL, "dave"]
    carol = created[0]
    assert carol["type"] == "prod" and carol["data"] == {"displayName": "Carol", "email": CAROL}
    assert carol["created"].endswith("Z") and carol["updated"] == carol["created"]
    assert "lastLogin" not in carol
    updated = db.post("/users", {"userId": CAROL, "data": {"displayName": "C."}}, db.admin)
    assert updated["data"] == {"displayName": "C.", "email": CAROL}
    assert db.post("/users", {"userId": "dave", "type": "demo"}, db.admin)["type"] == "demo"
    assert db.get(f"/users/{quote(CAROL)}", db.admin) == updated
    db.get("/users/nobody", db.admin, status=404)

    refusals = [
        ({"userId": "erin", "type": "prod", "colour": "red"}, "unknown properties: colour"),
        ({"userId": "erin"}, "type is required"),
        ({"userId": "erin", "type": "gold"}, "type must be one of"),
        ({"userId": "", "type": "prod"}, "userId"),
        ({"userId": "erin", "type": "prod", "validUntil": "soon"}, "validUntil"),
        ({"userId": "erin", "type": "prod", "validUntil": True}, "validUntil"),
        ({"userId": "erin", "type": "eval", "evalDaysLeft": 31}, "evalDaysLeft"),
        ({"userId": "erin", "type": "eval", "evalDaysLeft": "3"}, "evalDaysLeft"),
        ({"userId": "erin", "type": "eval", "evalDaysLeft": True}, "evalDaysLeft"),
        ({"userId": "erin", "type": "prod", "deactivated": "yes"}, "deactivated"),
        ({"userId": "erin", "type": "prod", "data": {"notes": "x" * 70000}}, "larger than"),
        ({"userId": "erin", "type": "prod", "data": {"email": "nope"}}, "e-mail"),
        ({"userId": "erin", "type": "prod", "data": []}, "data must be an object"),
    ]
    for body, message in refusals:
        # A valid user first: the request is all or nothing.
        answer = db.post("/users", [{"userId": "fred", "type": "prod"}, body], db.admin, 400)
        assert message in answer["message"], answer
    db.post("/users", [{"userId": "x", "type": "prod"}] * 2, db.admin, status=400)
    db.post("/users", b"[", db.admin, status=400)
    db.post("/users", "text", db.admin, status=400)
    listed = [u["userId"] for u in db.get(users_path(), db.admin)["data"]]
    assert listed == sorted([ALICE, BOB, CAROL, "dave"]), "no refused request stored a user"


def test_list_search_sort_and_page(db):
    db.post(
        "/users",
        [
            {"userId": f"user{n:02d}", "type": "eval" if n % 2 else "prod",
             "data": {"displayName": f"Name {25 - n:02d}"}}
            for n in range(25)
        ],
        db.admin,
    )
    everyone = db.get(users_path(), db.admin)
    assert everyone["hasMore"] is False and "pagingKey" not in everyone
    assert [u["userId"] for u in everyone["data"]] == sorted(
        [ALICE, BOB, *(f"user{n:02d}" for n in range(25))]
    )
    assert {u["userId"] for u in db.get(users_path("search=ALICE"), db.admin)["data"]} == {ALICE}
    assert len(db.get(users_path("search=name 1"), db.admin)["data"]) == 10
    assert len(db.get(users_path("type=eval"), db.admin)["data"]) == 12
    assert len(db.get(users_path("type=demo"), db.admin)["data"]) == 2
    assert len(db.get(users_path("active=true"), db.admin)["data"]) == 27
    assert db.get(users_path("active=false"), db.admin)["data"] == []

    for sort, desc in (("userId", "false"), ("displayName", "true"), ("created", "false"),
                       ("lastLogin", "true"), ("type", "false"), ("validUntil", "true")):
        expected = db.get(users_path(f"sort={sort}&desc={desc}"), db.admin)["data"]
        pages, key = [], None
        for _ in range(len(expected)):  # never loops forever, even if paging is broken
            query = f"sort={sort}&desc={desc}&limit=4" + (f"&pagingKey={key}" if key else "")
            page = db.get(users_path(query), db.admin)
            pages.extend(page["data"])
            if not page["hasMore"]:
                break
            key = page["pagingKey"]
        assert pages == expected, f"paging by {sort} gives the full order once"
    names = [u["data"].get("displayName", "") for u in
             db.get(users_path("sort=displayName&desc=true"), db.admin)["data"]]
    assert names == sorted(names, reverse=True)

    for query in ("limit=0", "limit=1001", "limit=x", "sort=colour", "desc=maybe",
                  "type=gold", "pagingKey=garbage", "active=1"):
        db.get(users_path(query), db.admin, status=400)
    key = db.get(users_path("limit=1"), db.admin)["pagingKey"]
    db.get(users_path(f"limit=1&sort=created&pagingKey={key}"), db.admin, status=400)


def _public_key() -> str:
    return _public_key_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _public_key_of(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _refresh_tokens(db: Db, user: str) -> int:
    table = schema.refresh_tokens
    with db.services.control.connect() as connection:
        rows = connection.execute(
            table.select().where(table.c.db_id == db.id, table.c.user_id == user)
        )
        return len(rows.all())


def test_delete_my_account_erases_private_data(db, monkeypatch):
    alice, bob = db.token(ALICE, "ACCESS_DB"), db.token(BOB, "ACCESS_DB")
    published = []
    original = db.services.bus.publish
    monkeypatch.setattr(
        db.services.bus, "publish", lambda change: (published.append(change), original(change))
    )
    # Alice: a private item (itmA1), a realm shared with Bob, a realm of her own,
    # and a membership in Bob's realm. A refresh token from a login with a key.
    db.post("/my/realms", [{"realmId": "rlmShared", "name": "shared"},
                           {"realmId": "rlmSolo", "name": "solo"}], alice)
    db.post("/my/items", [{"id": "itmS", "realmId": "rlmShared", "title": "s"},
                          {"id": "itmSolo", "realmId": "rlmSolo", "title": "solo"}], alice)
    db.post("/all/members", {"realmId": "rlmShared", "userId": BOB, "accepted": True,
                             "permissions": {"add": ["items"]}}, db.admin)
    db.post("/my/items", {"id": "itmFromBob", "realmId": "rlmShared", "title": "b"}, bob)
    db.post("/my/realms", {"realmId": "rlmBobs", "name": "bob's"}, bob)
    db.post("/all/members", {"realmId": "rlmBobs", "userId": ALICE, "accepted": True}, db.admin)
    db.alice.login(ALICE, _public_key())
    assert _refresh_tokens(db, ALICE) == 1
    db.alice.sync()
    assert set(db.alice.state["items"]) == {"itmA1", "itmS", "itmSolo", "itmFromBob"}

    db.delete(f"/users/{ALICE}", bob, status=403)
    summary = db.delete(f"/users/{ALICE}", alice, status=200)
    assert summary["deletedRealms"] == ["rlmSolo"] and summary["releasedRealms"] == ["rlmShared"]
    assert published[-1].realms >= {ALICE, "rlmSolo", "rlmShared", "rlmBobs"}

    everything = {o["id"] for o in db.get("/all/items", db.admin)}
    assert everything == {"itmB1", "itmS", "itmFromBob"}, "private and solo-realm data is gone"
    assert db.get("/all/realms/rlmSolo", db.admin, status=404)
    realm = db.get("/all/realms/rlmShared", db.admin)
    assert "owner" not in realm, "a shared realm stays, without its deleted owner"
    members = db.get("/all/members?realmId=rlmShared", db.admin)
    assert [(m["userId"], m["permissions"]) for m in members] == [(BOB, {"manage": "*"})]
    assert [m["userId"] for m in db.get("/all/members?realmId=rlmBobs", db.admin)] == [BOB]
    db.get(f"/users/{ALICE}", db.admin, status=404)
    assert _refresh_tokens(db, ALICE) == 0

    # Alice's device drops her data on its next pull (a client purges the objects of
    # realms that leave its realm set); Bob now manages the realm.
    answer = db.alice.sync()
    assert "itmA1" not in db.alice.state["items"]
    assert answer["realms"] == sorted([ALICE, "rlm-public"]), "the other realms leave the device"
    db.bob.sync()
    assert {"itmS", "itmFromBob", "itmB1"} <= set(db.bob.state["items"])
    db.post("/my/items", {"id": "itmS", "realmId": "rlmShared", "title": "mine now"}, bob)
    db.delete(f"/users/{ALICE}", alice, status=404)

    # An administrator may delete anyone.
    db.delete(f"/users/{BOB}", {**db.admin}, status=200)
    assert [u["userId"] for u in db.get(users_path(), db.admin)["data"]] == []


def test_a_user_token_with_global_scopes_may_delete_others(db):
    db.delete(f"/users/{BOB}", db.token(ALICE, *GLOBAL), status=200)
    db.get(f"/users/{BOB}", db.admin, status=404)


def test_every_property_round_trips_and_updated_follows_changes(db, monkeypatch):
    clock = [datetime(2031, 5, 1, 12, 0, tzinfo=UTC)]
    monkeypatch.setattr(user_store, "utcnow", lambda: clock[0])
    monkeypatch.setattr(user_admin, "utcnow", lambda: clock[0])
    created = db.post("/users", {
        "userId": CAROL, "type": "eval", "validUntil": "2032-01-02T03:04:05.678Z",
        "evalDaysLeft": 12, "deactivated": True,
        "data": {"displayName": "Carol", "email": CAROL, "plan": "gold", "tags": ["a", 1],
                 "since": tson.Date("2030-01-01T00:00:00.000Z")},
    }, db.admin)
    assert created == {
        "userId": CAROL, "type": "eval", "created": "2031-05-01T12:00:00.000Z",
        "updated": "2031-05-01T12:00:00.000Z", "validUntil": "2032-01-02T03:04:05.678Z",
        "evalDaysLeft": 12, "maxAllowedEvalDaysLeft": 30,
        "deactivated": "2031-05-01T12:00:00.000Z",
        "data": {"displayName": "Carol", "email": CAROL, "plan": "gold", "tags": ["a", 1],
                 "since": {"$t": "Date", "v": "2030-01-01T00:00:00.000Z"}},
    }
    # db.get reads TSON: the date comes back as a date (decode revives in place: a copy)
    decoded = tson.decode(copy.deepcopy(created))
    assert decoded["data"]["since"] == tson.Date("2030-01-01T00:00:00.000Z")
    assert db.get(f"/users/{quote(CAROL)}", db.admin) == decoded
    assert db.get(users_path("search=carol"), db.admin)["data"] == [decoded]

    # Deactivating again keeps the first time; custom data merges, null removes a key.
    clock[0] += timedelta(days=1)
    again = db.post("/users", {"userId": CAROL, "deactivated": True,
                               "data": {"plan": None, "seats": 3}}, db.admin)
    assert again["deactivated"] == created["deactivated"]
    assert again["updated"] == "2031-05-02T12:00:00.000Z"
    expected = {**created["data"], "seats": 3}
    del expected["plan"]
    assert again["data"] == expected

    clock[0] += timedelta(days=1)
    cleared = db.post("/users", {"userId": CAROL, "type": "prod", "validUntil": None,
                                 "evalDaysLeft": None, "deactivated": False}, db.admin)
    assert cleared["updated"] == "2031-05-03T12:00:00.000Z"
    assert cleared["created"] == created["created"] and cleared["type"] == "prod"
    for gone in ("validUntil", "evalDaysLeft", "deactivated"):
        assert gone not in cleared
    epoch = db.post("/users", {"userId": CAROL, "validUntil": 1900000000000,
                               "deactivated": "2031-01-01T00:00:00+02:00"}, db.admin)
    assert epoch["validUntil"] == "2030-03-17T17:46:40.000Z"
    assert epoch["deactivated"] == "2030-12-31T22:00:00.000Z"

    # A login is a change too.
    clock[0] += timedelta(days=1)
    db.post("/users", {"userId": CAROL, "type": "demo", "deactivated": False}, db.admin)
    answer = db.client.post(f"/{db.id}/token", json={"grant_type": "demo", "demo_user": CAROL})
    assert answer.get_json()["type"] == "tokens"
    logged_in = db.get(f"/users/{quote(CAROL)}", db.admin)
    assert logged_in["lastLogin"] == logged_in["updated"] == "2031-05-04T12:00:00.000Z"


def test_a_deactivated_user_gets_no_tokens(db):
    client = db.client
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    demo = {"grant_type": "demo", "demo_user": ALICE, "public_key": _public_key_of(key)}
    first = client.post(f"/{db.id}/token", json=demo).get_json()
    assert first["type"] == "tokens"
    impersonate = {
        "grant_type": "client_credentials", "client_id": db.created.client_id,
        "client_secret": db.created.client_secret, "scopes": ["ACCESS_DB"],
        "claims": {"sub": ALICE},
    }
    assert client.post(f"/{db.id}/token", json=impersonate).get_json()["type"] == "tokens"
    before = db.get(f"/users/{quote(ALICE)}", db.admin)

    db.post("/users", {"userId": ALICE, "deactivated": True}, db.admin)
    refresh = refresh_body(key, first["refreshToken"])
    for body in (demo, impersonate, refresh):
        answer = client.post(f"/{db.id}/token", json=body)
        assert answer.status_code == 200
        refused = answer.get_json()
        assert refused["type"] == "error" and "accessToken" not in refused
        assert refused["title"] == "Account deactivated" and ALICE in refused["message"]
    after = db.get(f"/users/{quote(ALICE)}", db.admin)
    assert after["lastLogin"] == before["lastLogin"], "a refused login records nothing"
    assert db.get(users_path("active=false"), db.admin)["data"] == [after]

    db.post("/users", {"userId": ALICE, "deactivated": False}, db.admin)
    for body in (demo, impersonate, refresh_body(key, first["refreshToken"])):
        assert client.post(f"/{db.id}/token", json=body).get_json()["type"] == "tokens"


def test_active_filter_and_sorting_by_licence_fields(db):
    now = datetime.now(UTC)
    db.post("/users", [
        {"userId": "u-deactivated", "type": "prod", "deactivated": True},
        {"userId": "u-expired", "type": "eval", "evalDaysLeft": 0,
         "validUntil": (now - timedelta(days=1)).isoformat()},
        {"userId": "u-valid", "type": "eval", "evalDaysLeft": 20,
         "validUntil": (now + timedelta(days=30)).isoformat()},
        {"userId": "u-soon", "type": "eval", "evalDaysLeft": 5,
         "validUntil": (now + timedelta(days=2)).isoformat()},
    ], db.admin)
    active = [u["userId"] for u in db.get(users_path("active=true"), db.admin)["data"]]
    inactive = [u["userId"] for u in db.get(users_path("active=false"), db.admin)["data"]]
    assert active == sorted([ALICE, BOB, "u-soon", "u-valid"])
    assert inactive == ["u-deactivated", "u-expired"]

    by_valid = [u["userId"] for u in db.get(users_path("sort=validUntil"), db.admin)["data"]]
    assert by_valid == ["u-expired", "u-soon", "u-valid", ALICE, BOB, "u-deactivated"], (
        "no validUntil (never expires) sorts last")
    by_days = db.get(users_path("sort=evalDaysLeft&desc=true"), db.admin)["data"]
    assert [u["userId"] for u in by_days[:3]] == ["u-valid", "u-soon", "u-expired"]
    for sort in ("validUntil", "evalDaysLeft"):
        expected = db.get(users_path(f"sort={sort}"), db.admin)["data"]
        pages, key = [], None
        for _ in range(len(expected)):
            page = db.get(users_path(f"sort={sort}&limit=2" + (f"&pagingKey={key}" if key else "")),
                          db.admin)
            pages.extend(page["data"])
            if not page["hasMore"]:
                break
            key = page["pagingKey"]
        assert pages == expected, f"paging by {sort} gives the full order once"
