"""One computation for everyone who asks the same question at about the same time.

When a change wakes a thousand sockets whose clients are at the same
revision with the same realms (the readers of a public realm, say), each
would read the same rows and build the same ``changes`` message. The first
to ask computes it; the others wait for that result, and those that ask
within ``ttl`` seconds after get it too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

V = TypeVar("V")


class SharedResults(Generic[V]):
    def __init__(self, ttl: float = 2.0, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[Future[V], float]] = {}

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """``compute()``, or the result of the same key's computation under way or just done."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            computes = entry is None or entry[1] < now
            if computes:
                self._make_room(now)
                entry = (Future(), now + self.ttl)
                self._entries[key] = entry
        future = entry[0]
        if computes:
            try:
                future.set_result(compute())
            except BaseException as error:
                future.set_exception(error)
                with self._lock:  # the next one to ask tries again
                    if self._entries.get(key) is entry:
                        del self._entries[key]
        return future.result()

    def _make_room(self, now: float) -> None:
        if len(self._entries) < self.max_entries:
            return
        for key in [key for key, (_, until) in self._entries.items() if until < now]:
            del self._entries[key]
        while len(self._entries) >= self.max_entries:  # the oldest go first
            del self._entries[next(iter(self._entries))]
