"""``flask dxc`` commands, run as a user runs them, on both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port, server_environment


def flask(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "dxc", *args],
        cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120,
    )


def test_init_create_import(database_url, tmp_path):
    env = server_environment(database_url, tmp_path, free_port())
    work = tmp_path / "app"
    work.mkdir()
    first = flask(env, work, "init-cloud")
    assert first.returncode == 0, first.stderr
    config = json.loads((work / "dexie-cloud.json").read_text())
    keys = json.loads((work / "dexie-cloud.key").read_text())
    assert config["serviceUrl"] == env["DXC_URL"] + "/service"
    assert set(keys[config["dbUrl"]]) == {"clientId", "clientSecret"}
    assert os.stat(work / "dexie-cloud.key").st_mode & 0o777 == 0o600
    assert config["dbUrl"] in first.stdout

    again = flask(env, work, "init-cloud")
    assert again.returncode == 0 and "Already initialised" in again.stdout
    assert json.loads((work / "dexie-cloud.key").read_text()) == keys

    created = flask(env, work, "create", "--json")
    assert created.returncode == 0, created.stderr
    second = json.loads(created.stdout)
    assert second["dbUrl"] != config["dbUrl"]
    assert json.loads((work / "dexie-cloud.json").read_text())["dbUrl"] == second["dbUrl"]
    assert len(json.loads((work / "dexie-cloud.key").read_text())) == 2

    (work / "import.json").write_text(json.dumps({
        "demoUsers": {"alice@demo.local": {}},
        "roles": {"reader": {"displayName": "Reader", "permissions": {}}},
        "data": {"rlm-public": {"items": {"itm1": {"title": "hi"}}}},
    }))
    imported = flask(env, work, "import", "import.json", "--db", config["dbUrl"])
    assert imported.returncode == 0, imported.stderr
    assert "1 demo users, 1 roles, 1 objects" in imported.stdout

    (work / "bad.json").write_text('{"unknown": 1}')
    refused = flask(env, work, "import", "bad.json")
    assert refused.returncode != 0
    assert "unknown import sections" in refused.stderr


def test_a_bad_setting_is_one_line_and_a_failure(tmp_path):
    """No traceback: the line names the setting, for every command and for --help."""
    sqlite = f"sqlite:///{tmp_path / 'dxc.sqlite'}"
    env = server_environment(sqlite, tmp_path, free_port())
    cases = [
        ({"DXC_SECRET": "short"}, ("databases",), "DXC_SECRET"),
        ({"DXC_SECRET": "short"}, ("whitelist", "--help"), "DXC_SECRET"),
        ({"DEXIE_CLOUD": "garbage"}, ("init-cloud",), "DEXIE_CLOUD"),
        ({"DEXIE_CLOUD": f"postgresql://nobody@127.0.0.1:{free_port()}/x"}, ("init-cloud",),
         "DEXIE_CLOUD"),
    ]
    for overrides, args, named in cases:
        done = flask({**env, **overrides}, tmp_path, *args)
        assert done.returncode != 0, (args, done.stdout)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], done.stderr
        assert "Traceback" not in done.stderr


def test_connect_writes_the_files_of_an_existing_database(database_url, tmp_path):
    env = server_environment(database_url, tmp_path, free_port())
    assert flask(env, tmp_path, "init-cloud").returncode == 0
    db_url = json.loads((tmp_path / "dexie-cloud.json").read_text())["dbUrl"]
    sample = tmp_path / "todo-app"

    written = flask(env, tmp_path, "connect", "--dir", str(sample))  # the only database
    assert written.returncode == 0, written.stderr
    config = json.loads((sample / "dexie-cloud.json").read_text())
    assert config == {"serviceUrl": env["DXC_URL"] + "/service", "dbUrl": db_url}
    key = json.loads((sample / "dexie-cloud.key").read_text())[db_url]
    original = json.loads((tmp_path / "dexie-cloud.key").read_text())[db_url]
    assert key["clientId"] != original["clientId"]  # a key of its own, revocable alone
    assert os.stat(sample / "dexie-cloud.key").st_mode & 0o777 == 0o600

    assert flask(env, tmp_path, "create").returncode == 0
    ambiguous = flask(env, tmp_path, "connect", "--dir", str(sample))
    assert ambiguous.returncode == 2 and "give the database URL" in ambiguous.stderr
    assert flask(env, tmp_path, "connect", db_url, "--dir", str(sample)).returncode == 0
    unknown = flask(env, tmp_path, "connect", env["DXC_URL"] + "/znothere1")
    assert unknown.returncode == 1 and "znothere1" in unknown.stderr
