"""``/metrics`` and JSON logs of the real server: gunicorn, two gevent workers, a real client.

The real dexie-cloud-addon syncs (with writes the server refuses), then
``/metrics`` is scraped several times. Whichever worker answers a scrape,
the request and sync counters must equal what both workers' access-log
lines say happened, and an open WebSocket must show in the socket gauge.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from simple_websocket import Client

from tests.e2e.test_sync_e2e import OTHER_USER, USER, add_public_items, db_id_of, scenario

SCRAPES = 6


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"DXC_LOG_FORMAT": "json", "WEB_CONCURRENCY": "2"}


@pytest.fixture
def db_url(server) -> str:
    return server.create_database(demo_users=(USER, OTHER_USER))


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, dict(response.headers), response.read()


def scrape(server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    _, _, body = get(f"{server.url}/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(scraped, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def log_lines(server) -> list[dict[str, Any]]:
    """Every line of the server's log, each one a JSON object (gunicorn's own lines too)."""
    lines = []
    for line in server.log().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a log line is not JSON: {line!r}") from None
    return lines


def access_lines(server, endpoint: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(server)
            if line["logger"] == "dxc.access" and line["endpoint"] == endpoint]


def test_metrics_sum_both_workers_after_a_real_client_syncs(server, db_url):
    db_id = db_id_of(db_url)
    add_public_items(server, db_url)
    result = scenario(server, "refused", databaseUrl=db_url, user=USER, otherUser=OTHER_USER,
                      publicId="itmPublicOne")
    assert "allowed after" in {i["title"] for i in result["a"]}

    # Until both workers have answered /health, so that the sums below span two processes.
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(8) as pool:
        while len({line["process"] for line in access_lines(server, "health.health")}) < 2:
            assert time.monotonic() < deadline, "one worker answered every request"
            list(pool.map(lambda _: get(f"{server.url}/health"), range(16)))
    assert len({line["process"] for line in log_lines(server)
                if line["message"].startswith("Booting worker")}) == 2

    syncs = access_lines(server, "database.sync")
    outcomes = Counter()
    for line in log_lines(server):
        found = re.fullmatch(rf"sync db={db_id} applied=(\d+) rejected=(\d+)", line["message"])
        if found:
            outcomes["applied"] += int(found[1])
            outcomes["refused"] += int(found[2])
    assert outcomes["applied"] >= 2 and outcomes["refused"] >= 1, outcomes
    health = access_lines(server, "health.health")

    scrapes = [scrape(server) for _ in range(SCRAPES)]
    for scraped in scrapes:
        assert value(scraped, "dxc_http_requests_total", endpoint="health.health",
                     method="GET", status="200") == len(health)
        assert value(scraped, "dxc_http_requests_total", endpoint="database.sync",
                     method="POST", status="200") == len(syncs)
        for outcome in ("applied", "refused"):
            assert value(scraped, "dxc_sync_transactions_total",
                         outcome=outcome) == outcomes[outcome], outcome
        assert value(scraped, "dxc_http_request_duration_seconds_count",
                     endpoint="database.sync") == len(syncs)
    counted = [value(s, "dxc_http_requests_total", endpoint="metrics.scrape", method="GET",
                     status="200") for s in scrapes]
    assert counted == sorted(counted) and counted[-1] - counted[0] == SCRAPES - 1, counted


def test_the_socket_gauge_and_the_request_id_on_the_real_server(server, db_url):
    db_id = db_id_of(db_url)
    request = urllib.request.Request(
        f"{db_url}/token",
        data=json.dumps({"grant_type": "demo", "demo_user": USER,
                         "scopes": ["ACCESS_DB"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        token = json.load(response)["accessToken"]
    assert value(scrape(server), "dxc_live_sockets") == 0

    socket = Client.connect(
        f"ws://{server.url.split('://', 1)[1]}/{db_id}/changes?v=2&clientId=obs1&token={token}"
    )
    try:
        deadline = time.monotonic() + 15
        while value(scrape(server), "dxc_live_sockets") != 1:
            assert time.monotonic() < deadline, "the open socket never showed in the gauge"
            time.sleep(0.1)
        assert all(value(scrape(server), "dxc_live_sockets") == 1 for _ in range(4))
    finally:
        socket.close()
    deadline = time.monotonic() + 15
    while value(scrape(server), "dxc_live_sockets") != 0:
        assert time.monotonic() < deadline, "the closed socket stayed in the gauge"
        time.sleep(0.1)

    status, headers, _ = get(f"{server.url}/ready", **{"X-Request-Id": "probe-e2e-1"})
    assert status == 200 and headers["X-Request-Id"] == "probe-e2e-1"
    deadline = time.monotonic() + 15
    while not access_lines(server, "changes.changes"):
        assert time.monotonic() < deadline, "the socket's access line was never written"
        time.sleep(0.1)
    log = server.log()
    assert token not in log and token.split(".")[-1] not in log, "the access token was logged"
    (changes,) = access_lines(server, "changes.changes")
    assert "token=[redacted]" in changes["query"] and changes["db_id"] == db_id
    (ready,) = access_lines(server, "health.ready")
    assert ready["request_id"] == "probe-e2e-1" and ready["status"] == 200
    opened = [line for line in log_lines(server)
              if line["message"].startswith(f"live open db={db_id} ")]
    assert opened and opened[0]["request_id"] == changes["request_id"], (
        "a line logged inside the socket's request carries its id"
    )
