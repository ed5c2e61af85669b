"""Bad input is a JSON 4xx that says what is wrong: never a 5xx, never a cut stream.

One test per class of input an attacker found answered with a 500 (or a 503
that the real client retries forever): NUL characters, lone surrogates,
identifiers longer than their columns or than PostgreSQL's btree row limit,
numbers past a double, broken WebSocket upgrades and chunked bodies. Inside
``/sync`` a bad operation is a rejection of its client transaction in a 200
(sync.md §4.10, §6.3), a broken envelope a 400. Everything runs on SQLite
and PostgreSQL (the ``app`` fixture) unless it is about one of them.
"""

from __future__ import annotations

import gzip
import json
import socket
from typing import Any

import pytest
from sqlalchemy import bindparam, create_engine, literal_column, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.test import TestResponse

from dxc import tson
from dxc.storage.router import Shard
from tests.protocol_client import ALICE, SCHEMA, item
from tests.test_rest_http import Db

NUL = "\x00"
SURROGATE = "\ud800"
#: The documented limits (docs/security.md, "Input"), in bytes of UTF-8.
KEY_BYTES, TABLE_BYTES, TXID_BYTES = 1024, 255, 128


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def refused(response: TestResponse, status: int = 400) -> str:
    """The message of a JSON error answer with ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)
    message = response.get_json()["message"]
    assert message
    return message


def sync_body(changes: list[dict[str, Any]], **envelope: Any) -> bytes:
    """A ``/sync`` body as Alice's device makes it, with ``envelope`` fields replaced."""
    return tson.dumps({
        "v": 3, "clientIdentity": "bad-input", "schema": SCHEMA, "baseRevs": [],
        "changes": changes, **envelope,
    }).encode()


def post_sync(db: Db, body: bytes) -> TestResponse:
    return db.client.post(f"/{db.id}/sync", data=body, headers={
        "Authorization": f"Bearer {db.alice.token}", "Content-Type": "application/tson",
    })


def op(table: str, kind: str, keys: list[str], txid: str, **fields: Any) -> dict[str, Any]:
    return {"table": table, "muts": [{"type": kind, "keys": keys, "txid": txid, **fields}]}


def insert(key: str, txid: str = "bad", table: str = "items", **value: Any) -> dict[str, Any]:
    return op(table, "insert", [key], txid, values=[{**item(key), **value}])


LONG_KEY = "itm" + "k" * KEY_BYTES
BAD_OPERATIONS = {
    "table name too long": insert("itmT", table="t" * (TABLE_BYTES + 45)),
    "NUL in a table name": insert("itmT", table=f"it{NUL}ems"),
    "surrogate in a table name": insert("itmT", table=f"items{SURROGATE}"),
    "txid too long": insert("itmT", txid="x" * (TXID_BYTES + 72)),
    "NUL in a txid": insert("itmT", txid=f"tx{NUL}"),
    "surrogate in a txid": insert("itmT", txid=f"tx{SURROGATE}"),
    "NUL in a key": insert(f"itm{NUL}"),
    "surrogate in a key": insert(f"itm{SURROGATE}"),
    "key too long": insert(LONG_KEY),
    "NUL in a realmId": insert("itmT", realmId=f"rlm{NUL}"),
    "realmId too long": insert("itmT", realmId="rlm" + "r" * 3000),
    "surrogate in an owner": insert("itmT", owner=f"{ALICE}{SURROGATE}"),
    "member e-mail too long": insert(
        "mmbT", table="members", realmId="rlmNone", email="m" * 3000 + "@x.y"
    ),
    "NUL in a realmId change": op(
        "items", "update", ["itmA1"], "bad", changeSpecs=[{"realmId": f"rlm{NUL}"}]
    ),
    "infinite rev": op("items", "delete", ["itmA1"], "bad", rev=float("inf")),
    "NaN rev": op("items", "delete", ["itmA1"], "bad", rev=float("nan")),
}


