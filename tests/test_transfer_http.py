"""``/<db>/import*`` and ``/<db>/export*`` in-process: formats, limits, scopes, round trips.

Every test runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from dxc import tson
from dxc.manage import databases
from dxc.storage import schema
from dxc.storage.access_index import AccessIndex
from tests.protocol_client import ALICE, BOB, Device

ADMIN = ["IMPERSONATE", "MANAGE_DB", "DELETE_DB", "ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE"]
REALM = "rlm-shared"

DOCUMENT: dict[str, Any] = {
    "schema": {"items": "@id, title", "notes": "id"},
    "sealed": False,
    "demoUsers": {ALICE: {}, BOB: {}},
    "roles": {
        "editor": {"displayName": "Editor", "description": "edits", "sortOrder": 1,
                   "permissions": {"update": {"items": "*"}}},
    },
    "data": {
        "rlm-public": {"items": {"itmPub": {
            "title": "public", "when": tson.Date("2024-02-29T00:00:00.000Z")}}},
        REALM: {
            "realms": {REALM: {"name": "Shared", "owner": ALICE}},
            "members": {
                "mmbAlice": {"userId": ALICE, "email": ALICE, "permissions": {"manage": "*"}},
                "mmbBob": {"email": BOB, "userId": BOB, "roles": ["editor"],
                           "accepted": tson.Date("2024-01-01T00:00:00.000Z")},
            },
            "roles": {json.dumps([REALM, "local"]): {"name": "local", "permissions": {}}},
            "items": {"itmShared": {"title": "shared", "owner": ALICE, "$dollar": 1,
                                    "set": tson.TSet([1, "x"])}},
        },
        ALICE: {"items": {"itmMine": {"title": "mine", "owner": ALICE}},
                "notes": {"n1": {"text": "note", "owner": ALICE}}},
    },
}


class Db:
    """A database of the in-process app, and tokens for it."""

    def __init__(self, app) -> None:
        self.app = app
        self.services = app.extensions["dxc"]
        created = databases.create_database(self.services)
        self.created = created
        self.id = created.db_id
        self.path = f"/{created.db_id}"
        self.client = app.test_client()

    def token(self, scopes: list[str] = ADMIN) -> str:
        answer = self.client.post(f"{self.path}/token", json={
            "grant_type": "client_credentials", "client_id": self.created.client_id,
            "client_secret": self.created.client_secret, "scopes": scopes,
        }).get_json()
        return answer["accessToken"]

    def post(self, url: str, body: bytes, token: str | None = None, gz: bool = True,
             content_type: str = "application/x-tson", **headers: str):
        headers = {"Content-Type": content_type, **headers}
        if gz:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        headers["Authorization"] = f"Bearer {token or self.token()}"
        return self.client.post(f"{self.path}{url}", data=body, headers=headers)

    def get(self, url: str, token: str | None = None, **headers: str):
        headers["Authorization"] = f"Bearer {token or self.token()}"
        return self.client.get(f"{self.path}{url}", headers=headers)

    def import_legacy(self, document: dict[str, Any]) -> dict[str, Any]:
        response = self.post("/import", tson.dumps(document).encode())
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def ndjson(self, query: str = "") -> list[dict[str, Any]]:
        response = self.get(f"/export/stream{query}", **{"Accept-Encoding": "gzip"})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/x-ndjson"
        assert response.headers["Content-Encoding"] == "gzip"
        text = gzip.decompress(response.get_data()).decode()
        return [json.loads(line) for line in text.splitlines() if line]

    def legacy(self, query: str = "") -> dict[str, Any]:
        response = self.get(f"/export{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert "Content-Encoding" not in response.headers
        return json.loads(response.get_data())

    def object_count(self) -> int:
        with self.services.router.shard_for(self.id).transaction(read_only=True) as connection:
            return connection.scalar(
                select(func.count()).select_from(schema.objects)
                .where(schema.objects.c.db_id == self.id)
            )

    def control_rows(self) -> tuple[int, int]:
        """(registered tables, users) in the control database."""
        with self.services.control.connect() as connection:
            return tuple(
                connection.scalar(select(func.count()).select_from(t).where(t.c.db_id == self.id))
                for t in (schema.table_schemas, schema.users)
            )


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def objects_of(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "type" not in line]


def meta_of(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {line["type"]: line for line in lines if "type" in line}


# --- import -------------------------------------------------------------------------------------


def test_legacy_import_answers_counts_and_a_demo_user_syncs_the_data(db):
    answer = db.import_legacy(DOCUMENT)
    assert answer == {"ok": True, "demoUsers": 2, "roles": 1, "objects": 8, "deleted": 0,
                      "tables": ["items", "notes"]}
    alice = Device(db.client, f"http://x{db.path}", "alice-device")
    alice.login(ALICE)
    alice.sync()
    items = alice.state["items"]
    assert set(items) == {"itmPub", "itmShared", "itmMine"}
    assert items["itmShared"]["$dollar"] == 1 and items["itmShared"]["set"] == tson.TSet([1, "x"])
    assert items["itmPub"]["when"] == tson.Date("2024-02-29T00:00:00.000Z")
    assert items["itmMine"]["id"] == "itmMine" and items["itmMine"]["realmId"] == ALICE
    with db.services.router.shard_for(db.id).transaction(read_only=True) as connection:
        index = AccessIndex(connection, db.id)
        assert index.realm(REALM).owner == ALICE
        members = {m.member_id: m for m in index.members_of([REALM])}
    assert members["mmbBob"].user_id == BOB and json.loads(members["mmbBob"].roles) == ["editor"]

    again = db.import_legacy({"data": {ALICE: {"items": {"itmMine": None}}},
                              "demoUsers": {BOB: None}})
    assert again["deleted"] == 1 and again["demoUsers"] == 1
    alice.sync()
    assert "itmMine" not in alice.state["items"]


def test_import_accepts_an_uncompressed_body(db):
    response = db.post("/import", tson.dumps({"demoUsers": {ALICE: {}}}).encode(), gz=False)
    assert response.status_code == 200 and response.get_json()["ok"] is True


def test_import_reads_every_member_of_a_multi_member_gzip_body(db):
    text = tson.dumps({"data": {"rlm-public": {"items": {f"itm{n}": {"n": n}
                                                         for n in range(300)}}}}).encode()
    body = gzip.compress(text[:1000]) + gzip.compress(text[1000:])
    response = db.post("/import", body, gz=False, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["objects"] == 300


@pytest.mark.parametrize("url", ["/import", "/import/stream", "/import/blobs"])
def test_imports_need_global_write(db, url):
    body = b"{}"
    assert db.client.post(f"{db.path}{url}", data=body).status_code == 401
    refused = db.post(url, body, token=db.token(["GLOBAL_READ", "ACCESS_DB"]))
    assert refused.status_code == 403
    assert "GLOBAL_WRITE" in refused.get_json()["message"]


@pytest.mark.parametrize("url", ["/export", "/export/stream", "/export/blobs"])
def test_exports_need_global_read(db, url):
    assert db.client.get(f"{db.path}{url}").status_code == 401
    refused = db.get(url, token=db.token(["GLOBAL_WRITE"]))
    assert refused.status_code == 403 and "GLOBAL_READ" in refused.get_json()["message"]


@pytest.mark.parametrize("document", [
    b"not json",
    b"[1, 2]",
    b'{"unknown": {}}',
    b'{"data": {"rlm-public": {"items": {"a": {"t": 1}}}}, "schema": {"items": 5}}',
    b'{"data": {"rlm-public": {"items": {"a": {"t": 1}, "b": 7}}}}',
    b'{"data": {"rlm-public": {"$$bad": {"a": {}}}}}',
    b'{"data": {"rlm-public": []}}',
    b'{"demoUsers": {"alice@demo.local": {}, "nobody": {}}, "data": {"x": {"t": {"a": {}}}}}',
    b'{"roles": {"r": 1}, "demoUsers": {"alice@demo.local": {}}}',
    b'{"data": {"rlm-public": {"items": {"a": {"d": {"$t": "Date"}}}}}}',
])
def test_a_bad_import_changes_nothing(db, document):
    response = db.post("/import", document)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "bad_request"
    assert db.object_count() == 0 and db.control_rows() == (0, 0)


def test_a_corrupt_or_truncated_gzip_body_is_refused(db):
    token = db.token()
    squeezed = gzip.compress(tson.dumps(DOCUMENT).encode())
    headers = {"Content-Type": "application/x-tson", "Content-Encoding": "gzip",
               "Authorization": f"Bearer {token}"}
    for body in (b"\x1f\x8b garbage", squeezed[: len(squeezed) // 2]):
        response = db.client.post(f"{db.path}/import", data=body, headers=headers)
        assert response.status_code == 400, response.get_data(as_text=True)
    brotli = db.client.post(f"{db.path}/import", data=b"{}",
                            headers={**headers, "Content-Encoding": "br"})
    assert brotli.status_code == 415
    assert db.object_count() == 0 and db.control_rows() == (0, 0)


@pytest.mark.parametrize("url", ["/import", "/import/stream"])
def test_a_gzip_bomb_stops_at_the_cap_with_413(db, url):
    db.services.settings = replace(db.services.settings, max_import_bytes=64 * 1024)
    padding = " " * (50 * 1024 * 1024)  # 50 MiB of spaces: about 50 KiB gzipped
    if url == "/import":
        body = '{"data": {"rlm-public": {"items": {"a": {"t": 1}}}}%s}' % padding
    else:
        body = '{"realm":"rlm-public","table":"items","id":"a","data":{}}\n%s\n' % padding
    compressed = zlib.compress(body.encode(), 9, wbits=31)
    assert len(compressed) < 64 * 1024
    response = db.post(url, compressed, gz=False, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.get_json()["error"] == "request_entity_too_large"
    assert db.object_count() == 0 and db.control_rows() == (0, 0)


def ndjson(*lines: Any) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                   for line in lines).encode()


def test_ndjson_import_reads_v2_and_v1_lines(db):
    body = ndjson(
        {"type": "header", "version": 1, "dbId": "zother", "exportedAt": "2024-01-01T00:00:00Z"},
        {"type": "schema", "schema": {"items": "@id"}, "sealed": False},
        {"type": "roles", "roles": {"viewer": {"displayName": "V", "description": "",
                                               "permissions": {}}}},
        {"type": "demoUsers", "users": {ALICE: {}}},
        {"realm": "rlm-public", "table": "items", "id": "itm1",
         "data": {"title": "one", "at": {"$t": "Date", "v": "2020-01-01T00:00:00.000Z"}}},
        {"$type": "object", "realm": "rlm-public", "table": "items", "id": "itm2",
         "data": {"title": "two"}},
        {"$type": "member", "realm": "rlm-public", "id": "mmbX", "data": {"email": BOB}},
        "",
        {"realm": "rlm-public", "table": "items", "id": "itm3", "data": None},
    )
    response = db.post("/import/stream", body, content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"ok": True, "demoUsers": 1, "roles": 1, "objects": 3,
                                   "deleted": 1, "tables": ["items"]}
    objects = {(o["table"], o["id"]): o["data"] for o in objects_of(db.ndjson())}
    assert set(objects) == {("items", "itm1"), ("items", "itm2"), ("members", "mmbX")}
    assert objects[("items", "itm1")]["at"] == {"$t": "Date", "v": "2020-01-01T00:00:00.000Z"}


@pytest.mark.parametrize("bad", [
    "{not json",
    '["a list"]',
    '{"realm":"rlm-public","table":"items","id":"b"}',
    '{"realm":"rlm-public","table":"items","id":7,"data":{}}',
    '{"realm":"","table":"items","id":"b","data":{}}',
    '{"type":"mystery"}',
    '{"type":"error","message":"the exporter died"}',
    '{"type":"schema","tables":{"items":false}}',
])
def test_an_ndjson_import_with_a_bad_line_stores_nothing(db, bad):
    lines = [{"type": "schema", "tables": {"items": "@id"}}, {"type": "demoUsers",
             "users": {ALICE: {}}}]
    lines += [{"realm": "rlm-public", "table": "items", "id": f"itm{n}", "data": {"n": n}}
              for n in range(1200)]  # more than one write batch before the bad line
    response = db.post("/import/stream", ndjson(*lines, bad), content_type="application/x-ndjson")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "line 1203" in response.get_json()["message"]
    assert db.object_count() == 0 and db.control_rows() == (0, 0)


# --- export -------------------------------------------------------------------------------------


def test_ndjson_export_lines_and_filters(db):
    db.import_legacy(DOCUMENT)
    lines = db.ndjson()
    assert [line.get("type") for line in lines[:4]] == ["header", "schema", "roles", "demoUsers"]
    meta = meta_of(lines)
    assert meta["header"]["dbId"] == db.id
    expected_schema = {"items": "@id", "notes": "id"}
    assert meta["schema"]["tables"] == meta["schema"]["schema"] == expected_schema
    assert meta["schema"]["sealed"] is False
    assert meta["roles"]["roles"]["editor"]["displayName"] == "Editor"
    assert "realmId" not in meta["roles"]["roles"]["editor"]
    assert meta["demoUsers"]["users"] == {ALICE: {}, BOB: {}}
    objects = objects_of(lines)
    assert len(objects) == 8  # the public role is in the roles line only
    shared = next(o for o in objects if o["id"] == "itmShared")
    assert shared["realm"] == REALM and shared["data"]["$$dollar"] == 1  # TSON-encoded
    assert shared["data"]["set"] == {"$t": "Set", "v": [1, "x"]}

    in_realm = objects_of(db.ndjson(f"?realmId={REALM}"))
    assert {o["realm"] for o in in_realm} == {REALM} and len(in_realm) == 5
    items_only = objects_of(db.ndjson("?table=items"))
    assert {o["table"] for o in items_only} == {"items", "realms", "members"}
    both = objects_of(db.ndjson(f"?table=items&realmId={ALICE}"))
    assert [(o["table"], o["id"]) for o in both] == [("items", "itmMine")]
    nothing = db.ndjson("?table=nothing")
    assert [line["type"] for line in nothing[:4]] == ["header", "schema", "roles", "demoUsers"]
    assert {o["table"] for o in objects_of(nothing)} == {"realms", "members"}


def test_export_is_plain_without_accept_encoding(db):
    db.import_legacy({"data": {"rlm-public": {"items": {"a": {"t": 1}}}}})
    response = db.get("/export/stream")
    assert response.status_code == 200 and "Content-Encoding" not in response.headers
    lines = response.get_data(as_text=True).splitlines()
    assert json.loads(lines[-1])["data"] == {"t": 1, "realmId": "rlm-public", "id": "a"}


def test_export_streams_in_batches(db):
    rows = {f"itm{n:05}": {"n": n} for n in range(1234)}
    db.import_legacy({"data": {"rlm-public": {"items": rows}}})
    response = db.get("/export/stream")
    chunks = list(response.response)
    assert len(chunks) >= 3  # metadata, then at least one chunk per 500 rows
    lines = b"".join(chunks).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines[4:]] == sorted(rows)
    legacy = db.legacy()
    assert list(legacy["data"]["rlm-public"]["items"]) == sorted(rows)


def test_exports_round_trip_through_both_import_formats(app):
    first, via_ndjson, via_legacy = Db(app), Db(app), Db(app)
    first.import_legacy(DOCUMENT)
    # Objects written by a real sync (not by an import) round-trip too.
    alice = Device(first.client, f"http://x{first.path}", "alice-device")
    alice.login(ALICE)
    alice.sync([alice.op("items", "insert", ["itmSynced"], "t1",
                         values=[{"id": "itmSynced", "title": "by sync", "realmId": REALM,
                                  "owner": ALICE, "map": tson.TMap([[1, "one"]])}])])

    lines = first.ndjson()
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    answer = via_ndjson.post("/import/stream", body, content_type="application/x-ndjson")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    legacy = first.legacy()
    via_legacy.import_legacy(tson.loads(json.dumps(legacy)))

    for copy in (via_ndjson, via_legacy):
        copied = copy.ndjson()
        assert objects_of(copied) == objects_of(lines)
        for kind in ("schema", "roles", "demoUsers"):
            assert meta_of(copied)[kind] == meta_of(lines)[kind]
        assert copy.legacy() == legacy
        with app.extensions["dxc"].router.shard_for(copy.id).transaction() as connection:
            members = AccessIndex(connection, copy.id).members_of([REALM])
        assert {(m.member_id, m.user_id, m.roles) for m in members} == {
            ("mmbAlice", ALICE, "[]"), ("mmbBob", BOB, '["editor"]')}
    assert any(o["id"] == "itmSynced" for o in objects_of(lines))


def test_databases_are_isolated(app):
    one, two = Db(app), Db(app)
    one.import_legacy(DOCUMENT)
    assert objects_of(two.ndjson()) == [] and meta_of(two.ndjson())["demoUsers"]["users"] == {}
    foreign = one.token()
    assert two.get("/export/stream", token=foreign).status_code == 401
    assert two.post("/import", b"{}", token=foreign).status_code == 401
    assert two.object_count() == 0
    missing = one.client.get("/zunknown1/export/stream",
                             headers={"Authorization": f"Bearer {foreign}"})
    assert missing.status_code == 404


def test_flask_dxc_export_writes_files_that_flask_dxc_import_reads(app, tmp_path):
    source, target = Db(app), Db(app)
    source.import_legacy(DOCUMENT)
    legacy_file, ndjson_file = tmp_path / "db.json", tmp_path / "db.ndjson"
    url = source.services.settings.database_url_for(source.id)
    for args in ([str(legacy_file)], [str(ndjson_file), "--ndjson"]):
        result = invoke(app, ["dxc", "export", *args, "--db", url])
        assert result.exit_code == 0, result.output
    assert json.loads(legacy_file.read_text()) == source.legacy()
    lines = [json.loads(line) for line in ndjson_file.read_text().splitlines()]
    assert objects_of(lines) == objects_of(source.ndjson())

    imported = invoke(app, ["dxc", "import", str(legacy_file), "--db",
                                   source.services.settings.database_url_for(target.id)])
    assert imported.exit_code == 0, imported.output
    assert "2 demo users, 1 roles, 8 objects" in imported.output
    assert target.legacy() == source.legacy()
    third = Db(app)
    from_ndjson = invoke(app, ["dxc", "import", str(ndjson_file), "--db",
                               source.services.settings.database_url_for(third.id)])
    assert from_ndjson.exit_code == 0, from_ndjson.output
    assert third.legacy() == source.legacy()


def invoke(app, args: list[str]):
    """Run ``flask dxc …`` in-process, as the ``flask`` command would (in an app context)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=args)


