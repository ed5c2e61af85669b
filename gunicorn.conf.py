"""gunicorn settings: gevent workers that hold long-lived sockets.

Keep module-level work out of this file: it is imported before gevent patches
the standard library, and anything imported here would stay blocking.
"""

import os
import shutil
import tempfile

from dxc.logs import default_log_format, gunicorn_logconfig

# Every worker writes its metrics here and /metrics sums them (prometheus-client's
# multiprocess mode). Set before any worker (or a preloaded app) imports prometheus_client.
METRICS_DIR_PREFIX = "dxc-metrics-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX)

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_connections = int(os.environ.get("DXC_WORKER_CONNECTIONS", "1000"))
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
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# One shared control socket path would clash between several servers on a host.
control_socket_disable = True


def post_fork(server, worker):
    """Make psycopg2 wait on the gevent loop instead of blocking the worker."""
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()


#: Seconds a gevent worker may take to close its listener after SIGTERM (it looks every 1 s).
LISTENER_CLOSE_SECONDS = 1.5


def post_worker_init(worker):
    """On a graceful stop (SIGTERM: a HUP's old workers, a deploy) close the live
    sockets at once, so that clients reconnect to a new worker instead of being
    held until ``graceful_timeout`` cuts them; plain requests still finish."""
    import signal

    import gevent

    live = worker.wsgi.extensions["dxc"].live

    def stop(signum, frame):
        worker.handle_exit(signum, frame)
        # The worker's loop stops accepting within a second of this: close the
        # sockets after that, or the clients would reconnect to this same worker.
        gevent.spawn_later(LISTENER_CLOSE_SECONDS, live.drain)

    signal.signal(signal.SIGTERM, stop)


def on_starting(server):
    """Samples left by an earlier server in the metrics directory would be summed in."""
    _clear_metrics_dir()


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
