"""Background jobs and the e-mail web-hook delivery: retries, back-off, giving up.

The in-process runner is what the embedded default uses; the RQ half needs
a Redis (``DXC_TEST_REDIS_URL``, default the local one) and is skipped
without it.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

from dxc.jobs import BackgroundJobs, RQJobs
from dxc.mail import SIGNATURE_HEADER, Channel, Mailer, render, sign
from dxc.mail.handlebars import EMAIL_PARTS, default_templates, email_path
from dxc.mail.webhook import WebhookFailed, post_webhook
from dxc.secret_keys import Keyring
from tests.mailbox import Mailbox

REDIS_URL = os.environ.get("DXC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def mailbox():
    box = Mailbox()
    yield box
    box.close()


class RecordingJobs:
    """Runs nothing; keeps what was queued."""

    def __init__(self) -> None:
        self.queued: list[tuple] = []

    def enqueue(self, fn, *args) -> None:
        self.queued.append((fn, args))


#: The built-in OTP templates: subject, text body, HTML body.
OTP_SOURCES = [default_templates()[email_path("otp", part)] for part in EMAIL_PARTS]


def delivery(mailbox: Mailbox) -> tuple[str, bytes, dict[str, str]]:
    """What the mailer queues for one message to ``mailbox``."""
    jobs = RecordingJobs()
    mailer = Mailer(None, Keyring("a-secret-of-sufficient-length"), jobs)  # type: ignore[arg-type]
    message = render("otp", "ann@example.com", {
        "otp": "ABCD2345", "otpId": "x", "email": "ann@example.com", "originName": None,
        "databaseUrl": "http://localhost:3000/z1", "validMinutes": 10,
    }, OTP_SOURCES)
    mailer.send(Channel(mailbox.url, mailbox.secret), message)
    (fn, args), = jobs.queued
    assert fn is post_webhook
    return args


def wait_until(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_the_web_hook_gets_signed_json(mailbox):
    post_webhook(*delivery(mailbox))
    assert mailbox.bad_signatures == 0
    mail, = mailbox.mails
    assert mail["to"] == "ann@example.com" and mail["template"] == "otp"
    assert "OTP: ABCD2345" in mail["text"]


def test_html_escapes_variables():
    message = render("otp", "a@b.cd", {
        "otp": "ABCD2345", "otpId": "x", "email": "a@b.cd", "originName": "<script>x</script>",
        "databaseUrl": "http://h/z", "validMinutes": 10,
    }, OTP_SOURCES)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "<script>x</script>" in message.text
    assert sign("k", b"body") == sign("k", b"body") != sign("k", b"body2")


def test_failed_deliveries_raise_without_secrets(mailbox):
    url, body, headers = delivery(mailbox)
    mailbox.failures = 1
    with pytest.raises(WebhookFailed) as failed:
        post_webhook(url, body, headers)
    assert str(failed.value) == "the web-hook answered HTTP 500"
    forged = {**headers, SIGNATURE_HEADER: "sha256=00"}
    with pytest.raises(WebhookFailed):
        post_webhook(url, body, forged)
    with pytest.raises(WebhookFailed):
        post_webhook("http://127.0.0.1:9/hook", body, headers)  # nobody listens on port 9


def test_redirects_are_not_followed():
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(WebhookFailed, match="302"):
            post_webhook(f"http://127.0.0.1:{server.server_address[1]}/", b"{}", {})
    finally:
        server.shutdown()
        server.server_close()


def test_background_jobs_retry_a_failing_web_hook(mailbox):
    mailbox.failures = 2
    BackgroundJobs((0.01, 0.01, 0.01)).enqueue(post_webhook, *delivery(mailbox))
    wait_until(lambda: mailbox.mails, "the delivery")
    assert mailbox.attempts == 3
    assert len(mailbox.mails) == 1


def test_background_jobs_give_up_after_the_last_delay(mailbox, caplog):
    mailbox.failures = 10
    url, body, headers = delivery(mailbox)
    with caplog.at_level(logging.WARNING, logger="dxc.jobs"):
        BackgroundJobs((0.01, 0.01)).enqueue(post_webhook, url, body, headers)
        wait_until(lambda: "giving up" in caplog.text, "the job to give up")
    assert mailbox.attempts == 3
    assert caplog.text.count("failed (attempt") == 3
    assert body.decode() not in caplog.text and "ABCD2345" not in caplog.text


@pytest.fixture
def redis_queue():
    connection = Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    name = f"dxc-test-{secrets.token_hex(4)}"
    yield name, connection
    queue = Queue(name, connection=connection)
    for registry in (queue.finished_job_registry, queue.failed_job_registry,
                     queue.scheduled_job_registry):
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
    queue.delete(delete_jobs=True)
    connection.delete(*connection.keys(f"rq:*:{name}") or ["-"])
    connection.close()


def test_rq_jobs_retry_and_hide_their_arguments(mailbox, redis_queue, caplog):
    name, connection = redis_queue
    mailbox.failures = 2
    url, body, headers = delivery(mailbox)
    RQJobs(REDIS_URL, (0, 0, 0), queue=name).enqueue(post_webhook, url, body, headers)
    queue = Queue(name, connection=connection)
    job, = queue.get_jobs()
    assert job.description == "dxc.mail.webhook.post_webhook"
    assert job.retries_left == 3
    with caplog.at_level(logging.INFO):
        SimpleWorker([queue], connection=connection, log_job_description=False).work(burst=True)
    assert mailbox.attempts == 3 and len(mailbox.mails) == 1
    assert "ABCD2345" not in caplog.text and mailbox.secret not in caplog.text


def test_jobs_queued_under_their_old_name_still_run(mailbox, redis_queue):
    """An earlier version queued mails as ``workers.jobs.post_webhook``: a worker of this
    version still finds that function."""
    name, connection = redis_queue
    queue = Queue(name, connection=connection)
    queue.enqueue("workers.jobs.post_webhook", *delivery(mailbox))
    SimpleWorker([queue], connection=connection, log_job_description=False).work(burst=True)
    assert len(mailbox.mails) == 1
