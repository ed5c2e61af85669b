"""gunicorn settings: gevent workers that hold long-lived sockets.

Keep module-level work out of this file: it is imported before gevent patches
the standard library, and anything imported here would stay blocking.
"""

import os

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
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# One shared control socket path would clash between several servers on a host.
control_socket_disable = True


def post_fork(server, worker):
    """Make psycopg2 wait on the gevent loop instead of blocking the worker."""
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
