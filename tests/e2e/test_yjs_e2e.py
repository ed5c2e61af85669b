"""Y.js documents end to end: the real dexie-cloud-addon with y-dexie and yjs (Node) against
the real server (two gunicorn workers), on SQLite and PostgreSQL, with the database's bus and
with Redis between the workers (``server_env`` of test_live_e2e). See node/scenarios/yjs.mjs.
"""

from __future__ import annotations

import ast

import pytest

from tests.e2e.test_live_e2e import CLOSE, server_env  # noqa: F401 (a fixture)
from tests.e2e.test_sync_e2e import OTHER_USER, USER, assert_clean_log, db_id_of, scenario


@pytest.fixture
def db_url(server) -> str:
    return server.create_database(demo_users=(USER, OTHER_USER))


def test_two_devices_edit_one_document_online_and_offline(server, db_url):
    result = scenario(
        server,
        "yjs",
        timeout=150,
        databaseUrl=db_url,
        user=USER,
        outsider=OTHER_USER,
        serverLog=str(server.log_path),
    )
    assert result["workers"]["a"] != result["workers"]["b"], "the sockets share a worker"

    online = result["online"]
    assert online["a"] == online["b"]
    assert "A-online" in online["a"] and "B-online" in online["a"]
    final = result["final"]
    assert final["a"] == final["b"]
    for part in ("A-online", "B-online", "A-offline", "B-offline"):
        assert part in final["a"], f"{part} was lost: {final}"

    assert result["awareness"] == "alice-a", "awareness reached the other device live"
    assert result["outsider"] == {"notes": 0, "updates": 0}
    assert result["late"]["downloads"] >= 1
    assert result["late"]["text"] == final["a"], "the late device downloaded the document"

    assert_clean_log(server)
    log = server.log()
    assert "ignoring a Y frame" not in log, "the client sent a frame we could not read"
    sent: dict[str, int] = {}
    for closed in CLOSE.finditer(log):
        if closed["db"] == db_id_of(db_url):
            for kind, count in ast.literal_eval(closed["sent"]).items():
                sent[kind] = sent.get(kind, 0) + count
    # Sockets still open at the end have not logged yet: only what the reopened devices sent.
    assert sent.get("u-ack", 0) >= 1 and sent.get("aware", 0) >= 1, sent
