"""The server's app (``wsgi:app``) in a gunicorn worker that tells a test its greenlet count.

``gunicorn -c gunicorn.conf.py tests.greenlet_census:app`` with ``GREENLET_CENSUS`` naming a
Unix socket: whoever connects to it reads how many greenlets of the worker are alive, as a
line. It listens before the worker serves its first request. The count is taken inside
the worker, as no client can see greenlets; the server itself has no such endpoint.
"""

from __future__ import annotations

import gc
import os
import socket

import gevent
from greenlet import greenlet

from wsgi import app

__all__ = ["app"]


def live_greenlets() -> int:
    """The greenlets started and not ended (and those spawned but not yet started)."""
    gevent.idle()  # what is ready to run (a greenlet about to end, say) runs first
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet) and not o.dead)


def answer(path: str) -> None:
    """Tell each connection the count, one after the other (this greenlet is one of them)."""
    listener = socket.socket(socket.AF_UNIX)  # gevent's: the worker patched the module
    listener.bind(path)
    listener.listen()
    while True:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(f"{live_greenlets()}\n".encode())


gevent.spawn(answer, os.environ["GREENLET_CENSUS"])