@pytest.mark.parametrize("bad", BAD_OPERATIONS.values(), ids=BAD_OPERATIONS.keys())
def test_a_bad_operation_rejects_its_transaction_in_a_200(db, bad):
    good = insert("itmGood", txid="good")
    response = post_sync(db, sync_body([bad, good]))
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = tson.loads(response.get_data())  # the whole stream, to its end
    assert [r["txid"] for r in answer["rejections"]] != ["good"]
    assert len(answer["rejections"]) == 1
    assert answer["rejections"][0]["message"]
    assert db.get("/all/items/itmGood", db.admin)["id"] == "itmGood"  # stored as sent
    assert db.get("/all/items/itmA1", db.admin)["realmId"] == ALICE


def test_a_number_past_a_double_in_rev_rejects_its_transaction(db):
    body = sync_body([op("items", "delete", ["itmA1"], "bad", rev=12345)])
    response = post_sync(db, body.replace(b'"rev":12345', b'"rev":1e400'))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r["txid"] for r in tson.loads(response.get_data())["rejections"]] == ["bad"]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_20_kb_key_is_rejected_not_unavailable(db):
    """PostgreSQL refuses btree rows over ~2.7 KB: a permanent error the client must
    not be told to retry (a 503) forever."""
    key = "itm" + "x" * 20_000
    response = post_sync(db, sync_body([insert(key), insert("itmGood", txid="good")]))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [r["txid"] for r in tson.loads(response.get_data())["rejections"]] == ["bad"]
    message = refused(db.client.post(
        f"/{db.id}/all/items", json={"id": key, "realmId": ALICE}, headers=db.admin
    ))
    assert f"{KEY_BYTES} bytes" in message


@pytest.mark.parametrize("envelope", [
    {"clientIdentity": f"c{NUL}"},
    {"clientIdentity": f"c{SURROGATE}"},
    {"clientIdentity": "c" * 200},
    {"baseRevs": [{"tableName": "items", "clientRev": float("inf"), "serverRev": "1:1"}]},
], ids=["NUL", "surrogate", "too long", "infinite clientRev"])
def test_a_broken_envelope_is_a_400(db, envelope):
    refused(post_sync(db, sync_body([], **envelope)))


@pytest.mark.parametrize("envelope", [
    {"schema": {**SCHEMA, "t" * 300: {"markedForSync": True, "generatedGlobalId": True}}},
    {"schema": {**SCHEMA, f"x{NUL}": {"markedForSync": True}}},
    {"schema": {**SCHEMA, "notes": {"markedForSync": True, "generatedGlobalId": True,
                                    "idPrefix": "p" * 40}}},
    {"schema": {**SCHEMA, "notes": {"markedForSync": True, "primaryKey": f"id{NUL}"}}},
    {"lastPull": {"serverRevision": "1:" + "9" * 30, "realms": [], "inviteRealms": []}},
    {"lastPull": {"serverRevision": "1:\u00b2", "realms": [], "inviteRealms": []}},
], ids=["long table", "NUL table", "long idPrefix", "NUL primaryKey", "huge revision",
        "superscript revision"])
def test_odd_schemas_and_revisions_still_sync(db, envelope):
    response = post_sync(db, sync_body([], dbID=db.id, **envelope))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "itmA1" in json.dumps(tson.encode(tson.loads(response.get_data())))


@pytest.mark.parametrize(("body", "field"), [
    ({"grant_type": "demo", "demo_user": f"{ALICE}{NUL}"}, "demo_user"),
    ({"grant_type": "client_credentials", "client_id": SURROGATE, "client_secret": "s"},
     "client_id"),
    ({"grant_type": "otp", "otp_id": f"otp{SURROGATE}", "otp": "123456"}, "otp_id"),
    ({"grant_type": "otp", "email": f"a{NUL}@b.c"}, "email"),
    ({"grant_type": "refresh_token", "refresh_token": SURROGATE, "signature": "x",
      "time_stamp": 1}, "refresh_token"),
    ({"grant_type": "client_credentials", "client_id": "c", "client_secret": "s",
      "expires_in": float("inf")}, "expires_in"),
], ids=["NUL demo_user", "surrogate client_id", "surrogate otp_id", "NUL email",
        "surrogate refresh_token", "infinite expires_in"])
