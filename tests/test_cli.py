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