KEYED: dict[str, Any] = {
    "schema": {"books": "@ref, title", "pairs": "[a+b], c"},
    "data": {ALICE: {
        "books": {"bok1": {"title": "one", "owner": ALICE},
                  "bok2": {"ref": "bok2", "title": "two", "owner": ALICE}},
        "pairs": {'["x",1]': {"c": 3, "owner": ALICE}, '[ "y" , 2 ]': {"c": 4, "owner": ALICE}},
    }},
}


def test_key_paths_other_than_id_round_trip_without_a_stray_id(app):
    first, via_ndjson, via_legacy = Db(app), Db(app), Db(app)
    first.import_legacy(KEYED)
    lines = first.ndjson()
    assert meta_of(lines)["schema"]["tables"] == {"books": "@ref", "pairs": "[a+b]"}
    assert {(o["table"], o["id"]): o["data"] for o in objects_of(lines)} == {
        ("books", "bok1"): {"title": "one", "owner": ALICE, "realmId": ALICE, "ref": "bok1"},
        ("books", "bok2"): {"ref": "bok2", "title": "two", "owner": ALICE, "realmId": ALICE},
        # A compound key is stored as the client encodes it, its parts set from the key.
        ("pairs", '["x",1]'): {"c": 3, "owner": ALICE, "realmId": ALICE, "a": "x", "b": 1},
        ("pairs", '["y",2]'): {"c": 4, "owner": ALICE, "realmId": ALICE, "a": "y", "b": 2},
    }
    legacy = first.legacy()
    assert legacy["schema"] == {"books": "@ref", "pairs": "[a+b]"}

    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    answer = via_ndjson.post("/import/stream", body, content_type="application/x-ndjson")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    via_legacy.import_legacy(tson.loads(json.dumps(legacy)))
    for copy in (via_ndjson, via_legacy):
        copied = copy.ndjson()
        assert objects_of(copied) == objects_of(lines)
        assert meta_of(copied)["schema"] == meta_of(lines)["schema"]
        assert copy.legacy() == legacy
        assert not any("id" in o["data"] for o in objects_of(copied))

    # Data without a schema goes by the key path the database already knows.
    again = {"data": {ALICE: {"books": {"bok3": {"title": "three", "owner": ALICE}}}}}
    first.import_legacy(again)
    third = next(o for o in objects_of(first.ndjson()) if o["id"] == "bok3")
    assert third["data"]["ref"] == "bok3" and "id" not in third["data"]