def test_token_bodies_with_text_no_column_stores_are_400(db, body, field):
    text = json.dumps(body).replace("Infinity", "1e400")
    response = db.client.post(
        f"/{db.id}/token", data=text, headers={"Content-Type": "application/json"}
    )
    assert refused(response).startswith(field)


@pytest.mark.parametrize("claims", [{"sub": "u" * 400}, {"sub": "u", "email": "é" * 200}])
def test_impersonated_claims_longer_than_their_column_are_400(db, claims):
    response = db.client.post(f"/{db.id}/token", json={
        "grant_type": "client_credentials", "client_id": db.created.client_id,
        "client_secret": db.created.client_secret, "scopes": ["ACCESS_DB"],
        "claims": claims,
    })
    assert "longer than 320 bytes" in refused(response)


PATHS = [
    ("GET", "/all/items/%00"),
    ("DELETE", "/all/items/%00"),
    ("GET", "/my/%00"),
    ("GET", "/public/it%00ems"),
    ("POST", "/all/it%00ems"),
    ("GET", "/all/items?title%00=x"),
    ("GET", "/users/%00"),
    ("DELETE", "/users/%00"),
    ("GET", "/export/stream?table=%00"),
    ("GET", "/export?realmId=%00"),
    ("GET", "/changes?token=%00"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_nul_in_a_path_or_query_is_400_before_any_stream(db, method, path):
    response = db.client.open(
        f"/{db.id}{path}", method=method, headers=db.admin, json={"realmId": ALICE}
    )
    assert "NUL" in refused(response)


def test_a_limit_in_other_digits_is_400(db):
    """``"²".isdigit()`` holds, ``int("²")`` fails."""
    assert "limit" in refused(db.client.get(f"/{db.id}/users?limit=%C2%B2", headers=db.admin))


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://elsewhere.example"}],
                         ids=["no origin", "origin checked against the whitelist"])
def test_nul_in_a_database_id_is_400(app, headers):
    response = app.test_client().post("/db%00/sync", data=b"{}", headers=headers)
    assert "NUL" in refused(response)


@pytest.mark.parametrize(("value", "problem"), [
    ({"id": f"itm{NUL}", "realmId": ALICE}, "key 'itm\\x00' contains a NUL character"),
    ({"id": f"itm{SURROGATE}", "realmId": ALICE}, "contains a lone surrogate"),
    ({"id": LONG_KEY, "realmId": ALICE}, f"is longer than {KEY_BYTES} bytes"),
    ({"id": "itmR", "realmId": f"rlm{NUL}"}, "realmId 'rlm\\x00' contains a NUL"),
    ({"id": "itmR", "realmId": ALICE, "owner": "o" * 3000}, "owner 'oooo"),
], ids=["NUL key", "surrogate key", "long key", "NUL realmId", "long owner"])
def test_rest_writes_of_unstorable_identifiers_are_400(db, value, problem):
    before = db.stored_count()
    response = db.client.post(f"/{db.id}/all/items", data=tson.dumps(value),
                              headers={**db.admin, "Content-Type": "application/json"})
    assert problem in refused(response)
    assert db.stored_count() == before


@pytest.mark.parametrize("document", [
    {"data": {f"rlm{NUL}": {"items": {"itmI": {}}}}},
    {"data": {ALICE: {"items": {f"itm{SURROGATE}": {}}}}},
    {"data": {ALICE: {"t" * 300: {"x1": {}}}}},
    {"data": {ALICE: {"items": {"itmI": {"owner": "o" * 3000}}}}},
    {"data": {ALICE: {"items": {LONG_KEY: {}}}}},
    {"demoUsers": {f"a{NUL}@b.c": {}}},
], ids=["NUL realm", "surrogate key", "long table", "long owner", "long key", "NUL demo user"])
def test_imports_of_unstorable_identifiers_are_400(db, document):
    before = db.stored_count()
    response = db.client.post(f"/{db.id}/import", data=gzip.compress(tson.dumps(document).encode()),
                              headers={**db.admin, "Content-Encoding": "gzip"})
    refused(response)
    assert db.stored_count() == before


@pytest.mark.parametrize("headers", [
    {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"},
    {},
], ids=["no Sec-WebSocket-Key", "no upgrade"])
def test_a_broken_websocket_upgrade_is_400(db, headers):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        response = db.client.get(
            f"/{db.id}/changes", headers=headers, environ_overrides={"werkzeug.socket": ours}
        )
    assert "WebSocket" in refused(response)


class _BadChunks:
    """A WSGI input whose chunked encoding is broken, as gunicorn reports it."""

    def read(self, size: int = -1) -> bytes:
        from gunicorn.http.errors import InvalidChunkSize

        raise InvalidChunkSize(b"zz")

    readline = read


def test_an_unreadable_chunked_body_is_400(db):
    response = db.client.post(
        f"/{db.id}/sync",
        headers={"Transfer-Encoding": "chunked", "Authorization": f"Bearer {db.alice.token}"},
        environ_overrides={"wsgi.input": _BadChunks(), "wsgi.input_terminated": True},
    )
    assert "chunk" in refused(response)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_invalid_chunk_size_is_400_on_the_real_server(server):
    db_id = server.create_database().rsplit("/", 1)[1]
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /{db_id}/sync HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert b"chunk" in body, answer


def test_a_value_no_driver_sends_is_400_whatever_reaches_it(app, monkeypatch):
    """The net under the checks: a driver's refusal of a bound value is the request's 400."""
    services = app.extensions["dxc"]

    def lookup(db_id: str):
        with services.control.connect() as connection:
            connection.execute(select(literal_column("1")).where(bindparam("x", SURROGATE) == ""))

    monkeypatch.setattr(services.router, "shard_for", lookup)
    assert "surrogate" in refused(app.test_client().post("/any/sync", data=b"{}"))


def test_a_pool_time_out_is_503(app, monkeypatch):
    services = app.extensions["dxc"]
    url = services.control.url
    tiny = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    monkeypatch.setattr(services.router, "control", tiny)
    try:
        with tiny.connect():
            response = app.test_client().post("/unplaced/sync", data=b"{}")
    finally:
        tiny.dispose()
    refused(response, 503)
    assert response.headers["Retry-After"]


def test_a_pool_time_out_before_a_rest_listing_is_503_not_a_cut_stream(db, monkeypatch):
    def exhausted(self, read_only: bool = False):
        raise PoolTimeout("QueuePool limit of size 5 overflow 5 reached")

    monkeypatch.setattr(Shard, "transaction", exhausted)
    refused(db.client.get(f"/{db.id}/all/items", headers=db.admin), 503)


def test_a_pool_time_out_before_a_sync_answer_is_503_not_a_cut_stream(db, monkeypatch):
    def exhausted_for_reads(self):
        raise PoolTimeout("QueuePool limit of size 5 overflow 5 reached")

    monkeypatch.setattr(Shard, "reads", exhausted_for_reads)  # the answer's reads
    refused(post_sync(db, sync_body([])), 503)


class _Orig(Exception):
    """A driver error carrying a PostgreSQL SQLSTATE."""

    def __init__(self, pgcode: str | None, message: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


@pytest.mark.parametrize(("error", "status"), [
    (DataError("INSERT", {}, _Orig("22001", "value too long for type character varying(3)")),
     400),
    (IntegrityError("INSERT", {}, _Orig("23505", "duplicate key value")), 400),
    (ProgrammingError("SELECT", {}, _Orig("42601", "syntax error")), 400),
    (OperationalError("INSERT", {}, _Orig("54000", "index row size 20016 exceeds maximum")),
     400),
    (OperationalError(None, None, _Orig(None, "could not connect to server")), 503),
    (OperationalError("SELECT", {}, _Orig("57P01", "terminating connection")), 503),
], ids=["data", "integrity", "programming", "program limit", "connect", "admin shutdown"])
def test_database_errors_are_400_when_permanent_and_503_when_an_outage(
    app, monkeypatch, error, status
):
    services = app.extensions["dxc"]

    def fail(db_id: str):
        raise error

    monkeypatch.setattr(services.router, "shard_for", fail)
    message = refused(app.test_client().post("/any/sync", data=b"{}"), status)
    assert ("unreachable" in message) == (status == 503)
