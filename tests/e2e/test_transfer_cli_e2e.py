"""Import, export, clear and delete with the real ``dexie-cloud`` CLI against the real server,
and the real ``dexie-cloud-addon`` seeing the outcome. Every test runs on SQLite and PostgreSQL.

Each database gets its own folder with the ``dexie-cloud.json`` / ``dexie-cloud.key`` that
``flask dxc create --dir`` writes, and the CLI runs there.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from dxc.cli.files import CliFiles
from dxc.manage import databases
from tests.e2e.cli_driver import run_cli
from tests.e2e.runner import ScenarioError, run_scenario

ALICE = "alice@demo.local"
BOB = "bob@demo.local"
REALM = "rlm-team"

DOCUMENT: dict[str, Any] = {
    "$exportMeta": {"note": "stripped by the CLI"},
    "schema": {"items": "@id, title, n, path, [a+b]"},
    "demoUsers": {ALICE: {}, BOB: {}},
    "roles": {"editor": {"displayName": "Editor", "description": "may edit", "sortOrder": 1,
                         "permissions": {"update": {"items": "*"}}}},
    "data": {
        "rlm-public": {"items": {"itmPublic1": {"title": "public one", "n": 1},
                                 "itmPublic2": {"title": "public two", "n": 2}}},
        REALM: {
            "realms": {REALM: {"name": "Team", "owner": ALICE}},
            "members": {"mmbAlice": {"realmId": REALM, "userId": ALICE, "email": ALICE,
                                     "permissions": {"manage": "*"},
                                     "accepted": {"$t": "Date", "v": "2024-01-01T00:00:00.000Z"}},
                        "mmbBob": {"realmId": REALM, "email": BOB, "roles": ["editor"]}},
            "items": {"itmTeam": {"title": "team", "n": 3, "owner": ALICE,
                                  "due": {"$t": "Date", "v": "2025-06-01T12:00:00.000Z"}}},
        },
        ALICE: {"items": {"itmMine": {"title": "mine", "n": 4, "owner": ALICE,
                                      "tags": {"$t": "Set", "v": ["a", "b"]}}}},
    },
}


class Folder:
    """A database of the server and the folder where the CLI is connected to it."""

    def __init__(self, server, path: Path) -> None:
        self.server = server
        created = databases.create_database(server.services)
        self.db_id = created.db_id
        self.url = created.url
        self.path = path
        self.last_zip = path / "none.zip"  # the file of the latest export_zip
        path.mkdir()
        CliFiles(path).add(f"{server.url}/service", created)

    def cli(self, *args: str) -> str:
        code, output = run_cli(self.path, *args)
        log = self.server.log()[-4000:]
        assert code == 0, f"dexie-cloud {' '.join(args)} failed:\n{output}\n{log}"
        return output

    def export_zip(self, *args: str) -> list[dict[str, Any]]:
        name = f"export-{time.monotonic_ns()}.zip"
        output = self.cli("export", name, *args)
        self.last_zip = self.path / name
        with zipfile.ZipFile(self.path / name) as archive:
            assert archive.namelist() == ["data.ndjson"]  # no blobs or Y.js parts here
            text = archive.read("data.ndjson").decode()
        lines = [json.loads(line) for line in text.splitlines() if line]
        assert f"Exported {len(lines)} objects" in output
        return lines

    def export_json(self, flag: str) -> dict[str, Any]:
        name = f"{flag.strip('-')}-{time.monotonic_ns()}.json"
        self.cli("export", name, flag)
        return json.loads((self.path / name).read_text())


def objects_of(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "type" not in line]


def metadata_of(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {line["type"]: {k: v for k, v in line.items() if k not in ("dbId", "exportedAt")}
            for line in lines if "type" in line}


def scenario(server, name: str, **args: Any) -> dict[str, Any]:
    try:
        return run_scenario(name, **args)
    except ScenarioError as error:
        raise ScenarioError(f"{error}\n--- server log (tail) ---\n{server.log()[-6000:]}") from None


class Watcher:
    """The ``transfer`` scenario in a thread: one connected device, one pull per round."""

    def __init__(self, server, url: str, user: str, folder: Path, rounds: int) -> None:
        self.folder = folder
        folder.mkdir()
        self.result: dict[str, Any] = {}
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = scenario(server, "transfer", databaseUrl=url, user=user,
                                       dir=str(folder), rounds=rounds, timeout=120)
            except BaseException as error:  # reported by the test thread
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def state(self, round_: int) -> dict[str, Any]:
        """What the device held after round ``round_`` (waits for it)."""
        ready = self.folder / f"ready-{round_}.json"
        deadline = time.monotonic() + 100
        while not ready.exists():
            if self.error or not self.thread.is_alive() or time.monotonic() > deadline:
                self.thread.join(1)
                raise AssertionError(f"the device never finished round {round_}: {self.error}")
            time.sleep(0.1)
        time.sleep(0.05)  # the file is written in one call; let it land
        return json.loads(ready.read_text())

    def next_round(self, round_: int) -> dict[str, Any]:
        (self.folder / f"go-{round_}").touch()
        return self.state(round_)

    def finish(self) -> None:
        self.thread.join(120)
        if self.error:
            raise self.error


def status_of(url: str) -> int:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def titles(state: dict[str, Any]) -> list[str]:
    return sorted(item["title"] for item in state["items"])


def test_cli_import_export_round_trip_and_a_real_client_sees_the_data(server, tmp_path):
    one = Folder(server, tmp_path / "one")
    (one.path / "seed.json").write_text(json.dumps(DOCUMENT))
    output = one.cli("import", "seed.json")
    assert "Import complete!" in output

    lines = one.export_zip()
    full_zip = one.last_zip
    meta = metadata_of(lines)
    assert meta["schema"]["tables"] == {"items": "@id"} and meta["schema"]["sealed"] is False
    assert meta["demoUsers"]["users"] == {ALICE: {}, BOB: {}}
    assert meta["roles"]["roles"]["editor"]["permissions"] == {"update": {"items": "*"}}
    objects = objects_of(lines)
    assert {(o["realm"], o["table"], o["id"]) for o in objects} == {
        ("rlm-public", "items", "itmPublic1"), ("rlm-public", "items", "itmPublic2"),
        (REALM, "realms", REALM), (REALM, "members", "mmbAlice"), (REALM, "members", "mmbBob"),
        (REALM, "items", "itmTeam"), (ALICE, "items", "itmMine")}
    team = next(o for o in objects if o["id"] == "itmTeam")
    assert team["data"]["due"] == {"$t": "Date", "v": "2025-06-01T12:00:00.000Z"}

    assert one.export_json("--schema") == {"schema": {"items": "@id"}, "sealed": False}
    assert one.export_json("--roles") == {"roles": meta["roles"]["roles"]}
    assert one.export_json("--demoUsers") == {"demoUsers": {ALICE: {}, BOB: {}}}
    legacy = one.export_json("--legacy")
    assert set(legacy["data"]) == {"rlm-public", REALM, ALICE}
    assert legacy["data"][ALICE]["items"]["itmMine"]["tags"] == {"$t": "Set", "v": ["a", "b"]}

    by_table = objects_of(one.export_zip("--table", "items"))
    assert {o["table"] for o in by_table} == {"items", "realms", "members"}
    in_realm = objects_of(one.export_zip("--realmId", REALM))
    assert {o["realm"] for o in in_realm} == {REALM} and len(in_realm) == 4

    # The zip imported into a second database, the legacy file into a third: same exports.
    two = Folder(server, tmp_path / "two")
    (two.path / "db1.zip").write_bytes(full_zip.read_bytes())
    two.cli("import", "db1.zip")
    copied = two.export_zip()
    assert objects_of(copied) == objects
    assert metadata_of(copied) == {**meta, "header": metadata_of(copied)["header"]}
    three = Folder(server, tmp_path / "three")
    (three.path / "legacy.json").write_text(json.dumps(legacy))
    three.cli("import", "legacy.json")
    assert three.export_json("--legacy") == legacy
    assert objects_of(three.export_zip()) == objects

    # A real client of the copy sees what the seed file holds.
    alice = scenario(server, "transfer", databaseUrl=two.url, user=ALICE,
                     dir=str(tmp_path), rounds=1)["rounds"][0]
    assert titles(alice) == ["mine", "public one", "public two", "team"]
    mine = next(i for i in alice["items"] if i["title"] == "mine")
    assert mine["tags"] == {"Set": ["a", "b"]} and mine["id"] == "itmMine"
    assert REALM in alice["realms"] and alice["members"] == ["mmbAlice", "mmbBob"]


def test_cli_clear_realm_and_clear_table_reach_a_connected_client(server, tmp_path):
    db = Folder(server, tmp_path / "db")
    (db.path / "seed.json").write_text(json.dumps(DOCUMENT))
    db.cli("import", "seed.json")
    watcher = Watcher(server, db.url, ALICE, tmp_path / "alice", rounds=3)
    try:
        before = watcher.state(0)
        assert titles(before) == ["mine", "public one", "public two", "team"]
        assert REALM in before["realms"]

        output = db.cli("clear-realm", REALM, "--yes")
        assert f"Realm '{REALM}' cleared: 4 objects deleted." in output
        after_realm = watcher.next_round(1)
        assert titles(after_realm) == ["mine", "public one", "public two"]
        assert REALM not in after_realm["realms"] and after_realm["members"] == []

        output = db.cli("clear-table", "items", "--yes")
        assert "Deleted 3 object(s)." in output
        assert titles(watcher.next_round(2)) == []
    finally:
        (watcher.folder / "go-1").touch()
        (watcher.folder / "go-2").touch()
        watcher.finish()
    assert objects_of(db.export_zip()) == []

    code, output = run_cli(db.path, "clear-table", "no-such-table", "--yes")
    assert code != 0 and "404" in output


def test_cli_soft_delete_warns_undelete_restores_hard_delete_removes(server, tmp_path):
    db = Folder(server, tmp_path / "db")
    (db.path / "seed.json").write_text(json.dumps({"demoUsers": {ALICE: {}}}))
    db.cli("import", "seed.json")

    output = db.cli("delete", db.url, "--yes")
    assert "marked for deletion and will be deleted on" in output
    warned = db.cli("export", "--demoUsers")
    assert "WARNING:" in warned and "will be deleted on" in warned
    assert db.export_json("--demoUsers") == {"demoUsers": {ALICE: {}}}  # still working

    assert "Database successfully undeleted." in db.cli("undelete", db.url)
    assert "WARNING" not in db.cli("export", "--demoUsers")

    output = db.cli("delete", db.url, "--hard", "--yes")
    assert f"Database {db.db_id} was deleted." in output
    keys = json.loads((db.path / "dexie-cloud.key").read_text())
    assert db.url not in keys
    # Every worker process answers 404 once its cached placement expires (a few seconds).
    deadline = time.monotonic() + 20
    statuses: set[int] = set()
    while time.monotonic() < deadline:
        statuses = {status_of(f"{db.url}/token") for _ in range(6)}
        if statuses == {404}:
            break
        time.sleep(0.5)
    assert statuses == {404}


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"REDIS_URL": ""}
