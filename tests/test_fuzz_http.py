"""Fuzzing the HTTP API in-process, on SQLite and PostgreSQL: whatever comes in,
the answer is never a 5xx, never an error without a JSON message, and never a
stream cut short.

The strategies mix well-formed requests with text no database stores (NUL,
lone surrogates), identifiers longer than their columns, numbers past a
double or a BIGINT and plain garbage, at every place the endpoints read:
``/sync`` (envelope and operations), ``/token`` (every grant), the
``/changes`` upgrade, the REST API (``/all``, ``/my``, ``/public``,
``/users``), imports and exports. Examples are few per endpoint, so that
the whole module stays well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from dxc import tson
from tests.protocol_client import ALICE, SCHEMA
from tests.test_rest_http import GLOBAL, Db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- values ---------------------------------------------------------------------


def noise(blocks: int) -> str:
    """Text that does not compress (PostgreSQL compresses an index row before it
    checks its size): 64 characters a block, up to 20 KB."""
    return "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(blocks))


NASTY = st.integers(1, 320).map(noise) | st.sampled_from([
    "\x00", "\ud800", "\udfff", "a\x00b", "x" * 300, "", " ", "$t", "$",
    "[1,2]", '["rlm-public","x"]', "#x:" + ALICE, ALICE, "rlm-public", "\u2028", "%00",
    "../..", "' OR 1=1 --", "itm1", "1:1", "1:99999999999999999999999", "1:\u00b2",
    "\u00b2", "\u0661", "-1", "10000", "true",
])
CHARS = st.one_of(st.characters(), st.sampled_from("\x00\ud800\udc00\U0001f600"))
TEXT_TAIL = st.one_of(NASTY, st.text(CHARS, max_size=4))
TEXT = st.one_of(NASTY, st.text(CHARS, max_size=8), st.builds(str.__add__, NASTY, TEXT_TAIL))
NUMBER = st.one_of(
    st.integers(-5, 5), st.integers(), st.floats(), st.sampled_from([10**30, -(2**63), 2**64])
)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBER | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
KEY = st.one_of(st.sampled_from(["itm1", "itmA1", "rlmX", ALICE]), TEXT)
TABLE = st.one_of(st.sampled_from(["items", "realms", "members", "roles"]), TEXT)
OBJECT = st.fixed_dictionaries({}, optional={
    "id": KEY, "realmId": st.sampled_from([ALICE, "rlm-public", "rlmX"]) | TEXT,
    "owner": st.just(ALICE) | TEXT, "email": TEXT, "userId": TEXT, "name": TEXT,
    "title": JSON, "permissions": JSON,
})
SPEC = st.one_of(OBJECT, st.dictionaries(TEXT, JSON, max_size=3), st.builds(
    tson.PropModification, st.sampled_from(["add", "remove", "replacePrefix"]), JSON
))


def json_text(value: Any) -> str:
    """JSON as an attacker writes it: infinities become ``1e400`` (valid JSON that
    overflows a double); NaN stays, which is not JSON at all."""
    return json.dumps(value, default=tson.encode).replace("Infinity", "1e400")


def body_text(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as TSON (how clients write) or as raw JSON (how attackers do)."""
    raw = draw(st.booleans())
    return (json_text(value) if raw else tson.dumps(value)).encode()


# --- requests ---------------------------------------------------------------------

