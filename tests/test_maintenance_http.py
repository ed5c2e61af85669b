"""``/delete-db``, ``/undelete-db``, ``/clear-table``, ``/clear-realm`` in-process.

Every test runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dxc.manage import maintenance
from dxc.storage import schema
from dxc.storage.access_index import AccessIndex
from dxc.storage.clock import utcnow
from tests.protocol_client import ALICE, BOB, Device
from tests.test_transfer_http import DOCUMENT, REALM, Db, invoke

CONTROL_TABLES = ("api_clients", "users", "refresh_tokens", "table_schemas", "origins",
                  "templates")
SHARD_TABLES = ("objects", "departures", "revisions", "applied_transactions",
                "consistent_operations", "access_realms", "access_members")


@pytest.fixture
def db(app) -> Db:
    return Db(app)


def post_json(db: Db, url: str, body, token: str | None = None):
    return db.client.post(f"{db.path}{url}", json=body,
                          headers={"Authorization": f"Bearer {token or db.token()}"})


def device(db: Db, user: str) -> Device:
    dev = Device(db.client, f"http://x{db.path}", f"{user}-device")
    dev.login(user)
    dev.sync()
    return dev


def rows_of(db: Db) -> dict[str, int]:
    """How many rows each table holds for ``db`` (control and shard)."""
    counts = {}
    with db.services.control.connect() as connection:
        for name in CONTROL_TABLES:
            table = schema.control_metadata.tables[name]
            counts[name] = connection.scalar(
                select(func.count()).select_from(table).where(table.c.db_id == db.id))
        counts["otps"] = connection.scalar(select(func.count()).select_from(schema.otps)
                                           .where(schema.otps.c.audience == db.id))
        counts["databases"] = connection.scalar(select(func.count()).select_from(
            schema.databases).where(schema.databases.c.id == db.id))
    shard = db.services.router.shard(1)
    with shard.transaction(read_only=True) as connection:
        for name in SHARD_TABLES:
            table = schema.shard_metadata.tables[name]
            counts[name] = connection.scalar(
                select(func.count()).select_from(table).where(table.c.db_id == db.id))
    return counts


# --- delete / undelete ---------------------------------------------------------------------------


def test_soft_delete_warns_every_token_until_undeleted(db):
    db.import_legacy(DOCUMENT)
    refused = post_json(db, "/delete-db", {}, token=db.token(["MANAGE_DB", "GLOBAL_WRITE"]))
    assert refused.status_code == 403 and "DELETE_DB" in refused.get_json()["message"]
    assert db.client.post(f"{db.path}/delete-db", json={}).status_code == 401

    answer = post_json(db, "/delete-db", {}, token=db.token(["DELETE_DB"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    final = (utcnow() + timedelta(days=30)).strftime("%Y-%m-%d")
    assert final in answer.get_json()["message"]

    tokens = db.client.post(f"{db.path}/token", json={
        "grant_type": "client_credentials", "client_id": db.created.client_id,
        "client_secret": db.created.client_secret, "scopes": ["GLOBAL_READ"]}).get_json()
    [alert] = tokens["alerts"]
    assert alert["type"] == "warning" and final in alert["message"]
    alice = Device(db.client, f"http://x{db.path}", "alice")
    assert "alerts" in alice.login(ALICE)
    alice.sync()  # the database keeps working
    assert "itmMine" in alice.state["items"]

    again = post_json(db, "/delete-db", {}, token=db.token(["DELETE_DB"]))
    assert final in again.get_json()["message"]  # a second mark keeps the first date

    assert post_json(db, "/undelete-db", {}, token=db.token(["DELETE_DB"])).status_code == 403
    undone = post_json(db, "/undelete-db", {}, token=db.token(["MANAGE_DB"]))
    assert undone.get_json() == {"message": "Database successfully undeleted."}
    assert "alerts" not in alice.login(ALICE)
    twice = post_json(db, "/undelete-db", {}, token=db.token(["MANAGE_DB"]))
    assert twice.status_code == 409


@pytest.mark.parametrize("body", [{"hard": "yes"}, [1], "text"])
def test_delete_refuses_a_malformed_body(db, body):
    response = post_json(db, "/delete-db", body)
    assert response.status_code == 400
    with db.services.control.connect() as connection:
        assert connection.scalar(select(schema.databases.c.deleted)
                                 .where(schema.databases.c.id == db.id)) is None


def test_hard_delete_removes_every_row_and_the_id(app):
    db, other = Db(app), Db(app)
    for each in (db, other):
        each.import_legacy(DOCUMENT)
        device(each, ALICE).sync()
    db.client.post(f"{db.path}/token", json={"grant_type": "otp", "email": "x@example.com",
                                               "scopes": ["ACCESS_DB"]})
    before = rows_of(other)
    token = db.token()
    answer = post_json(db, "/delete-db", {"hard": True}, token=token)
    assert answer.status_code == 200 and db.id in answer.get_json()["message"]
    assert set(rows_of(db).values()) == {0}
    assert rows_of(other) == before  # the other database is untouched
    for url in ("/token", "/sync", "/import", "/clear-table", "/delete-db"):
        response = db.client.post(f"{db.path}{url}", json={},
                                  headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404, url
    assert db.get("/export/stream", token=token).status_code == 404


def test_purge_removes_databases_after_their_grace_period(app):
    old, recent = Db(app), Db(app)
    for each in (old, recent):
        each.import_legacy(DOCUMENT)
        post_json(each, "/delete-db", {})
    services = old.services
    assert maintenance.purge_expired(services, utcnow() + timedelta(days=29)) == []
    with services.control.begin() as connection:
        connection.execute(schema.databases.update().where(schema.databases.c.id == old.id)
                           .values(deleted=utcnow() - timedelta(days=31)))
    assert maintenance.purge_expired(services) == [old.id]
    assert set(rows_of(old).values()) == {0}
    assert rows_of(recent)["objects"] > 0


# --- clear-table / clear-realm -------------------------------------------------------------------


def test_clear_table_deletes_on_clients_at_their_next_sync(db):
    db.import_legacy(DOCUMENT)
    alice = device(db, ALICE)
    assert set(alice.state["items"]) == {"itmPub", "itmShared", "itmMine"}
    refused = post_json(db, "/clear-table", {"table": "items"}, token=db.token(["GLOBAL_READ"]))
    assert refused.status_code == 403 and "GLOBAL_WRITE" in refused.get_json()["message"]

    answer = post_json(db, "/clear-table", {"table": "items"}, token=db.token(["GLOBAL_WRITE"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["deletedCount"] == 3 and "items" in answer.get_json()["message"]
    alice.sync()
    assert alice.state["items"] == {}
    left = {(o["table"], o["id"]) for o in db.ndjson() if "type" not in o}
    assert ("notes", "n1") in left and not any(table == "items" for table, _ in left)
    again = post_json(db, "/clear-table", {"table": "items"})
    assert again.get_json()["deletedCount"] == 0


@pytest.mark.parametrize("body, status", [
    ({"table": "nothing"}, 404), ({}, 400), ({"table": ""}, 400), ({"table": 5}, 400),
    ([1], 400),
])
def test_clear_table_refuses_unknown_tables_and_bad_bodies(db, body, status):
    db.import_legacy(DOCUMENT)
    before = db.ndjson()
    response = post_json(db, "/clear-table", body)
    assert response.status_code == status, response.get_data(as_text=True)
    assert db.ndjson()[1:] == before[1:]


def test_clear_realm_removes_objects_members_roles_and_the_realm(db):
    db.import_legacy(DOCUMENT)
    bob = device(db, BOB)
    assert "itmShared" in bob.state["items"] and REALM in bob.last_pull["realms"]
    answer = post_json(db, "/clear-realm", {"realmId": REALM}, token=db.token(["GLOBAL_WRITE"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"message": f"Realm '{REALM}' cleared: 5 objects deleted."}
    bob.sync()
    # The realm left Bob's realm set: the client drops its objects itself (spec A10).
    assert REALM not in bob.last_pull["realms"]
    with db.services.router.shard_for(db.id).transaction(read_only=True) as connection:
        index = AccessIndex(connection, db.id)
        assert index.realm(REALM) is None and index.members_of([REALM]) == []
    remaining = {(o["table"], o["id"]) for o in db.ndjson() if "type" not in o}
    assert not any(key == json.dumps([REALM, "local"]) for _, key in remaining)
    assert ("items", "itmMine") in remaining

    # A realm the client keeps seeing: it gets the deletes.
    public = post_json(db, "/clear-realm", {"realmId": "rlm-public"})
    assert public.status_code == 200, public.get_data(as_text=True)
    bob.sync()
    assert "itmPub" not in bob.state["items"]

    assert post_json(db, "/clear-realm", {"realmId": REALM}).status_code == 404
    assert post_json(db, "/clear-realm", {"realm": REALM}).status_code == 400


def test_flask_dxc_purge_deleted(app):
    db = Db(app)
    post_json(db, "/delete-db", {})
    kept = invoke(app, ["dxc", "purge-deleted"])
    assert kept.exit_code == 0 and "Purged 0 database(s)." in kept.output
    with db.services.control.begin() as connection:
        connection.execute(schema.databases.update().where(schema.databases.c.id == db.id)
                           .values(deleted=utcnow() - timedelta(days=30, seconds=1)))
    purged = invoke(app, ["dxc", "purge-deleted"])
    assert purged.exit_code == 0 and f"Purged 1 database(s): {db.id}" in purged.output
    assert set(rows_of(db).values()) == {0}
