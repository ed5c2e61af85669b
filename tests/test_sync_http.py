"""``/sync`` and ``/token`` over HTTP, in-process, on SQLite and PostgreSQL.

These forge requests the way the real client builds them (sync.md §3) to
pin down what the real-client tests cannot easily provoke: exact status
codes for bad input, resends, rejections with rollback, rebasing.
"""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dxc import tson
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import tables as table_store
from dxc.tson import UNDEFINED, PropModification
from tests.protocol_client import ALICE, BOB, SCHEMA, Device, item, refresh_body


@pytest.fixture
def db_url(app) -> str:
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}, BOB: {}}})
    return created.url


@pytest.fixture
def device(app, db_url):
    def make(user: str | None = ALICE, identity: str = "device-1") -> Device:
        dev = Device(app.test_client(), db_url, identity)
        if user:
            dev.login(user)
        return dev

    return make


def test_first_sync_lists_realms_and_echoes_schema(device):
    alice = device()
    answer = alice.sync()
    assert answer["realms"] == sorted([ALICE, "rlm-public"])
    assert answer["inviteRealms"] == []
    assert answer["schema"]["items"]["idPrefix"] == "itm"
    assert answer["schema"]["items"]["markedForSync"] is True
    assert "$jobs" in answer["schema"]
    assert answer["dbId"] == alice.db_id


def test_an_insert_reaches_the_other_device(device):
    alice, phone = device(), device(identity="device-2")
    alice.sync()
    phone.sync()
    value = item("itm1", title="hello", when=tson.Date("2024-01-02T03:04:05.006Z"))
    answer = alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[value])])
    assert answer["rejections"] == []
    assert alice.state["items"]["itm1"] == value
    phone.sync()
    assert phone.state["items"]["itm1"] == value


def _answered(answer: dict, table: str) -> dict[str, str]:
    """The keys of ``table`` an answer sends, with the operation it sends for each."""
    return {
        key: mut["type"]
        for entry in answer["changes"] if entry["table"] == table
        for mut in entry["muts"] for key in mut["keys"]
    }


def test_a_row_stored_as_sent_is_not_sent_back(device):
    """Its device holds it already (sync.md §4.12: an echo with an empty diff); a row
    the server completed or that a refused transaction named goes back."""
    alice, phone = device(), device(identity="alice-phone")
    alice.sync()
    as_sent = alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1", title="a")])
    completed = alice.op("items", "upsert", ["itm2"], "tx2", values=[{"id": "itm2"}])
    answer = alice.sync([as_sent, completed])
    assert answer["rejections"] == [] and _answered(answer, "items") == {"itm2": "upsert"}
    assert alice.state["items"]["itm2"] == {"id": "itm2", "realmId": ALICE, "owner": ALICE}

    put = alice.op("items", "upsert", ["itm1"], "tx3", values=[item("itm1", title="b")])
    refused = alice.op("items", "upsert", ["itm1"], "tx4", values=[item("itm1", BOB)])
    answer = alice.sync([put, refused])
    assert [r["txid"] for r in answer["rejections"]] == ["tx4"]
    assert _answered(answer, "items") == {"itm1": "upsert"}  # back from Bob's realm
    assert alice.state["items"]["itm1"] == item("itm1", title="b")
    phone.sync()
    assert phone.state["items"] == alice.state["items"]


def test_resent_transaction_is_applied_once(device):
    alice = device()
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1", n=0)])])
    before = alice.last_pull
    bump = alice.op(
        "items", "update", ["itm1"], "tx2", changeSpecs=[{"n": PropModification("add", 1)}]
    )
    alice.sync([bump])
    alice.last_pull = before  # the answer was lost: the client resends from the same state
    answer = alice.sync([bump])
    assert alice.state["items"]["itm1"]["n"] == 1
    assert answer["rejections"] == []


