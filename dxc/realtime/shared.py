"""One computation for everyone who asks the same question at about the same time.

When a change wakes a thousand sockets whose clients are at the same
revision with the same realms (the readers of a public realm, say), each
would read the same rows and build the same ``changes`` message. The first
to ask computes it; the others wait for that result, and those that ask
within ``ttl`` seconds after get it too.

What is kept is bounded in number and, given ``size``, in total size: the
answers to many clients that each catch up on much (after a deploy, say)
could otherwise hold hundreds of megabytes for ``ttl`` seconds. The oldest go
first; their askers already have them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class _Computation(Generic[V]):
    """One key's result, once computed. Its askers wait on an ``Event``: gevent's, in a
    patched worker, where a waiting greenlet costs no lock of its own (a ``Future``'s
    ``Condition`` makes one per waiter: a thousand when a change wakes a thousand sockets)."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: V | None = None
        self.error: BaseException | None = None

    def result(self) -> V:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set before done


class SharedResults(Generic[V]):
    def __init__(
        self,
        ttl: float = 2.0,
        max_entries: int = 4096,
        size: Callable[[V], int] | None = None,
        max_size: int = 0,
    ) -> None:
        """``size``: what a result counts against ``max_size`` (None: no bound)."""
        self.ttl = ttl
        self.max_entries = max_entries
        self.size = size
        self.max_size = max_size
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[_Computation[V], float]] = {}
        self._sizes: dict[Hashable, int] = {}  # of the kept results, given ``size``
        self._total = 0

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """``compute()``, or the result of the same key's computation under way or just done."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            computes = entry is None or entry[1] < now
            if computes:
                self._make_room(now)
                if key in self._entries:
                    self._drop(key)  # expired
                entry = (_Computation(), now + self.ttl)
                self._entries[key] = entry
        computation = entry[0]
        if computes:
            try:
                computation.value = compute()
            except BaseException as error:
                computation.error = error
                with self._lock:  # the next one to ask tries again
                    if self._entries.get(key) is entry:
                        self._drop(key)
            finally:
                computation.done.set()
            if computation.error is None and self.size is not None:
                self._count(key, entry, self.size(computation.value))
        return computation.result()

    def _count(self, key: Hashable, entry: tuple[_Computation[V], float], size: int) -> None:
        with self._lock:
            if self._entries.get(key) is not entry:
                return  # pushed out already
            self._sizes[key] = size
            self._total += size
            while self._total > self.max_size:  # the oldest go first, this one last
                self._drop(next(iter(self._sizes)))

    def _make_room(self, now: float) -> None:
        if len(self._entries) < self.max_entries:
            return
        for key in [key for key, (_, until) in self._entries.items() if until < now]:
            self._drop(key)
        while len(self._entries) >= self.max_entries:  # the oldest go first
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        del self._entries[key]
        self._total -= self._sizes.pop(key, 0)
