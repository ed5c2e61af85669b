"""gunicorn settings: gevent workers that hold long-lived sockets.

Keep module-level work out of this file: it is imported before gevent patches
the standard library, and anything imported here would stay blocking.
"""

import os
import shutil
import tempfile

from gunicorn import glogging

from dxc.logs import default_log_format, gunicorn_logconfig

# Every worker writes its metrics here and /metrics sums them (prometheus-client's
# multiprocess mode). Set before any worker (or a preloaded app) imports prometheus_client.
METRICS_DIR_PREFIX = "dxc-metrics-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Mostly idle /changes sockets (about 28 KiB each): a worker holds 10 000 in some 400 MiB.
# Each is an open file: on_starting raises the soft limit (ulimit -n) to match if it may.
worker_connections = int(os.environ.get("DXC_WORKER_CONNECTIONS", "10000"))
# gevent workers notify the arbiter from their own loop, so a long request
# (a big first sync) does not count against this; it only catches hung workers.
timeout = int(os.environ.get("DXC_WORKER_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("DXC_GRACEFUL_TIMEOUT", "30"))
keepalive = 75  # above the idle timeouts of AWS (60 s) load balancers
accesslog = "-" if os.environ.get("DXC_ACCESS_LOG") else None
# The default logs the query string, and /changes carries the access token there.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
errorlog = "-"
logconfig_dict = gunicorn_logconfig(default_log_format(os.environ))


class Logger(glogging.Logger):
    """gunicorn's logger with its access log on only when asked for (``accesslog``). Any
    ``logconfig_dict`` turns it on, and gunicorn then built each request's access-log
    fields (headers and environ included) for a logger with no handler: about 1.5 % of a
    worker's CPU under many small syncs."""

    @property
    def access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)


logger_class = Logger
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# One shared control socket path would clash between several servers on a host.
control_socket_disable = True
# What gunicorn parses before the app sees a request (docs/operations.md). The client opens
# /changes?v=…&rev=…&realmsHash=…&clientId=…&dxcv=…&token=<access token>: ~250 bytes plus the
# token, ~0.4 KiB usually, ~1.7 KiB with 320-character user id, e-mail and name, more only
# with long non-ASCII names (JSON escapes each character to 6 bytes). gunicorn's default
# (4094) leaves little room for those; 8190 is the most it allows short of unlimited (0).
limit_request_line = 8190
# /sync and the REST API send the same token in Authorization: one header as long as the line.
limit_request_field_size = 8190
# A browser sends ~20 headers and proxies add up to ~20 more. While reading, gunicorn buffers
# at most limit_request_fields * (limit_request_field_size + 2) bytes (~800 KiB) a connection.
limit_request_fields = 100


def post_fork(server, worker):
    """Make psycopg2 wait on the gevent loop instead of blocking the worker, and answer
    gunicorn's own refusals in JSON like every other error."""
    from dxc.storage import waits

    waits.install()
    _json_parse_errors()


def _json_parse_errors():
    """gunicorn refuses a request it cannot parse (a line or headers over the limits above,
    bad syntax) before the app runs, with an HTML page from ``gunicorn.util.write_error``,
    its only writer of such answers: send the app's ``{"error", "message"}`` instead."""
    import json

    from gunicorn import util

    def write_error(sock, status_int, reason, mesg):
        body = json.dumps(
            {"error": reason.lower().replace(" ", "_"), "message": mesg or reason}
        ).encode()
        head = (
            f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        util.write_nonblock(sock, head.encode("latin-1") + body)

    util.write_error = write_error


#: Seconds a gevent worker may take to close its listener after SIGTERM (it looks every 1 s).
LISTENER_CLOSE_SECONDS = 1.5


def post_worker_init(worker):
    """On a graceful stop (SIGTERM: a HUP's old workers, a deploy) close the live
    sockets at once, so that clients reconnect to a new worker instead of being
    held until ``graceful_timeout`` cuts them; plain requests still finish.

    Then load what a request would otherwise load on the worker's loop (the mail
    templates' compiler), and set the garbage collector for a long-lived server
    (:func:`_tune_garbage_collector`).
    """
    import signal

    import gevent

    from dxc.mail.handlebars import load_compiler

    live = worker.wsgi.extensions["dxc"].live

    def stop(signum, frame):
        worker.handle_exit(signum, frame)
        # The worker's loop stops accepting within a second of this: close the
        # sockets after that, or the clients would reconnect to this same worker.
        gevent.spawn_later(LISTENER_CLOSE_SECONDS, live.drain)

    signal.signal(signal.SIGTERM, stop)
    load_compiler()
    _tune_garbage_collector()


#: Net new container objects between two collections of the youngest generation
#: (CPython's default: 700). See :func:`_tune_garbage_collector`.
YOUNG_COLLECTION_THRESHOLD = 10_000


def _tune_garbage_collector():
    """Two changes, each measured with thousands of open sockets (docs/architecture.md).

    A loaded worker holds some 140 000 objects (modules, SQLAlchemy, the app) that live as
    long as it does. Each full collection walked them all, some 100 ms with 1000 open
    sockets, and everything else on the worker's loop (a fan-out, a /sync) waited that
    long. Frozen, they are never walked again; what the worker makes later is collected
    as before.

    A fan-out keeps thousands of greenlets and messages alive for a moment. With the
    default threshold the youngest generation was collected every 700 new objects, so
    they were still alive, moved to the oldest generation, and soon made it due: a full
    collection, freeing nothing, of every open socket's objects (250-400 ms with 5000
    sockets, twenty times in ten fan-outs). Collected every 10 000, most are gone by
    then. A young collection walks more at once (3 ms at the median; up to 72 ms while
    a fan-out to 5000 sockets was in flight), and full ones became rare."""
    import gc

    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, oldest)


def on_starting(server):
    """Samples left by an earlier server in the metrics directory would be summed in; and
    the workers (which inherit the limit) need a descriptor per connection."""
    _clear_metrics_dir()
    _raise_open_files_limit(server.log, worker_connections + 256)


def _raise_open_files_limit(log, wanted):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "open files are limited to %d (ulimit -n): a worker refuses connections beyond "
            "about %d; raise the hard limit or lower DXC_WORKER_CONNECTIONS "
            "(docs/operations.md)", soft, soft - 256,
        )


def child_exit(server, worker):
    """Drop the exited worker's share of the live gauges (open sockets)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if os.path.basename(path).startswith(METRICS_DIR_PREFIX):  # the one made above
        shutil.rmtree(path, ignore_errors=True)
    else:
        _clear_metrics_dir()


def _clear_metrics_dir():
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
