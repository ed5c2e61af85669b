"""Y.js compaction end to end: the real dexie-cloud-addon with y-dexie and yjs (Node) against
the real server (gunicorn + gevent), on SQLite and PostgreSQL. The server compacts by itself
while a device edits (a low DXC_Y_COMPACT_AFTER), the test compacts what is left, and the
devices keep converging; a device that joins later downloads the compacted document.
See node/scenarios/yjs_compaction.mjs.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dxc.storage import schema
from tests.e2e.runner import TIMEOUT
from tests.e2e.test_sync_e2e import USER, assert_clean_log, db_id_of, scenario

EDITS = 80


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"DXC_Y_COMPACT_AFTER": "20", "DXC_Y_COMPACT_EVERY": "1"}


def stored(server, db_id: str) -> int:
    table = schema.y_updates
    with server.services.router.shard_for(db_id).transaction(read_only=True) as connection:
        return connection.scalar(
            select(func.count()).select_from(table).where(table.c.db_id == db_id)
        )


def test_compacted_documents_stay_the_same_for_old_and_new_devices(server, tmp_path: Path):
    db_url = server.create_database(demo_users=(USER,))
    db_id = db_id_of(db_url)
    signals = tmp_path / "signals"
    signals.mkdir()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = scenario(
                server, "yjs_compaction", timeout=TIMEOUT + 120, databaseUrl=db_url,
                user=USER, signalDir=str(signals), edits=EDITS,
            )
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    while thread.is_alive() and not (signals / "edited").exists():
        thread.join(0.2)
    if "error" in outcome:
        raise outcome["error"]
    before = stored(server, db_id)
    server.services.ycompaction.compact(db_id, 1)
    after = stored(server, db_id)  # the devices may store an update meanwhile
    (signals / "compacted").write_text("")
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    at_end = stored(server, db_id)

    assert re.search(r"compacted \d+ Y update", server.log()), "the server compacted by itself"
    assert "not compacted" not in server.log()
    assert before < EDITS, "the server had compacted some updates already"
    assert after <= 3, f"{after} updates left of {before}"
    final = result["final"]
    assert final["a"] == final["b"], "the old device converged after the compaction"
    assert final["a"] == f"A-after {result['before']} B-after", "no edit lost or doubled"
    assert result["late"]["downloads"] >= 1
    assert result["late"]["text"] == final["a"], "the new device read the compacted document"
    # The new device downloaded the merged update and the few edits after it. (Its table
    # of updates may hold more rows later, as each opening of the document may bring them
    # again, and a busy machine makes the test open it more often.)
    assert result["late"]["downloaded"] <= after + 6, result["late"]
    assert at_end <= after + 6, (
        f"{before} stored before the compaction, {after} after, {at_end} at the end; "
        f"the new device: {result['late']}"
    )
    assert_clean_log(server)
