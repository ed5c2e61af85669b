"""``GET /metrics`` in one process (the Flask test client): what moves, what stays bounded.

The counters are process-wide, so every test compares a scrape after its
requests with one before them. Aggregation over gunicorn workers is shown by
``test_multiprocess_mode_sums_processes`` and by tests/e2e/test_observability_e2e.py.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from app import create_app
from dxc.jobs import QUEUE, BackgroundJobs
from dxc.manage import databases
from dxc.manage.importer import import_document
from tests.conftest import ROOT, free_port
from tests.protocol_client import ALICE, Device, item

REDIS_URL = "redis://127.0.0.1:6379/12"


def scrape(client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def requests_of(scraped, endpoint: str, status: str, method: str = "GET") -> float:
    return value(scraped, "dxc_http_requests_total",
                 endpoint=endpoint, method=method, status=status)


def test_requests_are_counted_by_endpoint_and_status(app):
    client = app.test_client()
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    client.post("/health")  # 405: no route matches this method
    after = scrape(client)
    ok = requests_of(after, "health.health", "200") - requests_of(before, "health.health", "200")
    assert ok == 3
    assert requests_of(after, "unmatched", "405", "POST") - requests_of(
        before, "unmatched", "405", "POST") == 1
    count = "dxc_http_request_duration_seconds_count"
    assert value(after, count, endpoint="health.health") - value(
        before, count, endpoint="health.health") == 3


def test_unknown_paths_and_methods_add_no_new_series(app):
    client = app.test_client()
    client.get("/warm-up-unmatched/x/y")  # the shape of the paths below: no route
    client.open("/warm-up-unmatched", method="BREW")
    before = scrape(client)
    marker = uuid.uuid4().hex
    for n in range(5):
        assert client.get(f"/{marker}{n}/x/y").status_code == 404
        client.open(f"/{marker}{n}", method=f"M{marker[:8]}{n}")
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    assert marker not in text, "a path or method became a label value"
    after = samples(text)
    new_series = {
        key for key in set(after) - set(before) if key[0].startswith("dxc_http_requests")
    }
    assert not new_series - {
        ("dxc_http_requests_total", (("endpoint", "metrics.scrape"), ("method", "GET"),
                                     ("status", "200"))),
        ("dxc_http_requests_created", (("endpoint", "metrics.scrape"), ("method", "GET"),
                                       ("status", "200"))),
    }
    assert requests_of(after, "unmatched", "404") - requests_of(before, "unmatched", "404") == 5


def test_sync_counts_applied_and_refused_transactions(app):
    services = app.extensions["dxc"]
    created = databases.create_database(services)
    import_document(services, created.db_id, {"demoUsers": {ALICE: {}}})
    client = app.test_client()
    alice = Device(client, created.url, "device-1")
    alice.login(ALICE)
    alice.sync()
    before = scrape(client)
    refused = alice.op(
        "items", "insert", ["itm2"], "bad", values=[item("itm2", realm="rlm-public")]
    )
    accepted = alice.op("items", "insert", ["itm3"], "good", values=[item("itm3")])
    accepted2 = alice.op("items", "insert", ["itm4"], "good2", values=[item("itm4")])
    answer = alice.sync([refused, accepted, accepted2])
    assert [r["txid"] for r in answer["rejections"]] == ["bad"]
    after = scrape(client)
    name = "dxc_sync_transactions_total"
    assert value(after, name, outcome="applied") - value(before, name, outcome="applied") == 2
    assert value(after, name, outcome="refused") - value(before, name, outcome="refused") == 1
    assert requests_of(after, "database.sync", "200", "POST") - requests_of(
        before, "database.sync", "200", "POST") == 1


def test_a_metrics_token_closes_the_endpoint(services):
    settings = dataclasses.replace(services.settings, metrics_token="scrape-secret-123")
    client = create_app(settings).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.get_json()["error"] == "unauthorized"
    scraped = scrape(client, Authorization="Bearer scrape-secret-123")
    assert ("dxc_live_sockets", ()) in scraped


def test_in_process_job_failures_are_counted(app):
    client = app.test_client()
    before = scrape(client)

    def always_fails() -> None:
        raise RuntimeError("the web-hook answered HTTP 500")

    BackgroundJobs(delays=(0,)).enqueue(always_fails)
    job = f"{always_fails.__module__}.{always_fails.__qualname__}"
    deadline = time.monotonic() + 10
    while value(scrape(client), "dxc_jobs_failed_total", job=job) == value(
        before, "dxc_jobs_failed_total", job=job
    ):
        assert time.monotonic() < deadline, "the failed job was never counted"
        time.sleep(0.05)
    after = scrape(client)
    assert value(after, "dxc_jobs_failed_total", job=job) - value(
        before, "dxc_jobs_failed_total", job=job) == 1
    assert value(after, "dxc_job_attempts_failed_total", job=job) - value(
        before, "dxc_job_attempts_failed_total", job=job) == 2
    assert value(after, "dxc_jobs_enqueued_total", job=job) - value(
        before, "dxc_jobs_enqueued_total", job=job) == 1


def test_a_one_time_password_mail_is_counted(app, mailbox):
    services = app.extensions["dxc"]
    services.mailer.configure(mailbox.url, mailbox.secret)
    created = databases.create_database(services)
    client = app.test_client()
    before = scrape(client)
    answer = client.post(f"/{created.db_id}/token", json={
        "grant_type": "otp", "email": "ann@example.com", "scopes": ["ACCESS_DB"]})
    assert answer.get_json()["type"] == "otp-sent"
    mailbox.wait_for_mail("ann@example.com")
    after = scrape(client)
    job = "dxc.mail.webhook.post_webhook"
    assert value(after, "dxc_jobs_enqueued_total", job=job) - value(
        before, "dxc_jobs_enqueued_total", job=job) == 1
    assert value(after, "dxc_mails_queued_total", template="otp") - value(
        before, "dxc_mails_queued_total", template="otp") == 1
    assert value(after, "dxc_mails_queued_total", template="invite") == value(
        before, "dxc_mails_queued_total", template="invite")


def _noop() -> None:
    """A job for the queue tests (never run)."""


@pytest.fixture
def rq_redis():
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    connection.flushdb()
    yield connection
    connection.flushdb()


def test_queue_depth_and_failed_jobs_come_from_redis(services, rq_redis):
    client = create_app(dataclasses.replace(services.settings, redis_url=REDIS_URL)).test_client()
    queue = Queue(QUEUE, connection=rq_redis)
    for _ in range(3):
        queue.enqueue(_noop)
    failed = Job.create(_noop, connection=rq_redis)
    failed.save()
    FailedJobRegistry(queue=queue).add(failed, ttl=600, exc_string="RuntimeError")
    scraped = scrape(client)
    assert value(scraped, "dxc_job_queue_up") == 1
    assert value(scraped, "dxc_job_queue_depth", queue=QUEUE) == 3
    assert value(scraped, "dxc_job_queue_failed", queue=QUEUE) == 1


def test_a_redis_outage_does_not_break_the_scrape(services):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    client = create_app(dataclasses.replace(services.settings, redis_url=closed)).test_client()
    scraped = scrape(client)
    assert value(scraped, "dxc_job_queue_up") == 0
    assert not any(name == "dxc_job_queue_depth" for name, _ in scraped)
    assert any(name == "dxc_http_requests_total" for name, _ in scraped)


WORKER = """
import sys
from dxc import metrics
metrics.HTTP_REQUESTS.labels("health.health", "GET", "200").inc(int(sys.argv[1]))
metrics.LIVE_SOCKETS.inc(int(sys.argv[1]))
print("ok")
"""
SCRAPE = """
import sys
from prometheus_client import multiprocess
from dxc import metrics
if len(sys.argv) > 1:
    multiprocess.mark_process_dead(int(sys.argv[1]))
sys.stdout.write(metrics.exposition(None, "dxc")[0].decode())
"""


def test_multiprocess_mode_sums_processes(tmp_path):
    """What gunicorn.conf.py sets up: two workers' samples in one scrape; a dead one's gauge
    share dropped."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True)

    first = subprocess.Popen([sys.executable, "-c", WORKER, "2"], cwd=ROOT, env=env)
    assert first.wait() == 0
    python(WORKER, "5")
    both = samples(python(SCRAPE).stdout)
    assert requests_of(both, "health.health", "200") == 7
    assert value(both, "dxc_live_sockets") == 7
    after_death = samples(python(SCRAPE, str(first.pid)).stdout)
    assert requests_of(after_death, "health.health", "200") == 7, "counters survive a worker"
    assert value(after_death, "dxc_live_sockets") == 5, "a dead worker's sockets are gone"