MUTATION = st.fixed_dictionaries(
    {"type": st.sampled_from(["insert", "upsert", "update", "modify", "delete"]) | TEXT,
     "keys": st.lists(KEY, max_size=3), "txid": st.just("tx") | TEXT},
    optional={
        "values": st.lists(OBJECT, max_size=3), "changeSpecs": st.lists(SPEC, max_size=2),
        "changeSpec": SPEC, "rev": NUMBER, "isAdditionalChunk": st.booleans(),
        "criteria": st.fixed_dictionaries({
            "index": st.sampled_from(["", "title", "realmId"]) | TEXT,
            "range": st.fixed_dictionaries({"type": st.integers(0, 4) | JSON},
                                           optional={"lower": JSON, "upper": JSON}),
        }),
    },
)
ENVELOPE = st.fixed_dictionaries(
    {"clientIdentity": st.just("fuzz") | TEXT,
     "schema": st.just(SCHEMA) | st.dictionaries(TABLE, st.fixed_dictionaries(
         {"markedForSync": st.booleans()},
         optional={"generatedGlobalId": st.booleans(), "idPrefix": TEXT, "primaryKey": TEXT},
     ), max_size=3),
     "changes": st.lists(st.fixed_dictionaries(
         {"table": TABLE, "muts": st.lists(MUTATION, min_size=1, max_size=3)}), max_size=3)},
    optional={
        "lastPull": st.fixed_dictionaries({
            "serverRevision": TEXT, "realms": st.lists(TEXT, max_size=2),
            "inviteRealms": st.lists(TEXT, max_size=2),
        }) | JSON,
        "baseRevs": st.lists(st.fixed_dictionaries(
            {"tableName": TABLE, "clientRev": NUMBER, "serverRev": TEXT}), max_size=2) | JSON,
        "dbID": TEXT, "v": NUMBER,
    },
)
SCOPES = st.lists(st.sampled_from([*GLOBAL, "IMPERSONATE"]) | TEXT, max_size=3)
TOKEN_BODY = st.one_of(
    st.fixed_dictionaries({"grant_type": st.just("demo"), "demo_user": st.just(ALICE) | TEXT},
                          optional={"public_key": TEXT, "scopes": SCOPES}),
    st.fixed_dictionaries({"grant_type": st.just("otp")}, optional={
        "email": st.just(ALICE) | TEXT, "otp_id": TEXT, "otp": TEXT, "scopes": SCOPES,
        "intent": st.sampled_from(["login", "register"]) | TEXT,
    }),
    st.fixed_dictionaries(
        {"grant_type": st.just("client_credentials"), "client_id": st.just("<client>") | TEXT,
         "client_secret": st.just("<secret>") | TEXT, "scopes": SCOPES},
        optional={
            "claims": st.fixed_dictionaries({"sub": TEXT}, optional={"email": TEXT, "name": TEXT})
            | JSON,
            "expires_in": NUMBER | TEXT, "not_before": NUMBER | TEXT, "public_key": TEXT,
        },
    ),
    st.fixed_dictionaries({"grant_type": st.just("refresh_token"), "refresh_token": TEXT,
                           "signature": TEXT, "time_stamp": NUMBER}),
)
USER = st.fixed_dictionaries({"userId": TEXT}, optional={
    "type": st.sampled_from(["eval", "prod", "demo"]) | TEXT, "validUntil": NUMBER | TEXT,
    "evalDaysLeft": NUMBER, "deactivated": st.booleans() | NUMBER | TEXT,
    "data": st.fixed_dictionaries({}, optional={"displayName": TEXT, "email": TEXT, "x": JSON}),
})
IMPORT = st.fixed_dictionaries({}, optional={
    "schema": st.dictionaries(TABLE, st.none() | st.just("@id, title") | TEXT, max_size=2),
    "demoUsers": st.dictionaries(TEXT, st.none() | st.just({}), max_size=2),
    "roles": st.dictionaries(TEXT, st.none() | OBJECT, max_size=2),
    "data": st.dictionaries(KEY, st.dictionaries(
        TABLE, st.dictionaries(KEY, st.none() | OBJECT, max_size=2), max_size=2), max_size=2),
})


def segment(text: str) -> str:
    """``text`` as one URL path segment (a lone surrogate as its UTF-8-style bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


#: The query parameters the endpoints read, besides any others.
PARAMETER = st.sampled_from([
    "limit", "pagingKey", "sort", "search", "active", "realmId", "table", "title",
    "v", "rev", "realmsHash", "clientId", "token",
]) | TEXT


def query(draw: st.DrawFn) -> str:
    pairs = draw(st.lists(st.tuples(PARAMETER, TEXT), max_size=3))
    return urlencode([(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass"))
                      for k, v in pairs])


def checked(response: TestResponse) -> bytes:
    """The whole body (so a stream that breaks off fails here), after checking the
    status is not a 5xx and an error carries a JSON message."""
    body = response.get_data()
    assert response.status_code < 500, body[:500]
    if response.status_code >= 400 and not _plain_text_by_design(response):
        assert response.is_json, body[:500]
        assert response.get_json()["message"], body[:500]
    return body


def _plain_text_by_design(response: TestResponse) -> bool:
    """A wrong one-time password: the client shows this 401's text as it is."""
    return response.status_code == 401 and response.mimetype == "text/plain"


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def bearer(db: Db, who: str) -> dict[str, str]:
    if who == "admin":
        return db.admin
    if who == "alice":
        return db.token(ALICE, "ACCESS_DB")
    return {"Authorization": "Bearer nonsense"} if who == "garbage" else {}


