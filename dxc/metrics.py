"""Prometheus metrics, summed over every gunicorn worker when served by gunicorn.

``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker
imports this module, so each worker writes its samples to files there and a
scrape of any worker (:func:`exposition`) reads them all; a worker that exits
is marked dead (gunicorn's ``child_exit``), which drops its share of the
``livesum`` gauge. Without that variable (``flask run``, tests) the process's
own default registry is served.

Label values are bounded: endpoints are Flask endpoint names, never paths.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rq import Queue, Worker
from rq.registry import FailedJobRegistry

log = logging.getLogger(__name__)

#: Seconds a scrape waits for Redis before reporting the queue unreachable.
REDIS_TIMEOUT_SECONDS = 2

HTTP_REQUESTS = Counter(
    "dxc_http_requests",
    "HTTP requests answered, by Flask endpoint, method and status.",
    ["endpoint", "method", "status"],
)
HTTP_DURATION = Histogram(
    "dxc_http_request_duration_seconds",
    "Time to answer an HTTP request, by Flask endpoint (a WebSocket: its lifetime).",
    ["endpoint"],
)
SYNC_TRANSACTIONS = Counter(
    "dxc_sync_transactions",
    "Client transactions (all-or-nothing sets of operations) pushed on /sync, by outcome"
    " (applied or refused).",
    ["outcome"],
)
LIVE_SOCKETS = Gauge(
    "dxc_live_sockets", "Open /changes WebSockets.", multiprocess_mode="livesum"
)
LIVE_MESSAGES_SENT = Counter(
    "dxc_live_messages_sent",
    "Messages sent on /changes WebSockets, by type.",
    ["type"],
)
LIVE_MESSAGES_RECEIVED = Counter(
    "dxc_live_messages_received",
    "Messages received on /changes WebSockets, by type (other: ignored frames).",
    ["type"],
)
BUS_CHANGES = Counter(
    "dxc_bus_changes",
    "Change notifications published to or received from the bus.",
    ["direction"],
)
JOBS_ENQUEUED = Counter(
    "dxc_jobs_enqueued",
    "Background jobs handed to the queue (RQ or in-process), by job; dxc.mail.webhook.post_webhook"
    " is an e-mail (a one-time password or an invitation) for the e-mail channel.",
    ["job"],
)
MAILS_QUEUED = Counter(
    "dxc_mails_queued",
    "E-mails queued for the e-mail channel, by template (otp, invite, test-send).",
    ["template"],
)
JOB_ATTEMPTS_FAILED = Counter(
    "dxc_job_attempts_failed",
    "In-process background job attempts that raised (each is retried), by job.",
    ["job"],
)
JOBS_FAILED = Counter(
    "dxc_jobs_failed",
    "In-process background jobs given up after their last retry, by job.",
    ["job"],
)


def multiprocess_dir() -> str | None:
    """Where the workers' samples are, when several processes share the metrics."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(redis_url: str | None, queue: str) -> tuple[bytes, str]:
    """The text of a scrape and its content type: every worker, plus RQ's ``queue``."""
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if redis_url:
        queue_registry = CollectorRegistry()
        queue_registry.register(QueueCollector(redis_url, queue))
        text += generate_latest(queue_registry)
    return text, CONTENT_TYPE_LATEST


class QueueCollector(Collector):
    """The RQ queue as Redis holds it at scrape time (it is shared by every process)."""

    def __init__(self, redis_url: str, queue: str) -> None:
        self.queue = queue
        self.connection = _redis(redis_url)

    def collect(self):  # type: ignore[no-untyped-def]
        up = GaugeMetricFamily("dxc_job_queue_up", "1 when Redis answered this scrape.")
        depth = GaugeMetricFamily("dxc_job_queue_depth", "Jobs waiting in the RQ queue.",
                                  labels=["queue"])
        failed = GaugeMetricFamily("dxc_job_queue_failed",
                                   "Jobs in the RQ failed-job registry (kept 7 days).",
                                   labels=["queue"])
        workers = GaugeMetricFamily("dxc_job_workers", "RQ workers registered in Redis.")
        try:
            queue = Queue(self.queue, connection=self.connection)
            depth.add_metric([self.queue], queue.count)
            failed.add_metric(
                [self.queue],
                FailedJobRegistry(queue=queue).get_job_count(cleanup=False),
            )
            workers.add_metric([], Worker.count(connection=self.connection))
        except redis.RedisError as error:
            log.warning("metrics: redis unreachable: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, depth, failed, workers)


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    """One connection pool per process and URL, shared by the scrapes."""
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
