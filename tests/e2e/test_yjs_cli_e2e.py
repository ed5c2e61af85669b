"""Y.js documents through the real ``dexie-cloud`` CLI 3.0.7: a real device (dexie-cloud-addon
with y-dexie) writes documents, ``export`` puts them into the zip as ``yjs.dcyj``, ``import``
of that zip into a new database brings them back, and a new device there reads the same texts.
One of them belongs to a private-id object (``#prefs``). SQLite and PostgreSQL, gunicorn.
"""

from __future__ import annotations

import zipfile

from dxc.manage.importer import import_document
from tests.e2e.test_sync_e2e import assert_clean_log, scenario
from tests.e2e.test_transfer_cli_e2e import Folder

ALICE = "alice@demo.local"


def test_documents_survive_export_and_import_into_a_new_database(server, tmp_path):
    source = Folder(server, tmp_path / "source")
    import_document(server.services, source.db_id, {"demoUsers": {ALICE: {}}})
    written = scenario(server, "yjs_transfer", timeout=90, databaseUrl=source.url, user=ALICE,
                       mode="write")
    assert written["note"] == "Hello from the source"
    assert written["prefs"] == "my private text"
    again = scenario(server, "yjs_transfer", timeout=90, databaseUrl=source.url, user=ALICE,
                     mode="read", id=written["id"])
    assert (again["note"], again["prefs"]) == (written["note"], written["prefs"]), (
        "another device of the user reads both documents, the private one included")

    output = source.cli("export", "all.zip")
    assert "Traceback" not in output
    with zipfile.ZipFile(source.path / "all.zip") as archive:
        assert sorted(archive.namelist()) == ["data.ndjson", "yjs.dcyj"]
        assert archive.read("yjs.dcyj").startswith(b"DXCYJS01")

    target = Folder(server, tmp_path / "target")
    import_document(server.services, target.db_id, {"demoUsers": {ALICE: {}}})
    (target.path / "all.zip").write_bytes((source.path / "all.zip").read_bytes())
    output = target.cli("import", "all.zip")
    assert "Importing yjs.dcyj" in output
    read = scenario(server, "yjs_transfer", timeout=90, databaseUrl=target.url, user=ALICE,
                    mode="read", id=written["id"])
    assert read["downloads"] >= 1
    assert (read["note"], read["prefs"]) == (written["note"], written["prefs"])

    target.cli("import", "all.zip")  # again: every update is there already and is skipped
    read = scenario(server, "yjs_transfer", timeout=90, databaseUrl=target.url, user=ALICE,
                    mode="read", id=written["id"])
    assert (read["note"], read["prefs"]) == (written["note"], written["prefs"])
    assert_clean_log(server)
