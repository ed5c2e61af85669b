"""The REST data API with the real dexie-cloud-addon, on SQLite and PostgreSQL.

An API client's ``client_credentials`` token (from ``/token``) writes through
``/all`` and ``/public``; the addon syncs those objects (one of them live, over
its WebSocket); what the addon wrote is readable through ``/my`` with the
addon's own token and through ``/all``; and ``DELETE /users/<id>`` with the
user's own token erases their private data from the server and, on the next
pull, from the device. Runs ``node/scenarios/rest.mjs``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from dxc.manage import databases
from dxc.manage.importer import import_document
from tests.e2e.test_sync_e2e import assert_clean_log, scenario, stored_texts, titles

USER = "alice@demo.local"


def call(url: str, method: str = "GET", body: Any = None, token: str | None = None):
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(), method=method
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, json.loads(text) if text else None


def test_rest_writes_reach_the_addon_and_a_user_can_delete_their_account(server):
    created = databases.create_database(server.services)
    import_document(server.services, created.db_id, {"demoUsers": {USER: {}}})
    url = created.url
    status, tokens = call(
        f"{url}/token",
        "POST",
        {
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
            "scopes": ["ACCESS_DB", "GLOBAL_READ", "GLOBAL_WRITE"],
        },
    )
    assert status == 200, tokens
    admin = tokens["accessToken"]
    # A table exists once a client synced it or an import declared it (as here).
    status, refused = call(f"{url}/all/items", "POST", {"realmId": USER, "title": "x"}, admin)
    assert status == 404, refused
    assert refused["message"] == f"Table 'items' was not found in database '{created.db_id}'"
    import_document(server.services, created.db_id, {"schema": {"items": "@id, title"}})

    status, posted = call(
        f"{url}/all/items", "POST", [{"realmId": USER, "title": "posted before", "n": 1}], admin
    )
    assert status == 200 and posted[0]["id"].startswith("itm"), posted
    status, public = call(f"{url}/public/items", "POST", {"title": "public news"}, admin)
    assert status == 200 and public["realmId"] == "rlm-public"

    result = scenario(server, "rest", databaseUrl=url, userId=USER, adminToken=admin)

    assert titles(result["initial"]) == ["posted before", "public news"]
    assert result["livePosted"]["title"] == "posted live" and result["livePosted"]["n"] == 7
    assert result["my"]["status"] == 200
    assert titles(result["my"]["body"]) == [
        "from the addon", "posted before", "posted live", "public news",
    ]
    addon = result["all"]["body"]
    assert result["all"]["status"] == 200 and addon["id"] == result["addonId"]
    assert addon["tags"] == ["a", "b"] and addon["realmId"] == USER and addon["owner"] == USER
    assert [i["id"] for i in result["filtered"]["body"]] == [result["addonId"]]
    assert titles(result["beforeDelete"]) == [
        "from the addon", "posted before", "posted live", "public news",
    ]

    assert result["deleted"]["status"] == 200, result["deleted"]
    assert titles(result["afterDelete"]) == ["public news"], "the device lost the private data"
    assert call(f"{url}/users/{USER}", token=admin)[0] == 404
    status, remaining = call(f"{url}/all/items", token=admin)
    assert status == 200 and titles(remaining) == ["public news"]
    assert not [t for t in stored_texts(server, url) if "from the addon" in t]
    assert_clean_log(server)