WHO = st.sampled_from(["admin", "alice", "nobody", "garbage"])


# --- the fuzz tests -------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_sync(db, data):
    envelope = data.draw(st.one_of(ENVELOPE, ENVELOPE, JSON))
    response = db.client.post(f"/{db.id}/sync", data=body_text(data.draw, envelope),
                              headers=bearer(db, data.draw(WHO)))
    body = checked(response)
    if response.status_code == 200:
        answer = tson.loads(body)
        assert isinstance(answer["changes"], list) and isinstance(answer["rejections"], list)


@FUZZ
@given(body=st.one_of(TOKEN_BODY, JSON))
def test_token(db, body):
    text = json_text(body).replace("<client>", db.created.client_id)
    text = text.replace("<secret>", db.created.client_secret)
    checked(db.client.post(f"/{db.id}/token", data=text,
                           headers={"Content-Type": "application/json"}))


HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@FUZZ
@given(data=st.data())
def test_changes_upgrade(db, data):
    """Upgrade requests lacking or spoiling a part of the handshake (a complete
    one would open a socket, which is tests/test_live_server.py's business)."""
    headers = {name: data.draw(st.just(value) | HEADER_TEXT) for name, value in HANDSHAKE.items()
               if data.draw(st.booleans())}
    if len(headers) == len(HANDSHAKE):
        del headers["Sec-WebSocket-Key"]
    if data.draw(st.booleans()):
        headers["Origin"] = data.draw(st.just("http://localhost:3000") | HEADER_TEXT)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        checked(db.client.get(f"/{db.id}/changes?{query(data.draw)}", headers=headers,
                              environ_overrides={"werkzeug.socket": ours}))


@FUZZ
@given(data=st.data())
def test_rest(db, data):
    method = data.draw(st.sampled_from(["GET", "POST", "DELETE"]))
    view = data.draw(st.sampled_from(["all", "my", "public"]))
    path = f"/{db.id}/{view}/{segment(data.draw(TABLE))}"
    if method != "POST" or data.draw(st.booleans()):
        path += "/" + segment(data.draw(KEY))
    body = body_text(data.draw, data.draw(st.one_of(OBJECT, st.lists(OBJECT, max_size=3), JSON)))
    response = db.client.open(
        f"{path}?{query(data.draw)}", method=method, data=body,
        headers={**bearer(db, data.draw(WHO)), "Content-Type": "application/json"},
    )
    body = checked(response)
    if response.status_code == 200:
        tson.loads(body)


@FUZZ
@given(data=st.data())
def test_users(db, data):
    method = data.draw(st.sampled_from(["GET", "POST", "DELETE"]))
    path = f"/{db.id}/users"
    if method == "DELETE" or (method == "GET" and data.draw(st.booleans())):
        path += "/" + segment(data.draw(st.just(ALICE) | TEXT))
    body = body_text(data.draw, data.draw(st.one_of(USER, st.lists(USER, max_size=2), JSON)))
    checked(db.client.open(f"{path}?{query(data.draw)}", method=method, data=body,
                           headers=bearer(db, data.draw(WHO))))


@FUZZ
@given(data=st.data())
def test_import_and_export(db, data):
    if data.draw(st.booleans()):
        url, body = "/import", body_text(data.draw, data.draw(st.one_of(IMPORT, IMPORT, JSON)))
    else:
        lines = data.draw(st.lists(st.one_of(
            st.fixed_dictionaries({"realm": KEY, "table": TABLE, "id": KEY, "data": OBJECT}),
            JSON), max_size=3))
        url, body = "/import/stream", "\n".join(map(json_text, lines)).encode()
    checked(db.client.post(f"/{db.id}{url}", data=body, headers=db.admin))
    export = db.client.get(f"/{db.id}/export/stream?{query(data.draw)}", headers=db.admin)
    lines = [json.loads(line) for line in checked(export).splitlines()]
    if export.status_code == 200:
        assert all(line.get("type") != "error" for line in lines), lines[-1]