def test_refused_transaction_is_rolled_back_and_others_apply(device):
    alice = device()
    alice.sync()
    refused = alice.op(
        "items", "insert", ["itm2"], "bad", values=[item("itm2", realm="rlm-public")]
    )
    accepted = alice.op("items", "insert", ["itm3"], "good", values=[item("itm3")])
    answer = alice.sync([refused, accepted])
    assert [r["txid"] for r in answer["rejections"]] == ["bad"]
    assert "itm2" not in alice.state.get("items", {})
    assert "itm3" in alice.state["items"]
    deletes = [m for e in answer["changes"] for m in e["muts"] if m["type"] == "delete"]
    assert any("itm2" in m["keys"] for m in deletes)


def test_whole_transaction_is_refused_when_one_operation_is(device):
    alice = device()
    alice.sync()
    changes = [
        alice.op("items", "insert", ["itm4"], "tx", values=[item("itm4")]),
        alice.op("items", "insert", ["itm5"], "tx", values=[item("itm5", realm=BOB)]),
    ]
    answer = alice.sync(changes)
    assert [r["txid"] for r in answer["rejections"]] == ["tx"]
    assert "itm4" not in alice.state.get("items", {})


def test_a_lone_refused_transaction_leaves_nothing_behind(device):
    """It runs without a savepoint: its refusal rolls back the shard transaction,
    its first write and its applied txid included."""
    alice, phone = device(), device(identity="alice-phone")
    alice.sync()
    changes = [
        alice.op("items", "insert", ["itm4"], "tx", values=[item("itm4")]),
        alice.op("items", "insert", ["itm5"], "tx", values=[item("itm5", realm=BOB)]),
    ]
    assert [r["txid"] for r in alice.sync(changes)["rejections"]] == ["tx"]
    phone.sync()
    assert "itm4" not in phone.state.get("items", {})
    # Not recorded as applied: the same transaction, mended, is applied.
    answer = alice.sync([alice.op("items", "insert", ["itm4"], "tx", values=[item("itm4")])])
    assert answer["rejections"] == [] and "itm4" in alice.state["items"]


def test_an_insert_of_a_key_in_use_is_refused_and_harms_nothing(device):
    """An insert does not read its keys first: the write itself finds the live object,
    leaves it as it is and refuses the transaction, alone or beside others."""
    alice, bob = device(), device(BOB, identity="bob-1")
    alice.sync([alice.op("items", "insert", ["itm1"], "a1", values=[item("itm1", title="A")])])
    bob.sync()

    lone = bob.op("items", "insert", ["itm1"], "b1", values=[item("itm1", BOB, title="B")])
    answer = bob.sync([lone])
    assert [(r["txid"], r["message"]) for r in answer["rejections"]] == [
        ("b1", "items: an object with key 'itm1' already exists")
    ]
    both = bob.op("items", "insert", ["itm2", "itm1"], "b2",
                  values=[item("itm2", BOB), item("itm1", BOB, title="B")])
    other = bob.op("items", "insert", ["itm3"], "b3", values=[item("itm3", BOB)])
    answer = bob.sync([both, other])
    assert [r["txid"] for r in answer["rejections"]] == ["b2"]
    assert sorted(bob.state["items"]) == ["itm3"]  # itm2 went with b2; itm1 is not his
    twice = [
        bob.op("items", "insert", ["itm4"], "b4", values=[item("itm4", BOB)]),
        bob.op("items", "insert", ["itm4"], "b4", values=[item("itm4", BOB, title="again")]),
    ]
    assert [r["txid"] for r in bob.sync(twice)["rejections"]] == ["b4"]
    assert "itm4" not in bob.state["items"]

    alice.sync()
    assert alice.state["items"]["itm1"] == item("itm1", title="A")


def test_an_insert_replaces_a_deleted_object(device):
    alice, phone = device(), device(identity="alice-phone")
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1", title="old")])])
    alice.sync([alice.op("items", "delete", ["itm1"], "tx2")])
    answer = alice.sync(
        [alice.op("items", "insert", ["itm1"], "tx3", values=[item("itm1", title="new")])]
    )
    assert answer["rejections"] == []
    phone.sync()
    assert phone.state["items"]["itm1"] == alice.state["items"]["itm1"] == item("itm1", title="new")


