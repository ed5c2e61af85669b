"""Request ids, JSON access lines without secrets, and the admin-only RQ dashboard."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging

import pytest
import redis

from app import create_app
from dxc import logs
from dxc.config import ConfigError, load_settings
from dxc.manage import databases
from dxc.manage.importer import import_document
from tests.protocol_client import ALICE, Device, item

REDIS_URL = "redis://127.0.0.1:6379/11"
ADMIN_PASSWORD = "admin-pass-for-tests"


def json_lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


class Output:
    """What the server's log handler (``dxc.logs.configure_logging``) writes from now on."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        (handler,) = [h for h in logging.getLogger().handlers if getattr(h, "dxc", False)]
        handler.setStream(self.buffer)

    def read(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


@pytest.fixture
def json_app(services):
    """An app logging JSON."""
    app = create_app(dataclasses.replace(services.settings, log_format="json"))
    yield app
    logs.configure_logging(services.settings.log_format)


def test_a_sane_request_id_is_kept_and_others_are_replaced(app):
    client = app.test_client()
    kept = client.get("/health", headers={"X-Request-Id": "lb-1234:abc.DEF"})
    assert kept.headers["X-Request-Id"] == "lb-1234:abc.DEF"
    for bad in ("two words", "x" * 129, "a;b", "<script>"):
        answer = client.get("/health", headers={"X-Request-Id": bad})
        assert answer.headers["X-Request-Id"] != bad
        assert len(answer.headers["X-Request-Id"]) == 32
    first, second = client.get("/health"), client.get("/nowhere")
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    assert second.status_code == 404, "errors carry the id too"


def test_every_line_of_a_request_names_its_id(json_app, services):
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})
    alice = Device(json_app.test_client(), created.url, "device-1")
    alice.login(ALICE)
    alice.client.environ_base["HTTP_X_REQUEST_ID"] = "sync-request-42"
    output = Output()
    alice.sync([alice.op("items", "insert", ["itm1"], "tx1", values=[item("itm1")])])
    lines = json_lines(output.read())
    mine = [line for line in lines if line.get("request_id") == "sync-request-42"]
    assert {line["logger"] for line in mine} >= {"dxc.api.database", "dxc.access"}, lines
    access = next(line for line in mine if line["logger"] == "dxc.access")
    assert access["method"] == "POST"
    assert access["path"] == f"/{created.db_id}/sync"
    assert access["status"] == 200
    assert access["db_id"] == created.db_id
    assert access["endpoint"] == "database.sync"
    assert isinstance(access["duration_ms"], float)
    assert {"time", "level", "process", "message"} <= set(access)
    logging.getLogger("tests").info("outside any request")
    line = json_lines(output.read())[-1]
    assert line["message"] == "outside any request" and "request_id" not in line


def test_secrets_never_reach_the_log(json_app, services):
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})
    client = json_app.test_client()
    output = Output()
    answer = client.post(f"/{created.db_id}/token",
                         json={"grant_type": "demo", "demo_user": ALICE, "scopes": ["ACCESS_DB"]})
    token = answer.get_json()["accessToken"]
    client.get(f"/{created.db_id}/changes?v=2&clientId=c1&token={token}&realmsHash=h",
               headers={"Authorization": f"Bearer {token}"})
    client.get("/users", headers={"Authorization": f"Bearer {token}"})
    client.post("/token", json={"grant_type": "client_credentials", "client_id": "id1",
                                "client_secret": "client-secret-value", "scopes": []})
    client.get("/nowhere?otp=98765432&code=13572468&client_secret=s3cr3t-q&name=visible")
    logging.getLogger("werkzeug").info('"GET /db/changes?token=%s HTTP/1.1" 101 -', token)
    err = output.read()
    assert err
    for secret in (token, token.split(".")[-1], "client-secret-value", "98765432",
                   "13572468", "s3cr3t-q"):
        assert secret not in err
    lines = json_lines(err)
    changes = next(line for line in lines if line.get("path", "").endswith("/changes"))
    assert "token=[redacted]" in changes["query"]
    assert "clientId=c1" in changes["query"], "harmless parameters stay readable"
    assert any("name=visible" in line.get("query", "") for line in lines)
    assert any("token=[redacted]" in line["message"] for line in lines
               if line["logger"] == "werkzeug")


def test_text_logs_name_the_request_id(app):
    output = Output()
    app.test_client().get("/health", headers={"X-Request-Id": "text-id-7"})
    err = output.read()
    line = next(line for line in err.splitlines() if "dxc.access" in line)
    assert "INFO dxc.access: GET /health 200 " in line
    assert line.endswith(" request_id=text-id-7")


def test_the_log_format_setting(tmp_path):
    base = {"DXC_INSTANCE_PATH": str(tmp_path), "DXC_SECRET": "x" * 32}
    assert load_settings(base).log_format == "text"
    assert load_settings({**base, "DXC_ENV": "production"}).log_format == "json"
    assert load_settings({**base, "DXC_ENV": "production", "DXC_LOG_FORMAT": "text"}
                         ).log_format == "text"
    with pytest.raises(ConfigError, match="DXC_LOG_FORMAT"):
        load_settings({**base, "DXC_LOG_FORMAT": "xml"})


# --- the RQ dashboard ------------------------------------------------------------------------


def basic(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def dashboard(services):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    settings = dataclasses.replace(
        services.settings, redis_url=REDIS_URL, admin_password=ADMIN_PASSWORD
    )
    return create_app(settings).test_client()


def test_the_dashboard_needs_the_admin_password(dashboard):
    for headers in ({}, basic("wrong"), basic(ADMIN_PASSWORD[:-1]),
                    {"Authorization": f"Bearer {ADMIN_PASSWORD}"}):
        for path in ("/admin/rq/", "/admin/rq/0/data/queues.json"):
            refused = dashboard.get(path, headers=headers)
            assert refused.status_code == 401, path
            assert refused.headers["WWW-Authenticate"].startswith("Basic ")
            assert ADMIN_PASSWORD not in refused.get_data(as_text=True)
    page = dashboard.get("/admin/rq/", headers=basic(ADMIN_PASSWORD))
    assert page.status_code == 200
    assert "RQ" in page.get_data(as_text=True)
    queues = dashboard.get("/admin/rq/0/data/queues.json", headers=basic(ADMIN_PASSWORD))
    assert queues.status_code == 200
    assert "queues" in queues.get_json()


def test_dashboard_changes_must_come_from_its_own_page(dashboard):
    path = "/admin/rq/queue/dxc/queued/empty"
    forged = dashboard.post(path, headers={**basic(ADMIN_PASSWORD),
                                           "Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert dashboard.post(path, headers=basic(ADMIN_PASSWORD)).status_code == 403
    same = dashboard.post(path, headers={**basic(ADMIN_PASSWORD), "Origin": "http://localhost"})
    assert same.status_code == 200


def test_no_dashboard_without_redis_or_without_a_password(services):
    for settings in (
        dataclasses.replace(services.settings, redis_url=REDIS_URL),
        dataclasses.replace(services.settings, admin_password=ADMIN_PASSWORD),
    ):
        client = create_app(settings).test_client()
        assert client.get("/admin/rq/", headers=basic(ADMIN_PASSWORD)).status_code == 404