@pytest.mark.parametrize("key", ['["x"]', '["x",1,2]', "plain", '["x",{"a":1}]'])
def test_a_compound_key_that_does_not_fit_changes_nothing(db, key):
    document = {"schema": {"pairs": "[a+b]"}, "data": {ALICE: {"pairs": {key: {"c": 1}}}}}
    answer = db.post("/import", tson.dumps(document).encode())
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert "pairs" in answer.get_json()["message"]
    assert db.object_count() == 0 and db.control_rows() == (0, 0)


def test_the_changes_export_carries_revisions_deletions_and_its_end(db):
    db.import_legacy(DOCUMENT)
    db.import_legacy({"data": {ALICE: {"items": {"itmMine": None}}}})  # a deletion
    lines = db.ndjson("?since=0")
    header, end = lines[0], lines[-1]
    assert header["type"] == "header" and end == {"type": "end", "revision": header["revision"]}
    head = int(header["revision"].split(":")[1])
    changes = objects_of(lines)
    assert [c["rev"] for c in changes] == sorted(c["rev"] for c in changes)
    deleted = next(c for c in changes if c["id"] == "itmMine")
    assert deleted["data"] is None and deleted["rev"] == head
    assert all(c["owner"] == c["data"].get("owner") for c in changes if c["data"] is not None)
    assert header["counts"]["items"] == sum(
        1 for c in changes if c["table"] == "items" and c["data"] is not None
    )
    assert objects_of(db.ndjson(f"?since={head}")) == []
    later = objects_of(db.ndjson(f"?since={head - 1}"))
    assert [c["id"] for c in later] == ["itmMine"]


@pytest.mark.parametrize("since", ["x", "-1", "1.5", "9" * 30])
def test_a_bad_since_is_a_400(db, since):
    assert db.get(f"/export/stream?since={since}").status_code == 400