def test_a_pull_of_more_than_a_batch_streams_every_row(app, db_url, device):
    """More than ``BATCH`` rows come from a server-side cursor, which needs a
    transaction: the answer's autocommit connection takes one for it."""
    db_id = db_url.rsplit("/", 1)[1]
    objects = {f"itm{n:05d}": {"n": n} for n in range(1200)}
    import_document(app.extensions["dxc"], db_id, {"data": {ALICE: {"items": objects}}})
    alice = device()
    alice.sync()
    assert set(alice.state["items"]) == set(objects)
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1")])])
    assert len(alice.state["items"]) == 1201


def test_other_users_do_not_see_private_data(device):
    alice, bob = device(), device(BOB, identity="bob-1")
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1")])])
    answer = bob.sync()
    assert "itm1" not in bob.state.get("items", {})
    assert ALICE not in answer["realms"]
    update = bob.op("items", "update", ["itm1"], "tx2", changeSpecs=[{"title": "mine"}])
    answer = bob.sync([update])
    assert [r["txid"] for r in answer["rejections"]] == ["tx2"]
    alice.sync()
    assert "title" not in alice.state["items"]["itm1"]


def test_anonymous_client_reads_public_realm_only(app, db_url, device):
    services = app.extensions["dxc"]
    db_id = db_url.rsplit("/", 1)[1]
    import_document(services, db_id, {"data": {"rlm-public": {"items": {"itmP": {"t": 1}}}}})
    alice = device()
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1")])])
    anonymous = device(user=None, identity="anon")
    answer = anonymous.sync()
    assert answer["realms"] == ["rlm-public"]
    assert set(anonymous.state["items"]) == {"itmP"}
    answer = anonymous.sync([anonymous.op("items", "insert", ["itmX"], "t", values=[item("itmX")])])
    assert answer["rejections"][0]["name"] == "PermissionDenied"


def test_where_clause_modify_runs_on_server_state(device):
    alice, phone = device(), device(identity="device-2")
    alice.sync([
        alice.op("items", "insert", ["itm1", "itm2"], "tx1",
                 values=[item("itm1", path="foo/a"), item("itm2", path="bar/b")]),
    ])
    phone.sync()
    # The phone renames everything under foo/ without having seen itm3.
    alice.sync([alice.op("items", "insert", ["itm3"], "tx2", values=[item("itm3", path="foo/c")])])
    criteria = {"index": "path", "range": {"type": 2, "lower": "foo/", "upper": "foo/\uffff",
                                           "lowerOpen": False, "upperOpen": False}}
    spec = {"path": PropModification("replacePrefix", ["foo/", "baz/"])}
    phone.sync([phone.op("items", "modify", ["itm1"], "tx3", criteria=criteria, changeSpec=spec)])
    assert phone.state["items"]["itm1"]["path"] == "baz/a"
    assert phone.state["items"]["itm3"]["path"] == "baz/c"
    assert phone.state["items"]["itm2"]["path"] == "bar/b"


def test_offline_insert_is_rebased_over_later_modify(device):
    alice, phone = device(), device(identity="device-2")
    alice.sync()
    phone.sync()
    base = phone.last_pull["serverRevision"]
    criteria = {"index": "path", "range": {"type": 2, "lower": "foo/", "upper": "foo/\uffff"}}
    spec = {"path": PropModification("replacePrefix", ["foo/", "bar/"])}
    alice.sync([alice.op("items", "modify", [], "tx1", criteria=criteria, changeSpec=spec)])
    # The phone, still at the old base revision, adds a file under foo/.
    insert = phone.op("items", "insert", ["itm9"], "tx2", values=[item("itm9", path="foo/x")])
    phone.sync([insert], base_revs=[{"tableName": "items", "clientRev": 1, "serverRev": base}])
    assert phone.state["items"]["itm9"]["path"] == "bar/x"


def test_criteria_delete_and_chunks(device):
    alice = device()
    values = [item(f"itm{i}", n=i) for i in range(5)]
    alice.sync([alice.op("items", "insert", [v["id"] for v in values], "tx1", values=values)])
    criteria = {"index": "n", "range": {"type": 2, "lower": 2, "upper": UNDEFINED,
                                        "lowerOpen": True}}
    first = alice.op("items", "delete", ["itm3"], "tx2", criteria=criteria)
    chunk = alice.op("items", "delete", ["itm4"], "tx2", criteria=criteria, isAdditionalChunk=True)
    alice.sync([first, chunk])
    assert sorted(alice.state["items"]) == ["itm0", "itm1", "itm2"]


