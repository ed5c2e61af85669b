"""``/health`` and ``/ready`` as a load balancer sees them."""

from __future__ import annotations

import dataclasses

from app import create_app
from tests.conftest import free_port


def test_health_and_ready(services):
    client = create_app(services.settings).test_client()
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"control": "ok"}


def test_ready_reports_a_redis_outage(services):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = dataclasses.replace(services.settings, redis_url=closed)
    client = create_app(settings).test_client()
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["redis"] == "unreachable"
