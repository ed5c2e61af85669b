"""``flask dxc databases|users|clients|whitelist``, run as an operator runs them."""

from __future__ import annotations

import json

from app import create_app
from dxc.config import load_settings
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import origins
from tests.conftest import free_port, server_environment
from tests.test_cli import flask


def test_listings_show_each_database_its_own_rows(database_url, tmp_path):
    env = server_environment(database_url, tmp_path, free_port())
    work = tmp_path / "app"
    work.mkdir()
    assert flask(env, work, "init-cloud").returncode == 0
    first = json.loads((work / "dexie-cloud.json").read_text())["dbUrl"]
    second = json.loads(flask(env, work, "create", "--json").stdout)["dbUrl"]
    services = create_app(load_settings(env)).extensions["dxc"]
    import_document(services, second.rsplit("/", 1)[1], {"demoUsers": {"bob@demo.local": {}}})
    with services.control.begin() as connection:
        origins.add_origin(connection, first.rsplit("/", 1)[1], "https://app.example.com")
    services.control.dispose()

    listed = flask(env, work, "databases", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["url"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {first, second}
    assert (rows[first]["users"], rows[second]["users"]) == (0, 1)
    assert rows[first]["clients"] == rows[second]["clients"] == 1
    table = flask(env, work, "databases")
    assert table.stdout.splitlines()[0].split()[:2] == ["url", "shard"]
    assert first in table.stdout and second in table.stdout

    users = flask(env, work, "users", "--db", second, "--json")
    assert [u["userId"] for u in json.loads(users.stdout)] == ["bob@demo.local"]
    assert flask(env, work, "users", "--db", first).stdout.strip() == "No users."

    keys = json.loads((work / "dexie-cloud.key").read_text())
    clients = json.loads(flask(env, work, "clients", "--db", first, "--json").stdout)
    assert [c["clientId"] for c in clients] == [keys[first]["clientId"]]
    assert set(clients[0]["scopes"]) == set(databases.ADMIN_SCOPES)
    assert keys[first]["clientSecret"] not in flask(env, work, "clients", "--db", first).stdout

    # Without --db, the listings use dbUrl of ./dexie-cloud.json (the second database now).
    assert json.loads(flask(env, work, "whitelist", "--json").stdout) == []
    whitelisted = flask(env, work, "whitelist", "--db", first, "--json")
    assert json.loads(whitelisted.stdout) == [{"origin": "https://app.example.com"}]


def test_an_unknown_database_is_an_error(database_url, tmp_path):
    env = server_environment(database_url, tmp_path, free_port())
    assert flask(env, tmp_path, "migrate").returncode == 0
    for command in ("users", "clients", "whitelist"):
        done = flask(env, tmp_path, command, "--db", "http://localhost:3000/znothere1")
        assert done.returncode != 0 and done.stdout == "", (command, done.stdout)
        assert "znothere1" in done.stderr, done.stderr
        refused = flask(env, tmp_path, command)
        assert refused.returncode == 2 and "no --db given" in refused.stderr


def test_every_command_has_help(database_url, tmp_path):
    env = server_environment(database_url, tmp_path, free_port())
    for command in ("databases", "users", "clients", "whitelist"):
        shown = flask(env, tmp_path, command, "--help")
        assert shown.returncode == 0 and "--json" in shown.stdout, shown.stderr


def test_whitelist_adds_and_removes_origins(database_url, tmp_path):
    env = server_environment(database_url, tmp_path, free_port())
    assert flask(env, tmp_path, "init-cloud").returncode == 0

    def listed() -> list[str]:
        rows = json.loads(flask(env, tmp_path, "whitelist", "--json").stdout)
        return [row["origin"] for row in rows]

    added = flask(env, tmp_path, "whitelist", "HTTPS://App.Example.com/")
    assert added.returncode == 0 and "Whitelisted" in added.stdout, added.stderr
    assert "already" in flask(env, tmp_path, "whitelist", "https://app.example.com").stdout
    assert listed() == ["https://app.example.com"]

    refused = flask(env, tmp_path, "whitelist", "ftp://files.example.com")
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert listed() == ["https://app.example.com"]
    assert flask(env, tmp_path, "whitelist", "ftp://files.example.com", "--force").returncode == 0

    removed = flask(env, tmp_path, "whitelist", "https://app.example.com", "--delete")
    assert removed.returncode == 0 and "Removed" in removed.stdout
    assert "was not whitelisted" in flask(
        env, tmp_path, "whitelist", "https://app.example.com", "--delete"
    ).stdout
    assert listed() == ["ftp://files.example.com"]
    assert flask(env, tmp_path, "whitelist", "--delete").returncode == 2
