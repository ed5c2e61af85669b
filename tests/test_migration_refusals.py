"""What issue 14's endpoints answer when things are wrong, on SQLite and PostgreSQL:
``/export/logins`` with a missing, bad, other-database or non-admin token (clean
401/403 JSON), before the database moved (409); and a source whose target is down
or silent (a clear JSON 503 with Retry-After, for a plain request and a streamed one,
on a real gunicorn + gevent server and in-process)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from dxc.api import forward
from dxc.auth.scopes import ACCESS_DB, ADMIN_SCOPES, GLOBAL_READ, GLOBAL_WRITE
from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage import redirects
from dxc.storage.objects import ObjectStore
from tests.conftest import free_port
from tests.protocol_client import ALICE
from tests.test_yjs_transfer_http import admin


@pytest.fixture
def server_env() -> dict[str, str]:
    return {}


def new_database(services) -> str:  # type: ignore[no-untyped-def]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})
    return created.db_id


def redirect(services, db_id: str, target_url: str) -> None:  # type: ignore[no-untyped-def]
    """What ``flask dxc redirect`` records (without its check that the target answers)."""
    with services.router.shard_for(db_id).transaction() as connection:
        final = ObjectStore(connection, db_id).freeze()
    with services.control.begin() as connection:
        redirects.record(connection, db_id, target_url, final)


def assert_json_error(response, status: int, error: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json()["error"] == error and response.get_json()["message"]


def test_export_logins_refuses_every_token_but_an_owners_of_a_database_that_moved(app):
    services = app.extensions["dxc"]
    db_id, other = new_database(services), new_database(services)
    client = app.test_client()

    def logins(headers: dict[str, str] | None = None, db: str = db_id):  # type: ignore[no-untyped-def]
        return client.get(f"/{db}/export/logins", headers=headers or {})

    assert_json_error(logins(), 401, "unauthorized")
    assert_json_error(logins({"Authorization": "Bearer not-a-token"}), 401, "invalid_token")
    assert_json_error(logins({"Authorization": "Basic abc"}), 401, "invalid_token")
    assert_json_error(logins(admin(app, other, *ADMIN_SCOPES)), 401, "invalid_token")
    for scopes in ((ACCESS_DB,), (GLOBAL_READ,), (ACCESS_DB, GLOBAL_READ, GLOBAL_WRITE)):
        refused = logins(admin(app, db_id, *scopes))
        assert_json_error(refused, 403, "forbidden")
        assert "MANAGE_DB" in refused.get_json()["message"]
    assert_json_error(logins(admin(app, "nosuchdb", *ADMIN_SCOPES), "nosuchdb"), 404,
                      "unknown_database")

    owner = admin(app, db_id, *ADMIN_SCOPES)
    assert_json_error(logins(owner), 409, "conflict")  # it still takes writes here
    redirect(services, db_id, "http://127.0.0.1:9/elsewhere")
    answer = logins(owner)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.get_json()["audience"] == db_id and "tokenKey" in answer.get_json()


@pytest.fixture
def silent_target() -> Iterator[str]:
    """A database URL at a port that takes connections and never answers."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}/zsilent"


def test_a_source_whose_target_is_silent_answers_503_json(app, silent_target, monkeypatch):
    monkeypatch.setattr(forward, "TIMEOUT", (1, 1))
    services = app.extensions["dxc"]
    db_id = new_database(services)
    redirect(services, db_id, silent_target)
    services.relocations.reload()
    client = app.test_client()
    for response in (client.post(f"/{db_id}/sync", data=b"{}"),
                     client.get(f"/{db_id}/export/stream", headers=admin(app, db_id))):
        assert_json_error(response, 503, "database_moving")
        assert response.headers["Retry-After"]
        assert "does not answer" in response.get_json()["message"]


def test_a_source_whose_target_is_down_answers_503_json_on_a_real_server(server):
    services = server.services
    db_id = new_database(services)
    token = admin(_app_of(services), db_id)["Authorization"]
    redirect(services, db_id, f"http://127.0.0.1:{free_port()}/zdown")  # nothing listens

    def sync() -> requests.Response:
        return requests.post(f"{server.url}/{db_id}/sync", data=b"{}", timeout=60,
                             headers={"Authorization": token})

    deadline = time.monotonic() + 30
    while (answer := sync()).json().get("error") != "database_moving" or (
        "does not answer" not in answer.json()["message"]  # forwarding starts within 2 s
    ):
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)
    for response in (answer, requests.get(f"{server.url}/{db_id}/export/stream", timeout=60,
                                          headers={"Authorization": token})):
        assert response.status_code == 503, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Retry-After"]
        assert response.json()["error"] == "database_moving"
    assert "Traceback" not in server.log()


def _app_of(services):  # type: ignore[no-untyped-def]
    """A Flask app over ``services``' settings, to issue tokens with the same key."""
    from app import create_app

    return create_app(services.settings)
