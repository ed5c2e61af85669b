"""The REST data API (``/all``, ``/my``, ``/public``) in-process, on SQLite and PostgreSQL.

Scopes per endpoint, bad input, unknown tables, compound keys, equality
filters; ``/my`` shows and writes exactly what sync would allow; writes get
a revision, reach syncing devices and are announced on the bus; nothing
leaks between two databases.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dxc import tson
from dxc.auth.tokens import AccessClaims
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import schema
from tests.protocol_client import ALICE, BOB, Device, item

GLOBAL = ("ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE")
REALM = "rlmShared1"


class Db:
    """One database with Alice and Bob, their devices, and tokens on demand."""

    def __init__(self, app) -> None:
        self.app = app
        self.services = app.extensions["dxc"]
        self.created = databases.create_database(self.services)
        self.id = self.created.db_id
        import_document(self.services, self.id, {"demoUsers": {ALICE: {}, BOB: {}}})
        self.client = app.test_client()
        self.alice = self.device(ALICE)
        self.bob = self.device(BOB)
        # The devices' first syncs register the tables (items, realms, members, roles).
        self.alice.sync(
            [self.alice.op("items", "insert", ["itmA1"], "a1", values=[item("itmA1", title="a")])]
        )
        self.bob.sync(
            [
                self.bob.op(
                    "items", "insert", ["itmB1"], "b1", values=[item("itmB1", BOB, title="b")]
                )
            ]
        )

    def token(self, sub: str, *scopes: str) -> dict[str, str]:
        claims = AccessClaims(sub, frozenset(scopes), "demo", sub if "@" in sub else None)
        return {"Authorization": f"Bearer {self.services.signer.issue(self.id, claims).token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.token(self.created.client_id, *GLOBAL)

    def device(self, user: str) -> Device:
        dev = Device(self.client, self.created.url, f"{user}-device")
        dev.token = self.token(user, "ACCESS_DB")["Authorization"].split(" ", 1)[1]
        return dev

    def get(self, path: str, headers=None, status: int = 200):
        response = self.client.get(f"/{self.id}{path}", headers=headers or {})
        assert response.status_code == status, response.get_data(as_text=True)
        return tson.loads(response.get_data()) if response.data else None

    def post(self, path: str, body, headers, status: int = 200):
        data = body if isinstance(body, bytes) else tson.dumps(body).encode()
        response = self.client.post(
            f"/{self.id}{path}", data=data, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def delete(self, path: str, headers, status: int = 204):
        response = self.client.delete(f"/{self.id}{path}", headers=headers)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json(silent=True)

    def stored_count(self) -> int:
        objects = schema.objects
        with self.services.router.shard_for(self.id).transaction(read_only=True) as connection:
            return len(connection.execute(objects.select().where(objects.c.db_id == self.id)).all())

    def revision(self) -> int:
        from dxc.storage.objects import ObjectStore

        with self.services.router.shard_for(self.id).transaction(read_only=True) as connection:
            return ObjectStore(connection, self.id).current_revision()


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def ids(objects: list[dict]) -> list[str]:
    return sorted(o["id"] for o in objects)


def test_scopes_per_endpoint(db):
    reader = db.token(db.created.client_id, "ACCESS_DB", "GLOBAL_READ")
    user = db.token(ALICE, "ACCESS_DB")
    body = {"realmId": ALICE, "title": "x"}
    for path in ("/all/items", "/all/items/itmA1", "/my/items"):
        assert db.get(path, status=401)["error"] == "unauthorized"
    db.post("/all/items", body, {}, status=401)
    db.post("/public/items", body, {}, status=401)
    db.delete("/all/items/itmA1", {}, status=401)

    refused = db.get("/all/items", user, status=403)
    assert "Not authorized to read all data" in refused["message"]
    assert "GLOBAL_READ" in refused["message"]
    for path in ("/all/items", "/public/items"):
        refused = db.post(path, body, reader, status=403)
        assert refused["message"].startswith("Not authorized to mutate any data")
        assert "GLOBAL_WRITE" in refused["message"]
        db.post(path, body, user, status=403)
    db.delete("/all/items/itmA1", reader, status=403)
    db.delete("/public/items/itmA1", user, status=403)
    # A token without ACCESS_DB (e.g. only GLOBAL_READ) cannot use /my.
    db.get("/my/items", db.token(ALICE, "GLOBAL_READ"), status=403)
    db.get("/my/items", {"Authorization": "Bearer not-a-token"}, status=401)

    assert ids(db.get("/all/items", reader)) == ["itmA1", "itmB1"]
    assert db.get("/all/items/itmA1", reader)["title"] == "a"
    assert db.stored_count() == 2, "no refused request stored anything"


def test_all_create_read_filter_delete(db, monkeypatch):
    published = []
    original = db.services.bus.publish
    monkeypatch.setattr(
        db.services.bus, "publish", lambda change: (published.append(change), original(change))
    )
    rev = db.revision()
    created = db.post(
        "/all/items",
        [
            {"realmId": ALICE, "title": "milk", "n": 42, "done": False, "tags": ["x"]},
            {"realmId": BOB, "title": "bread", "n": 1.5, "done": True},
        ],
        db.admin,
    )
    assert isinstance(created, list) and len(created) == 2
    milk, bread = created
    assert milk["id"].startswith("itm") and milk["id"].endswith(ALICE[-3:])
    assert len(milk["id"]) == len("itm") + 24 + 3, "18 bytes in b64lex, as the client makes"
    assert bread["id"].endswith(BOB[-3:])
    assert milk["id"] < bread["id"], "generated keys sort by creation, like the client's"
    assert (milk["owner"], bread["owner"]) == (ALICE, BOB), "a private realm's user owns it"
    assert db.revision() == rev + 1
    assert published and published[-1].realms == frozenset({ALICE, BOB})

    single = db.post("/all/items", {"id": "itmX1", "realmId": BOB, "title": "given"}, db.admin)
    assert single == {"id": "itmX1", "realmId": BOB, "title": "given", "owner": BOB}

    everything = db.get("/all/items", db.admin)
    assert ids(everything) == sorted(["itmA1", "itmB1", "itmX1", milk["id"], bread["id"]])
    assert db.get(f"/all/items/{quote(milk['id'], safe='')}", db.admin) == milk
    # Equality filters: values arrive as text and compare with the property as text.
    assert ids(db.get("/all/items?title=milk", db.admin)) == [milk["id"]]
    assert ids(db.get("/all/items?n=42", db.admin)) == [milk["id"]]
    assert ids(db.get("/all/items?n=1.5&done=true", db.admin)) == [bread["id"]]
    assert ids(db.get("/all/items?done=false", db.admin)) == [milk["id"]]
    assert ids(db.get('/all/items?tags=["x"]', db.admin)) == [milk["id"]]
    assert db.get("/all/items?n=42&title=bread", db.admin) == []
    assert db.get("/all/items?nothing=1", db.admin) == []
    assert ids(db.get(f"/all/items?realmId={BOB}", db.admin)) == sorted(
        ["itmB1", "itmX1", bread["id"]]
    )
    assert ids(db.get(f"/all/items?realmId={BOB}&title=given", db.admin)) == ["itmX1"]

    # Replacing keeps what the client would keep; a device pulls the REST writes.
    db.post("/all/items", {"id": "itmA1", "realmId": ALICE, "title": "renamed"}, db.admin)
    answer = db.alice.sync()
    pulled = {k for c in answer["changes"] for m in c["muts"] for k in m["keys"]}
    assert pulled == {"itmA1", milk["id"]}, "Alice's device gets her realm's REST writes only"
    assert db.alice.state["items"]["itmA1"] == {
        "id": "itmA1", "realmId": ALICE, "title": "renamed", "owner": ALICE,
    }

    db.delete(f"/all/items/{quote(milk['id'], safe='')}", db.admin)
    db.get(f"/all/items/{quote(milk['id'], safe='')}", db.admin, status=404)
    db.delete(f"/all/items/{quote(milk['id'], safe='')}", db.admin, status=404)
    assert milk["id"] not in ids(db.get("/all/items", db.admin))
    db.alice.sync()
    assert milk["id"] not in db.alice.state["items"], "the delete reaches the device"


def test_bad_input_changes_nothing(db):
    before, rev = db.stored_count(), db.revision()
    assert db.get("/all/nothing", db.admin) == []
    db.get("/all/nothing/x", db.admin, status=404)
    db.get("/all/items/itmNope", db.admin, status=404)
    refused = db.post("/all/nothing", {"realmId": ALICE, "id": "x"}, db.admin, status=404)
    assert refused["message"] == f"Table 'nothing' was not found in database '{db.id}'"
    db.post("/my/nothing", {"id": "x"}, db.token(ALICE, "ACCESS_DB"), status=404)
    assert "realmId" in db.post("/all/items", {"title": "x"}, db.admin, status=400)["message"]
    db.post("/all/items", [{"realmId": ALICE}, {"title": "no realm"}], db.admin, status=400)
    db.post("/all/items", b"{not json", db.admin, status=400)
    db.post("/all/items", b"", db.admin, status=400)
    db.post("/all/items", 42, db.admin, status=400)
    db.post("/all/items", [1, 2], db.admin, status=400)
    assert db.post("/all/items", [], db.admin) == []
    db.post("/all/items", {"id": 42, "realmId": ALICE}, db.admin, status=400)
    db.post("/all/items", {"id": "", "realmId": ALICE}, db.admin, status=400)
    db.post("/all/items", {"id": [{"a": 1}], "realmId": ALICE}, db.admin, status=400)
    # The table's id prefix and private ids are checked as in sync (the whole request fails).
    wrong = db.post(
        "/all/items",
        [{"realmId": ALICE, "title": "ok"}, {"id": "zzz1", "realmId": ALICE}],
        db.admin,
        status=400,
    )
    assert "prefix" in wrong["message"]
    db.post("/all/items", {"id": "#itmP:" + ALICE, "realmId": ALICE}, db.admin, status=403)
    db.post("/all/roles", {"realmId": "rlm-public"}, db.admin, status=400)
    db.post("/all/members", {"realmId": "rlmNoSuch", "email": "x@y.z"}, db.admin, status=400)
    db.get('/all/items/["a",{"b":1}]', db.admin, status=400)
    assert (db.stored_count(), db.revision()) == (before, rev), "nothing was stored"


def test_compound_keys_and_public_roles(db):
    role = {"realmId": "rlm-public", "name": "reader", "permissions": {"add": ["items"]}}
    stored = db.post("/all/roles", [role], db.admin)
    assert stored[0]["name"] == "reader"
    for spelled in ('["rlm-public","reader"]', '["rlm-public", "reader"]'):
        assert db.get(f"/all/roles/{quote(spelled)}", db.admin)["permissions"] == {
            "add": ["items"]
        }
        assert db.get(f"/public/roles/{quote(spelled)}")["name"] == "reader"
    assert [r["name"] for r in db.get("/public/roles")] == ["reader"]
    db.bob.sync()
    assert db.bob.state["roles"]['["rlm-public","reader"]']["name"] == "reader"
    db.delete("/public/roles/" + quote('["rlm-public", "reader"]'), db.admin)
    assert db.get("/public/roles") == []


def test_writes_take_the_key_from_the_tables_key_path(db):
    import_document(db.services, db.id, {"schema": {"books": "@ref, title", "pairs": "[a+b]"}})
    made = db.post("/all/books", {"realmId": ALICE, "title": "generated"}, db.admin)
    assert made["ref"].startswith("bks") and "id" not in made
    given = db.post("/all/books", [{"realmId": ALICE, "ref": "bksGiven", "title": "given"}],
                    db.admin)
    assert given[0]["ref"] == "bksGiven" and "id" not in given[0]
    assert db.get(f"/all/books/{made['ref']}", db.admin)["title"] == "generated"
    assert db.get("/all/books/bksGiven", db.admin)["title"] == "given"
    replaced = db.post("/all/books", {"realmId": ALICE, "ref": "bksGiven", "title": "again"},
                       db.admin)
    assert replaced["title"] == "again"
    assert sorted(b["ref"] for b in db.get("/all/books", db.admin)) == sorted(
        [made["ref"], "bksGiven"])

    pair = db.post("/all/pairs", {"realmId": ALICE, "a": "x", "b": 1, "c": 2}, db.admin)
    assert pair == {"realmId": ALICE, "a": "x", "b": 1, "c": 2, "owner": ALICE}
    assert db.get("/all/pairs/" + quote('["x", 1]'), db.admin)["c"] == 2
    before = db.stored_count()
    answer = db.post("/all/pairs", {"realmId": ALICE, "a": "y", "c": 3}, db.admin, status=400)
    assert "a, b" in answer["message"]
    db.post("/all/pairs", {"realmId": ALICE, "a": "y", "b": {"no": 1}}, db.admin, status=400)
    db.post("/all/books", {"realmId": ALICE, "ref": 7}, db.admin, status=400)
    assert db.stored_count() == before


def test_public_needs_no_token_to_read_and_stays_public(db):
    posted = db.post("/public/items", {"title": "news", "realmId": ALICE}, db.admin)
    assert posted["realmId"] == "rlm-public", "the realm is forced to rlm-public"
    assert [o["title"] for o in db.get("/public/items")] == ["news"]
    assert db.get(f"/public/items/{quote(posted['id'], safe='')}")["title"] == "news"
    db.get("/public/items/itmA1", status=404)
    db.delete("/public/items/itmA1", db.admin, status=404)
    assert db.get("/all/items/itmA1", db.admin)["title"] == "a", "not in public: untouched"
    anonymous = Device(db.client, db.created.url, "anonymous")
    anonymous.sync()
    assert list(anonymous.state["items"]) == [posted["id"]]
    assert sorted(o["title"] for o in db.get("/my/items", db.token(BOB, "ACCESS_DB"))) == [
        "b",
        "news",
    ]
    db.delete(f"/public/items/{quote(posted['id'], safe='')}", db.admin)
    assert db.get("/public/items") == []


def test_my_shows_and_writes_what_sync_allows(db):
    alice, bob = db.token(ALICE, "ACCESS_DB"), db.token(BOB, "ACCESS_DB")
    # Alice shares a realm with Bob, who may only mark items done.
    db.post("/my/realms", {"realmId": REALM, "name": "shared"}, alice)
    db.post(
        "/my/members",
        {"realmId": REALM, "email": BOB, "permissions": {"update": {"items": ["done"]}}},
        alice,
    )
    shared = db.post("/my/items", {"realmId": REALM, "title": "shared"}, alice)
    assert shared["owner"] == ALICE
    invited = db.get("/my/members", bob)
    assert [m["email"] for m in invited] == [BOB], "an invitee sees only their own member row"
    assert ids(db.get("/my/items", bob)) == ["itmB1"], "not before accepting"
    member = invited[0]
    db.bob.sync()
    db.bob.sync(
        [
            db.bob.op(
                "members", "update", [member["id"]], "acc",
                changeSpecs=[{"accepted": tson.Date("2026-01-01T00:00:00.000Z")}],
            )
        ]
    )
    assert ids(db.get("/my/items", bob)) == sorted(["itmB1", shared["id"]])
    assert ids(db.get("/my/items", alice)) == sorted(["itmA1", shared["id"]])
    db.get("/my/items/itmA1", bob, status=404)
    assert db.get(f"/my/items?realmId={ALICE}", bob) == []
    assert ids(db.get(f"/my/items?realmId={REALM}&title=shared", bob)) == [shared["id"]]

    before, rev = db.stored_count(), db.revision()
    # Bob may not add to the shared realm, write into Alice's realm, rename, or delete.
    refused = db.post("/my/items", {"realmId": REALM, "title": "nope"}, bob, status=403)
    assert "add" in refused["message"]
    db.post("/my/items", [{"title": "fine"}, {"realmId": ALICE, "title": "x"}], bob, status=403)
    db.post("/my/items", {"id": "itmA1", "realmId": ALICE, "title": "stolen"}, bob, status=403)
    db.post("/my/items", {**shared, "title": "renamed"}, bob, status=403)
    db.post("/my/items", {"title": "public", "realmId": "rlm-public"}, bob, status=403)
    db.delete(f"/my/items/{quote(shared['id'], safe='')}", bob, status=403)
    db.delete("/my/items/itmA1", bob, status=404)
    # A token with global scopes is held to the rules on /my all the same.
    db.post("/my/items", {"realmId": REALM, "title": "nope"}, db.token(BOB, *GLOBAL), status=403)
    assert (db.stored_count(), db.revision()) == (before, rev), "refused writes store nothing"

    done = db.post("/my/items", {**shared, "done": True}, bob)
    assert done["done"] is True and done["owner"] == ALICE
    mine = db.post("/my/items", {"title": "mine"}, bob)
    assert (mine["realmId"], mine["owner"]) == (BOB, BOB), "the private realm by default"
    db.delete(f"/my/items/{quote(mine['id'], safe='')}", bob)
    db.delete(f"/my/items/{quote(shared['id'], safe='')}", alice)
    assert ids(db.get("/my/items", bob)) == ["itmB1"]


def test_databases_are_isolated(db, app):
    other = Db(app)
    # Tokens are per database: one of database A is refused by database B.
    for headers in (other.admin, other.token(ALICE, "ACCESS_DB")):
        for path in ("/all/items", "/my/items", "/all/items/itmA1"):
            db.get(path, headers, status=401)
        db.post("/all/items", {"realmId": ALICE, "title": "x"}, headers, status=401)
        db.delete("/all/items/itmA1", headers, status=401)
    other.post("/all/items", {"id": "itmOther", "realmId": ALICE, "title": "b"}, other.admin)
    assert ids(db.get("/all/items", db.admin)) == ["itmA1", "itmB1"]
    assert ids(other.get("/all/items", other.admin)) == ["itmA1", "itmB1", "itmOther"]
    assert db.get("/all/items/itmA1", db.admin)["title"] == "a"
    response = db.client.get("/znosuchdb/all/items", headers=db.admin)
    assert response.status_code in (401, 404)
