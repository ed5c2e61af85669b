"""Which open sockets of this process can see which (database, realm).

The bus hands every change to :meth:`Hub.deliver`, which wakes only the
sockets subscribed to a realm the change touched, or every socket of the
database when realm sets may have changed or the realms are unknown.
Waking must not block: a subscriber queues the change for its own greenlet.

:attr:`Hub.deliveries` counts the changes handed out: two sockets that ask
the database the same question with no delivery in between may share one
answer (``dxc.realtime.shared``), computed after the last delivery both heard.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Protocol

from dxc.bus.base import Change


class Subscriber(Protocol):
    def notify(self, change: Change) -> None:
        """Take note of ``change``; called from the bus listener, must not block."""


class Hub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[Subscriber, tuple[str, frozenset[str]]] = {}
        self._by_realm: dict[tuple[str, str], set[Subscriber]] = {}
        self._by_db: dict[str, set[Subscriber]] = {}
        #: Changes delivered so far (only grows).
        self.deliveries = 0

    def __len__(self) -> int:
        return len(self._members)

    def subscribe(self, subscriber: Subscriber, db_id: str, realms: Iterable[str]) -> None:
        """Wake ``subscriber`` for changes of ``realms`` in ``db_id`` (replaces earlier realms)."""
        realms = frozenset(realms)
        with self._lock:
            self._drop(subscriber)
            self._members[subscriber] = (db_id, realms)
            self._by_db.setdefault(db_id, set()).add(subscriber)
            for realm in realms:
                self._by_realm.setdefault((db_id, realm), set()).add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._drop(subscriber)

    def databases(self) -> list[str]:
        """The databases with open sockets here (what a polling bus must watch)."""
        with self._lock:
            return list(self._by_db)

    def deliver(self, change: Change) -> int:
        """Wake the subscribers that can see ``change``; returns how many."""
        with self._lock:
            self.deliveries += 1
            if change.realms is None or change.realm_sets:
                targets = set(self._by_db.get(change.db_id, ()))
            else:
                targets = set()
                for realm in change.realms:
                    targets.update(self._by_realm.get((change.db_id, realm), ()))
        for subscriber in targets:
            subscriber.notify(change)
        return len(targets)

    def _drop(self, subscriber: Subscriber) -> None:
        membership = self._members.pop(subscriber, None)
        if membership is None:
            return
        db_id, realms = membership
        _discard(self._by_db, db_id, subscriber)
        for realm in realms:
            _discard(self._by_realm, (db_id, realm), subscriber)


def _discard(index: dict, key: object, subscriber: Subscriber) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(subscriber)
        if not members:
            del index[key]
