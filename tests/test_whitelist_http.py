"""The origin whitelist and the CORS it drives, in-process, on SQLite and PostgreSQL (B3.10, B7).

These apps run with ``DXC_CORS_ORIGINS`` empty (as in production), so each
database's whitelist alone decides which browser origins get CORS headers;
the development default (``DXC_CORS_ORIGINS`` unset: pages on this machine)
is tested on its own, over HTTP and on the socket.
"""

from __future__ import annotations

import time

import pytest

from dxc.access.origins import OriginCache
from dxc.config import load_settings
from dxc.manage import databases
from dxc.manage.databases import ADMIN_SCOPES
from dxc.manage.whitelist import FORM_MESSAGE, whitelist
from tests.conftest import server_environment
from tests.test_live_server import Socket, socket_url

APP = "https://app.example.com"


@pytest.fixture
def app(make_app):
    return make_app(cors_origins=())  # only the whitelists decide


@pytest.fixture
def created(app):
    return databases.create_database(app.extensions["dxc"], owner_email="owner@example.com")


def auth(client, created, scopes=ADMIN_SCOPES) -> dict:
    answer = client.post(f"/{created.db_id}/token", json={
        "grant_type": "client_credentials", "client_id": created.client_id,
        "client_secret": created.client_secret, "scopes": list(scopes)})
    return {"Authorization": f"Bearer {answer.get_json()['accessToken']}"}


def post(client, created, body, headers=None):
    return client.post(f"/{created.db_id}/whitelist", json=body,
                       headers=headers or auth(client, created))


def listed(client, created) -> list[str]:
    answer = post(client, created, {})
    assert answer.status_code == 200
    return answer.get_json()


def test_add_list_delete(app, created):
    client = app.test_client()
    assert listed(client, created) == []
    assert post(client, created, {"origin": "HTTPS://App.Example.COM/"}).get_json() == 1
    assert post(client, created, {"origin": APP}).get_json() == 0
    for origin in ("http://localhost:3000", "capacitor://localhost", "ionic://localhost",
                   "chrome-extension://abcdefgh", "app:My Notes", "https://localhost"):
        assert post(client, created, {"origin": origin}).get_json() == 1, origin
    assert listed(client, created) == sorted([
        APP, "http://localhost:3000", "capacitor://localhost", "ionic://localhost",
        "chrome-extension://abcdefgh", "app:My Notes", "https://localhost"])
    assert post(client, created, {"origin": APP + "/", "delete": "true"}).get_json() == 1
    assert post(client, created, {"origin": APP, "delete": True}).get_json() == 0
    assert APP not in listed(client, created)
    # The CLI lists with an empty body; a body-less POST lists too.
    assert client.post(f"/{created.db_id}/whitelist",
                       headers=auth(client, created)).get_json() == listed(client, created)


@pytest.mark.parametrize("origin", [
    "http://example.com", "https://example.com/path", "ftp://x", "example.com", "*",
    "http://127.0.0.1:8080",
])
def test_validation_message_and_force(app, created, origin):
    client = app.test_client()
    refused = post(client, created, {"origin": origin})
    assert refused.status_code == 400 and refused.get_json()["message"] == FORM_MESSAGE
    assert listed(client, created) == []
    assert post(client, created, {"origin": origin, "force": "true"}).get_json() == 1
    assert listed(client, created) == [origin.rstrip("/")]


@pytest.mark.parametrize("body", [
    [], "x", {"origin": 5}, {"origin": "  "}, {"delete": "true"}, {"origin": APP, "delete": "yes"},
    {"origin": APP, "force": 1}, {"origin": "https://" + "a" * 600 + ".com"},
    {"origin": "app:bad\nname"},
])
def test_bad_bodies_change_nothing(app, created, body):
    client = app.test_client()
    assert post(client, created, body).status_code == 400
    assert listed(client, created) == []


def test_needs_manage_db(app, created):
    client = app.test_client()
    assert client.post(f"/{created.db_id}/whitelist", json={}).status_code == 401
    weak = auth(client, created, ["ACCESS_DB", "GLOBAL_WRITE"])
    refused = post(client, created, {"origin": APP}, headers=weak)
    assert refused.status_code == 403 and "MANAGE_DB" in refused.get_json()["message"]
    assert listed(client, created) == []


def preflight(client, path: str, origin: str):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})


def test_cors_follows_each_databases_whitelist(app, created):
    client = app.test_client()
    other = databases.create_database(app.extensions["dxc"])
    sync, other_sync = f"/{created.db_id}/sync", f"/{other.db_id}/sync"
    assert "Access-Control-Allow-Origin" not in preflight(client, sync, APP).headers
    post(client, created, {"origin": APP})

    allowed = preflight(client, sync, APP)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == APP
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert "Origin" in allowed.headers["Vary"]
    answer = client.post(f"/{created.db_id}/token", json={}, headers={"Origin": APP})
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert "Ratelimit-Remaining" in answer.headers["Access-Control-Expose-Headers"]
    # Not another origin, not another database, not the service API.
    for path, origin in ((sync, "https://evil.example"), (other_sync, APP),
                         ("/service/token", APP), ("/health", APP)):
        refused = preflight(client, path, origin)
        assert "Access-Control-Allow-Origin" not in refused.headers, path
        assert "Access-Control-Allow-Methods" not in refused.headers
    # Requests without Origin (the CLI, servers) are not concerned.
    assert "Access-Control-Allow-Origin" not in client.post(f"/{other.db_id}/token",
                                                            json={}).headers
    post(client, created, {"origin": APP, "delete": "true"})  # takes effect at once
    assert "Access-Control-Allow-Origin" not in preflight(client, sync, APP).headers


