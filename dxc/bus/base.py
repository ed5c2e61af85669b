"""The notification bus: every worker process learns what another one committed.

A :class:`Change` says "database D, revision R, these realms" and is
published after the commit (``/sync``, imports). Each process that holds
open sockets runs one listener, started with its first socket, which hands
every change to the process's :class:`~dxc.realtime.hub.Hub`.

Backends (``dxc.realtime.service.make_bus`` picks one): Redis pub/sub when ``REDIS_URL`` is set,
else PostgreSQL ``LISTEN``/``NOTIFY`` when the control database is PostgreSQL,
else (SQLite) datagrams between the processes of the host; the last two
also poll the ``revisions`` table as a safety net. A notification can be lost
(a broker restart, a dropped connection); every listener therefore tells the
hub "anything may have changed" after each (re)connection, and sockets then
compare their client's revision with the database.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from dxc import metrics
from dxc.access.index import REALMS_TABLE
from dxc.access.members import MEMBERS_TABLE

log = logging.getLogger(__name__)

#: Tables whose rows decide who sees which realm: a write may change realm sets.
REALM_SET_TABLES = frozenset({REALMS_TABLE, MEMBERS_TABLE})
#: Seconds a listener waits before reconnecting after a failure (doubles up to the max).
RETRY_SECONDS = 0.5
#: The longest wait between reconnection attempts: live changes come back soon after an outage.
MAX_RETRY_SECONDS = 10.0
#: The longest a listener waits without checking whether it should stop.
WAKE_SECONDS = 1.0


@dataclass(frozen=True)
class Awareness:
    """A Y.js awareness update of a document (presence: cursors, names), relayed
    to the sockets that have the document open; never stored."""

    table: str
    prop: str
    doc_key: str
    update: bytes
    sender: str  #: the socket that sent it (not told its own awareness)

    def to_dict(self) -> dict[str, str]:
        return {
            "table": self.table,
            "prop": self.prop,
            "key": self.doc_key,
            "u": base64.b64encode(self.update).decode("ascii"),
            "from": self.sender,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Awareness | None:
        if not isinstance(data, dict):
            return None
        return cls(
            str(data["table"]),
            str(data["prop"]),
            str(data["key"]),
            base64.b64decode(data["u"], validate=True),
            str(data["from"]),
        )


@dataclass(frozen=True)
class Change:
    """Database ``db_id`` reached revision ``rev`` on shard ``shard_id``."""

    db_id: str
    shard_id: int | None
    rev: int | None  #: None: unknown (a listener reconnected, a poll saw it move)
    #: Realms whose objects changed (entered or left); None: any realm may have.
    realms: frozenset[str] | None
    #: A ``realms``/``members`` row changed: some user's realm set may differ now.
    realm_sets: bool = False
    #: The clientIdentity whose /sync committed it (its answer already brought it there).
    client_id: str | None = None
    #: The process that published it (0: another one, unknown which), for logs.
    origin: int = 0
    #: Not a revision but an awareness update of a document in ``realms``.
    awareness: Awareness | None = None

    @classmethod
    def committed(
        cls,
        db_id: str,
        shard_id: int,
        rev: int,
        realms: Iterable[str],
        tables: Iterable[str],
        client_id: str | None = None,
    ) -> Change:
        return cls(
            db_id,
            shard_id,
            rev,
            frozenset(realms),
            not REALM_SET_TABLES.isdisjoint(tables),
            client_id,
            os.getpid(),
        )

    @classmethod
    def anything(
        cls, db_id: str, shard_id: int | None = None, rev: int | None = None, origin: int = 0
    ) -> Change:
        """"Something in ``db_id`` may have changed": every socket of it checks."""
        return cls(db_id, shard_id, rev, None, True, None, origin)

    @classmethod
    def aware(cls, db_id: str, realm_id: str, awareness: Awareness) -> Change:
        realms = frozenset((realm_id,))
        return cls(db_id, None, None, realms, origin=os.getpid(), awareness=awareness)

    def merged(self, later: Change) -> Change:
        """One change that says what this one and ``later`` (of the same database and
        shard) say: the newest revision, every realm; a client only if both are its."""
        rev = None if self.rev is None or later.rev is None else max(self.rev, later.rev)
        realms = None if self.realms is None or later.realms is None else self.realms | later.realms
        return Change(
            self.db_id,
            self.shard_id,
            rev,
            realms,
            self.realm_sets or later.realm_sets,
            self.client_id if self.client_id == later.client_id else None,
            self.origin if self.origin == later.origin else 0,
        )

    def to_json(self, drop_realms: bool = False) -> str:
        realms = None if self.realms is None or drop_realms else sorted(self.realms)
        data = {
            "db": self.db_id,
            "shard": self.shard_id,
            "rev": self.rev,
            "realms": realms,
            "realmSets": self.realm_sets,
            "client": self.client_id,
            "pid": self.origin,
        }
        if self.awareness is not None:
            data["aware"] = self.awareness.to_dict()
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Change | None:
        """The change in ``text``, or None (logged) if it is not one."""
        try:
            data = json.loads(text)
            realms = data["realms"]
            return cls(
                str(data["db"]),
                _optional_int(data.get("shard")),
                _optional_int(data.get("rev")),
                None if realms is None else frozenset(str(r) for r in realms),
                bool(data.get("realmSets")),
                data.get("client") if isinstance(data.get("client"), str) else None,
                int(data.get("pid") or 0),
                Awareness.from_dict(data.get("aware")),
            )
        except (ValueError, TypeError, KeyError):  # bad base64 is a ValueError too
            log.warning("ignoring a malformed change notification: %.200r", text)
            return None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


class Listener(Protocol):
    """What a bus hands its changes to (the hub)."""

    def deliver(self, change: Change) -> None: ...

    def databases(self) -> list[str]: ...


class BusUnusable(RuntimeError):
    """The configured bus cannot deliver changes (said at startup, not at the first socket)."""


class Bus(ABC):
    """Publishes changes and, once started, listens for them in a background greenlet."""

    name = "bus"
    #: What the listener raises when its broker goes away: logged in one line, then retried.
    outages: tuple[type[Exception], ...] = (ConnectionError, TimeoutError)

    def __init__(self) -> None:
        self._listener: Listener | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def publish(self, change: Change) -> None:
        """Tell every worker; never raises, as the change is committed already."""
        try:
            self._send(change)
            metrics.BUS_CHANGES.labels("published").inc()
        except self.outages as error:
            log.warning(
                "could not publish a change of %s (%s): the broker is unreachable",
                change.db_id,
                type(error).__name__,
            )
        except Exception:
            log.exception("could not publish a change of %s (sockets catch up later)", change.db_id)

    def check(self) -> None:
        """At a worker's start: raise :class:`BusUnusable` if this bus cannot work where
        it is configured (nothing to check for most)."""
        return None

    def start(self, listener: Listener) -> None:
        """Start listening (once per process) and hand every change to ``listener``."""
        with self._lock:
            if self._listener is not None:
                return
            self._listener = listener
        threading.Thread(target=self._run, name=f"dxc-{self.name}", daemon=True).start()

    def stop(self) -> None:
        """Stop listening, within about :data:`WAKE_SECONDS` (an orderly shutdown)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _received(self, change: Change | None) -> None:
        if change is not None and self._listener is not None:
            metrics.BUS_CHANGES.labels("received").inc()
            self._listener.deliver(change)

    def _resync(self) -> None:
        """After (re)connecting: a change may have been missed, let every socket check."""
        assert self._listener is not None
        for db_id in self._listener.databases():
            self._listener.deliver(Change.anything(db_id, origin=os.getpid()))

    def _run(self) -> None:
        wait = RETRY_SECONDS
        while not self.stopping:
            started = time.monotonic()
            try:
                self._listen(self._resync)
            except self.outages as error:
                if self.stopping:
                    return
                # An outage (expected, and repeated while it lasts): one line, no traceback.
                log.warning(
                    "the %s listener lost its connection (%s); reconnecting in %.1f s",
                    self.name,
                    type(error).__name__,
                    wait,
                )
            except Exception:
                if self.stopping:
                    return
                log.exception("the %s listener failed; reconnecting in %.1f s", self.name, wait)
            if time.monotonic() - started > 60:
                wait = RETRY_SECONDS
            self._stopping.wait(wait)
            wait = min(wait * 2, MAX_RETRY_SECONDS)

    @abstractmethod
    def _send(self, change: Change) -> None:
        """Deliver ``change`` to every process's listener."""

    @abstractmethod
    def _listen(self, connected: Callable[[], None]) -> None:
        """Receive changes until the connection fails or :meth:`stop` is called.

        Call ``connected`` once subscribed, and never wait longer than
        :data:`WAKE_SECONDS` without looking at :attr:`stopping`.
        """