def test_update_of_nested_key_paths_and_undefined_deletes(device):
    alice = device()
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1",
                         values=[item("itm1", a={"b": 1}, gone=True, list=[1, 2, 3])])])
    alice.sync([alice.op("items", "update", ["itm1"], "tx2",
                         changeSpecs=[{"a.c.d": 2, "gone": UNDEFINED, "list.1": UNDEFINED}])])
    stored = alice.state["items"]["itm1"]
    assert stored["a"] == {"b": 1, "c": {"d": 2}}
    assert "gone" not in stored
    assert stored["list"] == [1, 3]


def test_keys_must_carry_the_table_prefix(device):
    alice = device()
    alice.sync()
    answer = alice.sync([alice.op("items", "insert", ["zzz1"], "tx", values=[item("zzz1")])])
    assert answer["rejections"][0]["name"] == "InvalidOperation"


def test_unknown_last_pull_revision_gets_a_full_snapshot(device):
    alice = device()
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1")])])
    phone = device(identity="device-2")
    phone.last_pull = {"serverRevision": "garbage", "realms": [ALICE], "inviteRealms": []}
    phone.sync()
    assert "itm1" in phone.state["items"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 400),
        (b'{"clientIdentity": 5}', 400),
        (b'{"clientIdentity": "x", "changes": {}}', 400),
        (b'{"clientIdentity": "x", "changes": [{"table": "items", "muts": [{}]}]}', 400),
        (b'{"clientIdentity": "x", "schema": {"a": {"$t": "Uint8Array", "v": "0"}}}', 400),
        (b"\xff\xfe", 400),
    ],
)
def test_malformed_requests_get_a_json_400(device, body, status):
    alice = device()
    response = alice.post_sync([], raw=body)
    assert response.status_code == status
    assert response.get_json()["message"]


def test_bad_operation_rejects_its_transaction_only(device):
    alice = device()
    alice.sync()
    broken = {"table": "items", "muts": [{"type": "frobnicate", "keys": ["itm1"], "txid": "t1"}]}
    good = alice.op("items", "insert", ["itm2"], "t2", values=[item("itm2")])
    answer = alice.sync([broken, good])
    assert [r["txid"] for r in answer["rejections"]] == ["t1"]
    assert "itm2" in alice.state["items"]


def test_tokens_are_checked(app, db_url, device):
    alice = device(user=None)
    alice.token = "not-a-jwt"
    assert alice.post_sync([]).status_code == 401
    # A token of another database is refused.
    services = app.extensions["dxc"]
    other = databases.create_database(services)
    import_document(services, other.db_id, {"demoUsers": {ALICE: {}}})
    stranger = Device(app.test_client(), other.url, "x")
    stranger.login(ALICE)
    alice.token = stranger.token
    response = alice.post_sync([])
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_unknown_database_is_404(app):
    client = app.test_client()
    response = client.post("/znotthere/sync", data=b"{}")
    assert response.status_code == 404
    assert client.post("/znotthere/token", json={}).status_code == 404


def test_oversized_body_is_413(app, db_url):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = app.test_client().post(
        "/" + db_url.rsplit("/", 1)[1] + "/sync", data=b"x" * 2000
    )
    assert response.status_code == 413
    assert response.get_json()["error"]


