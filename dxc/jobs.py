"""Background jobs: RQ when ``REDIS_URL`` is set, else a runner inside the web process.

Both retry a failing job with the same back-off (``DXC_JOB_RETRY_DELAYS``).
The in-process runner (the embedded default) needs nothing else to run,
but what it has not finished when the process stops is lost; with Redis,
jobs survive restarts and run in ``python -m workers``.

Job functions live with the code they serve (``dxc.mail.webhook``), where
an RQ worker imports them by name; their arguments must be picklable, and
their exceptions' messages are logged, so neither may carry secrets into a
log line.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from redis import Redis
from rq import Queue, Retry

from dxc import metrics
from dxc.config import Settings

log = logging.getLogger(__name__)

#: The RQ queue that the web process fills and ``python -m workers`` empties.
QUEUE = "dxc"


class Jobs(Protocol):
    def enqueue(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` in the background, retrying it if it raises."""


def job_name(fn: Callable[..., None]) -> str:
    """How a job is named in logs: its function, never its arguments."""
    return f"{fn.__module__}.{fn.__qualname__}"


class BackgroundJobs:
    """Each job in its own thread (a greenlet under gunicorn's gevent workers)."""

    def __init__(self, delays: tuple[float, ...]) -> None:
        self.delays = delays

    def enqueue(self, fn: Callable[..., None], *args: Any) -> None:
        metrics.JOBS_ENQUEUED.labels(job_name(fn)).inc()
        threading.Thread(target=self._run, args=(fn, args), name=job_name(fn), daemon=True).start()

    def _run(self, fn: Callable[..., None], args: tuple[Any, ...]) -> None:
        attempts = len(self.delays) + 1
        for attempt, delay in enumerate((0.0, *self.delays), start=1):
            time.sleep(delay)
            try:
                fn(*args)
                return
            except Exception as error:
                metrics.JOB_ATTEMPTS_FAILED.labels(job_name(fn)).inc()
                log.warning(
                    "job %s failed (attempt %d of %d): %s", job_name(fn), attempt, attempts, error
                )
        metrics.JOBS_FAILED.labels(job_name(fn)).inc()
        log.error("job %s failed %d times; giving up", job_name(fn), attempts)


class InlineJobs(BackgroundJobs):
    """Each job run at once by the caller, with the same retries: for a short-lived process
    (a ``flask dxc`` command) that would end before a background thread ran."""

    def enqueue(self, fn: Callable[..., None], *args: Any) -> None:
        metrics.JOBS_ENQUEUED.labels(job_name(fn)).inc()
        self._run(fn, args)


class RQJobs:
    """Jobs in a Redis queue, retried by RQ's scheduler (``--with-scheduler``)."""

    def __init__(self, redis_url: str, delays: tuple[float, ...], queue: str = QUEUE) -> None:
        self.queue = Queue(queue, connection=Redis.from_url(redis_url))
        self.delays = delays

    def enqueue(self, fn: Callable[..., None], *args: Any) -> None:
        retry = None
        if self.delays:
            retry = Retry(max=len(self.delays), interval=[math.ceil(d) for d in self.delays])
        metrics.JOBS_ENQUEUED.labels(job_name(fn)).inc()
        # An explicit description: RQ's default one shows the arguments in its logs. A done
        # job is deleted at once (result_ttl=0): its arguments may be a mail with a code.
        self.queue.enqueue(
            fn, *args, retry=retry, description=job_name(fn), result_ttl=0,
            failure_ttl=7 * 24 * 3600,
        )


def make_jobs(settings: Settings) -> Jobs:
    if settings.redis_url:
        return RQJobs(settings.redis_url, settings.job_retry_delays)
    return BackgroundJobs(settings.job_retry_delays)
