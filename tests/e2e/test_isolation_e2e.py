"""Several logical databases in one installation are fully isolated.

The real dexie-cloud-addon and the real dexie-cloud CLI, each holding the
credentials of one database, get nothing from the other: not its data, not
its users, not its management endpoints. Every test runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from dxc.manage import databases
from dxc.manage.databases import DatabaseKey
from tests.e2e.cli_driver import run_cli
from tests.e2e.runner import run_scenario

USER = "alice@demo.local"
#: Every endpoint under a database URL that an API client's token may call.
MANAGEMENT_CALLS = [
    ("GET", "clients", None),
    ("POST", "whitelist", {}),
    ("GET", "export/stream", None),
    ("GET", "export", None),
    ("POST", "import", {"data": {}}),
    ("GET", "templates/pull", None),
    ("GET", "all/items", None),
    ("GET", "users", None),
    ("POST", "clear-table", {"table": "items"}),
    ("POST", "delete-db", {}),
]


def call(
    url: str, method: str = "GET", body: object = None, token: str | None = None
) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


def client_token(created: DatabaseKey, url: str | None = None) -> tuple[int, object]:
    """Ask ``url`` (default: the client's own database) for a token with ``created``'s key."""
    return call(f"{url or created.url}/token", "POST", {
        "grant_type": "client_credentials", "client_id": created.client_id,
        "client_secret": created.client_secret, "scopes": ["ACCESS_DB", "MANAGE_DB",
        "GLOBAL_READ", "GLOBAL_WRITE", "DELETE_DB"],
    })


def test_a_users_data_and_token_stay_in_their_database(server):
    url_a = server.create_database(demo_users=(USER,))
    url_b = server.create_database(demo_users=(USER,))
    result = run_scenario("isolation", urlA=url_a, urlB=url_b, user=USER)
    assert [item["title"] for item in result["a"]] == ["only in A"]
    assert [item["title"] for item in result["b"]] == ["only in B"]
    assert result["crossStatus"] == [401, 401]


def test_a_demo_user_of_one_database_is_unknown_to_the_other(server):
    url_a = server.create_database(demo_users=(USER,))
    url_b = server.create_database()
    demo = {"grant_type": "demo", "demo_user": USER, "scopes": ["ACCESS_DB"]}
    status, body = call(f"{url_a}/token", "POST", demo)
    assert (status, body["type"]) == (200, "tokens"), body
    status, body = call(f"{url_b}/token", "POST", demo)
    assert body["type"] == "error" and "not a demo user" in body["message"], (status, body)


def test_an_api_client_manages_only_its_own_database(server, tmp_path):
    a = databases.create_database(server.services)
    b = databases.create_database(server.services)
    status, answer = client_token(a)
    assert status == 200, answer
    token_a = answer["accessToken"]

    for method, path, body in MANAGEMENT_CALLS:
        status, answer = call(f"{b.url}/{path}", method, body, token_a)
        assert status == 401, f"{method} {path} on another database: {status} {answer}"
    status, answer = client_token(a, url=b.url)
    assert status == 401, answer

    # The real CLI, with database A's key filed under database B's URL, is refused too.
    folder = tmp_path / "cli"
    folder.mkdir()
    (folder / "dexie-cloud.json").write_text(json.dumps(
        {"serviceUrl": f"{server.url}/service", "dbUrl": b.url}
    ))
    keys = {b.url: {"clientId": a.client_id, "clientSecret": a.client_secret}}
    (folder / "dexie-cloud.key").write_text(json.dumps(keys))
    code, output = run_cli(folder, "clients")
    assert code != 0 and "401" in output, output

    # With its own key it works, and lists only its own client.
    keys = {b.url: {"clientId": b.client_id, "clientSecret": b.client_secret}}
    Path(folder / "dexie-cloud.key").write_text(json.dumps(keys))
    code, output = run_cli(folder, "clients")
    assert code == 0, output
    assert b.client_id in output and a.client_id not in output