def test_app_entries_admit_file_and_null_origins(app, created):
    client = app.test_client()
    sync = f"/{created.db_id}/sync"
    for origin in ("null", "file://"):
        assert "Access-Control-Allow-Origin" not in preflight(client, sync, origin).headers
    post(client, created, {"origin": "app:Notes"})
    for origin in ("null", "file://"):
        assert preflight(client, sync, origin).headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("server_env", [{"DXC_CORS_ORIGINS": ""}])
def test_websocket_upgrade_checks_the_whitelist(server):
    """The real server: browsers send Origin on WebSockets, where CORS does not apply."""
    created = databases.create_database(server.services)
    url = socket_url(created.url)
    refused = Socket(url, origin=APP)
    assert refused.status == 403
    refused.close()
    assert whitelist(server.services, created.db_id, {"origin": APP}) == 1
    # Each worker process reads the whitelist again after OriginCache.TTL_SECONDS.
    deadline = time.monotonic() + 10 * OriginCache.TTL_SECONDS
    while True:
        admitted = Socket(url, origin=APP)
        admitted.close()
        if admitted.status == 101 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert admitted.status == 101
    without_origin = Socket(url)
    assert without_origin.status == 101
    without_origin.close()


def test_installation_wide_origins(make_app):
    app = make_app(cors_origins=("https://admin.example/",))
    created = databases.create_database(app.extensions["dxc"])
    client = app.test_client()
    for path in (f"/{created.db_id}/sync", "/service/token"):
        answer = preflight(client, path, "https://admin.example")
        assert answer.headers["Access-Control-Allow-Origin"] == "https://admin.example"
    assert "Access-Control-Allow-Origin" not in preflight(
        client, f"/{created.db_id}/sync", APP).headers


#: Pages a developer serves next to the server: admitted by default in development.
LOCAL_PAGES = ("http://localhost:5173", "https://localhost", "http://127.0.0.1:8080",
               "http://[::1]:3000", "HTTP://LocalHost:3000/")
#: Anything else is not, however close it looks.
FOREIGN_PAGES = ("https://evil.example", "http://localhost.evil.example",
                 "http://127.0.0.1.nip.io", "http://evil.example:3000", "http://10.0.0.7:3000",
                 "http://localhost:3000.evil.example", "null", "file://")


def test_development_default_is_this_machines_pages_only(settings, tmp_path):
    assert settings.env == "development" and settings.cors_origins == ("loopback",)
    production = load_settings({**server_environment("sqlite://", tmp_path, 3000),
                                "DXC_ENV": "production"})
    assert production.cors_origins == ()
    chosen = load_settings({**server_environment("sqlite://", tmp_path, 3000),
                            "DXC_CORS_ORIGINS": "https://dev.example, loopback"})
    assert chosen.cors_origins == ("https://dev.example", "loopback")


def test_cors_development_default(make_app):
    """``DXC_CORS_ORIGINS`` unset in development (scripts/serve): a page elsewhere is refused."""
    app = make_app()
    created = databases.create_database(app.extensions["dxc"])
    client = app.test_client()
    for path in (f"/{created.db_id}/sync", "/service/token"):
        for origin in LOCAL_PAGES:
            allowed = preflight(client, path, origin)
            assert allowed.headers.get("Access-Control-Allow-Origin") == origin, (path, origin)
            assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
        for origin in (*FOREIGN_PAGES, APP):
            refused = preflight(client, path, origin)
            assert "Access-Control-Allow-Origin" not in refused.headers, (path, origin)
        answer = client.post(path.replace("/sync", "/token"), json={},
                             headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in answer.headers
    # A whitelisted origin still counts, on its own database.
    post(client, created, {"origin": APP})
    assert preflight(client, f"/{created.db_id}/sync",
                     APP).headers["Access-Control-Allow-Origin"] == APP


def test_loopback_can_be_combined_with_other_origins(make_app):
    app = make_app(cors_origins=("loopback", "https://dev.example"))
    created = databases.create_database(app.extensions["dxc"])
    client = app.test_client()
    sync = f"/{created.db_id}/sync"
    for origin in ("https://dev.example", "http://localhost:4200"):
        assert preflight(client, sync, origin).headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Origin" not in preflight(client, sync, APP).headers


def test_websocket_development_default(server):
    """The real server as scripts/serve runs it (no DXC_ENV, no DXC_CORS_ORIGINS)."""
    created = databases.create_database(server.services)
    url = socket_url(created.url)
    for origin, status in (("https://evil.example", 403), ("http://localhost.evil.example", 403),
                           ("http://localhost:5173", 101), ("http://127.0.0.1:8080", 101),
                           (None, 101)):
        socket = Socket(url, origin=origin)
        assert socket.status == status, origin
        socket.close()
