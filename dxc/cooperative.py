"""Long loops take turns with the other requests of a gevent worker; short jobs
run beside them.

A gevent worker runs one greenlet at a time, and CPU work never yields: a
loop over many thousands of rows would hold every other request of the
worker (and its sockets' pings) until it ends. So long loops let the others
run now and then.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: Items a loop handles between two turns of the other greenlets.
EVERY = 200


def take_turns() -> None:
    """Let the worker's other greenlets run (without gevent: nothing to wait for)."""
    time.sleep(0)  # gevent's sleep(0) yields to its loop


def taking_turns(items: Iterable[T], every: int = EVERY) -> Iterator[T]:
    """``items``, letting other greenlets run after each ``every`` of them."""
    for count, item in enumerate(items, 1):
        yield item
        if count % every == 0:
            take_turns()


def under_gevent() -> bool:
    """Whether gevent patched ``threading`` (a gunicorn worker), so threads are greenlets."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    return gevent_monkey is not None and gevent_monkey.is_module_patched("threading")


def start(job: Callable[[], object]) -> None:
    """Run ``job`` beside the caller: in a raw greenlet under gevent (a patched
    ``threading.Thread`` costs five times as much to start, and a ``gevent.Greenlet``
    keeps links and a spawn tree nobody uses here, which counts when one change wakes
    thousands of sockets; ``job`` handles its own errors), else in a daemon thread."""
    in_context = functools.partial(contextvars.copy_context().run, job)  # the log's request id
    if under_gevent():
        import gevent

        gevent.spawn_raw(in_context)
    else:
        threading.Thread(target=in_context, daemon=True).start()