def test_double_slashes_and_cors(app, db_url):
    client = app.test_client()
    path = "/" + db_url.rsplit("/", 1)[1]
    origin = {"Origin": "http://localhost:8080"}
    preflight = client.options(f"{path}//sync", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    body = tson.dumps({"v": 3, "clientIdentity": "c", "schema": SCHEMA, "changes": []})
    response = client.post(f"{path}//sync", data=body, headers=origin)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:8080"


def _key_pair() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode().strip()


def test_demo_login_and_refresh(app, db_url, device):
    key, pem = _key_pair()
    alice = device(user=None)
    answer = alice.login(ALICE, public_key=pem)
    assert answer["type"] == "tokens"
    assert answer["claims"]["sub"] == ALICE
    assert answer["userType"] == "demo"
    assert answer["accessTokenExpiration"] > time.time() * 1000
    client = app.test_client()
    refreshed = client.post(f"{alice.path}/token", json=refresh_body(key, answer["refreshToken"]))
    assert refreshed.status_code == 200
    assert refreshed.get_json()["claims"]["sub"] == ALICE
    other_key, _ = _key_pair()
    forged = client.post(f"{alice.path}/token",
                         json=refresh_body(other_key, answer["refreshToken"]))
    assert forged.status_code == 401
    stale = client.post(f"{alice.path}/token",
                        json=refresh_body(key, answer["refreshToken"], stamp=1000))
    assert stale.status_code == 401


def test_unknown_demo_user_and_bad_token_requests(app, db_url):
    client = app.test_client()
    path = "/" + db_url.rsplit("/", 1)[1]
    answer = client.post(f"{path}/token", json={"grant_type": "demo", "demo_user": "x@y.z"})
    assert answer.status_code == 200
    assert answer.get_json()["type"] == "error"
    assert client.post(f"{path}/token", data="nope").status_code == 400
    assert client.post(f"{path}/token", json={"grant_type": "magic"}).status_code == 400
    bad_key = {"grant_type": "demo", "demo_user": ALICE, "public_key": "-----BEGIN nothing"}
    assert client.post(f"{path}/token", json=bad_key).status_code == 400


def test_answer_is_valid_json_for_every_stored_type(device):
    alice, phone = device(), device(identity="alice-phone")
    value = item(
        "itm1",
        d=tson.Date("2024-01-02T03:04:05.006Z"),
        m=tson.TMap([("k", 1)]),
        s=tson.TSet(["a"]),
        b=tson.Binary("Uint8Array", b"\x01\x02\x03"),
        nan=float("nan"),
        inf=float("inf"),
        u=UNDEFINED,
        **{"$t": "not a type", "$$x": 1},
    )
    response = alice.post_sync([alice.op("items", "insert", ["itm1"], "t", values=[value])])
    assert tson.loads(response.get_data())["rejections"] == []
    text = phone.post_sync([]).get_data(as_text=True)
    json.loads(text)  # the streamed answer is one JSON document
    pulled = next(m for e in tson.loads(text)["changes"] for m in e["muts"])["values"][0]
    assert pulled["b"] == tson.Binary("Uint8Array", b"\x01\x02\x03")
    assert pulled["$t"] == "not a type"
    assert pulled["u"] is UNDEFINED


def test_tokens_without_a_data_scope_cannot_sync(app, db_url, device):
    from dxc.auth.tokens import AccessClaims

    alice = device(user=None)
    claims = AccessClaims(ALICE, frozenset({"CONNECT_CLIENT"}), "prod", ALICE)
    alice.token = app.extensions["dxc"].signer.issue(alice.db_id, claims).token
    response = alice.post_sync([])
    assert response.status_code == 403
    assert "ACCESS_DB" in response.get_json()["message"]


def test_a_primary_key_sent_in_the_schema_is_kept(app, device):
    """``primaryKey`` arrives only sometimes: a sync without it never erases it."""
    services = app.extensions["dxc"]
    alice = device()
    db_id = alice.db_id

    def key_paths() -> dict[str, str | None]:
        with services.control.connect() as connection:
            found = table_store.get_tables(connection, db_id)
        return {name: info.key_path for name, info in found.items()}

    books = {"generatedGlobalId": True, "idPrefix": "bks", "markedForSync": True}
    alice.schema = {**SCHEMA, "books": books}
    alice.sync()
    assert key_paths()["books"] is None, "unknown until a client tells"
    assert key_paths()["realms"] == "realmId" and key_paths()["roles"] == "[realmId+name]"
    keyed = {**books, "primaryKey": "ref"}
    alice.schema = {**SCHEMA, "books": keyed}
    alice.sync()
    assert key_paths()["books"] == "ref"
    alice.schema = {**SCHEMA, "books": books}
    alice.sync()
    assert key_paths()["books"] == "ref"
