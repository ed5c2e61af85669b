"""One open ``/changes`` socket: answers its client and tells it about changes.

The client says ``ready {rev, realmSetHash}`` whenever it is idle; the
server then compares that with the database (:class:`LiveFeed`) and sends
at most one thing before the next ``ready``: a ``changes`` message when it
can bring the client to the head revision exactly, ``realm-added`` /
``realm-accepted`` / ``realm-removed`` when its realm set changed in a way
we can name, and ``realms-changed`` (the client pulls) in every other case.
Changes that arrive from the bus while the client is busy wait for its next
``ready``.

Binary frames are Y.js messages, served by :class:`SocketDocuments`
(``dxc.realtime.ydocs``), whose updates and awareness go out at once, not
waiting for a ``ready``.

One greenlet per socket, the request's: it reads frames, answers them and
keeps the timers (keep-alive, token expiry, account checks). Changes from the
hub are handled by a short-lived greenlet (a thread without gevent) started for
the first waiting change and gone when none waits, so an idle socket holds no
second one. One lock lets one of the two act at a time: they share what the
client has, and both write to the socket.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from dxc import cooperative, metrics
from dxc.access import Principal
from dxc.bus.base import Bus, Change
from dxc.protocol import live
from dxc.protocol.live import Ping, Ready, SocketQuery
from dxc.protocol.revisions import decode_revision, encode_revision
from dxc.protocol.ymessages import YMessage
from dxc.protocol.ymessages import encode as encode_y
from dxc.realtime.feed import LiveFeed, RealmView
from dxc.realtime.hub import Hub
from dxc.realtime.ydocs import SocketDocuments

log = logging.getLogger(__name__)

#: A server frame at least this often (seconds). The client reconnects when
#: nothing arrives within 20 s of its ping (every 30 s), and a pong sent at
#: once can slip just before the moment it measures from (spec §5.8).
KEEPALIVE_SECONDS = 10.0
#: How often an open socket asks whether its user was deactivated (seconds).
ACCOUNT_CHECK_SECONDS = 30.0


class SocketClosed(Exception):
    """The client is gone."""


class Socket(Protocol):
    def send(self, data: str | bytes) -> None:
        """Send a text (str) or binary (bytes) frame; raise :class:`SocketClosed`
        if the socket is closed."""

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        """The next frame; None once the socket is closed; ``TimeoutError`` if none
        came within ``timeout`` seconds."""

    def close(self) -> None:
        """Close the socket; ``receive`` then returns None (at once, or once the client
        answered the close)."""


class LiveSession:
    def __init__(
        self,
        socket: Socket,
        feed: LiveFeed,
        hub: Hub,
        db_id: str,
        principal: Principal,
        query: SocketQuery,
        expires_at: float | None = None,
        keepalive: float = KEEPALIVE_SECONDS,
        deactivated: Callable[[], bool] | None = None,
        account_check: float = ACCOUNT_CHECK_SECONDS,
        bus: Bus | None = None,
        y_stored: Callable[[str], None] | None = None,
    ) -> None:
        """``expires_at``: when the access token expires (epoch seconds); None if anonymous.

        ``deactivated`` asks whether the user was deactivated (None if anonymous): at
        once and every ``account_check`` seconds, since a token outlives a deactivation.
        ``bus``: where Y.js updates and awareness go out (None: binary frames are ignored);
        ``y_stored`` hears of each database the socket stored a Y update of.
        """
        self.socket = socket
        self.feed = feed
        self.hub = hub
        self.db_id = db_id
        self.principal = principal
        self.query = query
        self.keepalive = keepalive
        self.deactivated = deactivated
        self.account_check = account_check
        self._account_checked = time.monotonic()
        self._expires = (
            None if expires_at is None else time.monotonic() + expires_at - time.time()
        )
        self.client_rev = query.rev
        self.client_hash: str | None = query.realms_hash
        self.view: RealmView | None = None
        #: A message is out and the client has not said ``ready`` since (or never did).
        self.waiting = True
        self.token_expired = False
        self.sent: collections.Counter[str] = collections.Counter()
        #: Messages sent because of a change another process committed.
        self.cross_process = 0
        self._changes: list[Change] = []
        self._changes_lock = threading.Lock()
        self._handling_changes = False  # a thread is handling self._changes
        self._turn = threading.Lock()  # held by whoever acts on the socket
        self._ended = False  # run() returned: changes are no longer handled
        self._last_sent = time.monotonic()
        self.documents = (
            None
            if bus is None
            else SocketDocuments(
                feed.router, bus, db_id, principal, query.client_id, self._send_y, y_stored
            )
        )

    # --- called from other greenlets ------------------------------------------------------

    def notify(self, change: Change) -> None:
        with self._changes_lock:
            self._changes.append(change)
            if self._handling_changes:
                return
            self._handling_changes = True
        cooperative.start(self._handle_changes)

    def _handle_changes(self) -> None:
        """Handle the waiting changes, and those that arrive meanwhile, then end."""
        while True:
            with self._changes_lock:
                changes, self._changes = self._changes, []
                if not changes:
                    self._handling_changes = False
                    return
            with self._turn:
                if self._ended:
                    return
                self._acting(self._on_changes, changes)

    # --- the socket's greenlet ------------------------------------------------------------

    def run(self) -> None:
        """Serve the socket until the client closes it."""
        started = time.monotonic()
        metrics.LIVE_SOCKETS.inc()
        try:
            with self._turn:
                if self._refuse_deactivated():
                    return
                if self._expired():
                    self._expire()
                else:
                    self.view = self.feed.realm_view(self.db_id, self.principal)
                    self.hub.subscribe(self, self.db_id, self.view.all)
                    if self.documents is not None:
                        self.documents.readable = frozenset(self.view.realms)
            self._serve()
        except SocketClosed:
            pass
        except Exception:
            self._failed()
        finally:
            with self._turn:  # after a change being handled, which may subscribe again
                self._ended = True
                self.hub.unsubscribe(self)
            if self.documents is not None:
                self.documents.close()
            metrics.LIVE_SOCKETS.dec()
            log.info(
                "live close db=%s client=%s seconds=%.0f sent=%s cross_process=%d",
                self.db_id,
                self.query.client_id,
                time.monotonic() - started,
                dict(self.sent),
                self.cross_process,
            )

    def _serve(self) -> None:
        while True:
            try:
                frame = self.socket.receive(self._seconds_to_next_timer())
            except TimeoutError:
                frame = None
            else:
                if frame is None:
                    return  # closed
                # The greenlets already waiting go first: when a change wakes thousands of
                # sockets, their messages are not held behind the answers of the first clients
                # (each ``ready`` costs a database read).
                cooperative.take_turns()
            with self._turn:
                if frame is not None:
                    self._on_frame(frame)
                if not self._on_timers():
                    return

    def _on_timers(self) -> bool:
        """Whatever is due: token expiry, the account check, a keep-alive; False if
        the socket was closed."""
        if self._expires is not None and not self.token_expired and self._expired():
            self._expire()
        if self._account_due() and self._refuse_deactivated():
            return False
        if time.monotonic() - self._last_sent >= self.keepalive:
            self._send(live.pong())
        return True

    def _acting(self, action: Callable[..., object], *args: object) -> None:
        """``action(*args)`` outside the socket's greenlet: a failure ends the socket."""
        try:
            action(*args)
        except SocketClosed:
            pass  # the socket's greenlet sees the close
        except Exception:
            self._failed()

    def _failed(self) -> None:
        # E.g. the database is unreachable: the client retries after 3 s, not at once.
        log.exception("live session of db=%s failed", self.db_id)
        with contextlib.suppress(SocketClosed):
            self._send(live.error("Internal server error"))
        self.socket.close()

    def _seconds_to_next_timer(self) -> float:
        deadline = self._last_sent + self.keepalive
        if self._expires is not None and not self.token_expired:
            deadline = min(deadline, self._expires)
        if self.deactivated is not None:
            deadline = min(deadline, self._account_checked + self.account_check)
        return max(0.0, deadline - time.monotonic())

    def _on_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            metrics.LIVE_MESSAGES_RECEIVED.labels("y").inc()
            documents = self.documents
            if documents is None or self.view is None or self.token_expired:
                return
            if not documents.on_frame(frame):
                self.socket.close()  # too many unreadable frames: a broken client
                raise SocketClosed
            return
        message = live.parse_client_message(frame)
        if isinstance(message, Ping):
            metrics.LIVE_MESSAGES_RECEIVED.labels("ping").inc()
            self._send(live.pong())
        elif isinstance(message, Ready):
            metrics.LIVE_MESSAGES_RECEIVED.labels("ready").inc()
            self.client_rev = message.rev
            self.client_hash = message.realm_set_hash
            self.waiting = False
            self._check()
        else:
            metrics.LIVE_MESSAGES_RECEIVED.labels("other").inc()

    def _on_changes(self, changes: list[Change]) -> None:
        if self.documents is not None and not self.token_expired:
            for change in changes:
                self.documents.on_change(change)
        changes = [change for change in changes if change.awareness is None]
        if not changes or self.waiting or self.token_expired:
            return  # the next ready compares with the database anyway
        others = []
        for change in changes:
            if change.client_id is not None and change.client_id == self.query.client_id:
                self._advance(change)
            else:
                others.append(change)
        if not others:
            return
        if self._check():
            self.cross_process += any(c.origin != os.getpid() for c in others)

    def _advance(self, change: Change) -> None:
        """The client's own /sync committed ``change``: its answer brought it there.

        Without this, the next ``changes`` would be based on the revision the
        client had before that sync, and the client would ignore it and send
        ``ready`` first (spec §5.10, step 4).
        """
        if change.rev is None or change.shard_id is None:
            return
        current = (decode_revision(self.client_rev) or {}).get(change.shard_id)
        if current is not None and change.rev > current:
            self.client_rev = encode_revision({change.shard_id: change.rev})

    def _check(self) -> bool:
        """Send what the client is missing, if anything; True if something was sent.

        Sockets asking the same between the same two deliveries of the hub share
        one answer: when a change wakes a thousand sockets, one read answers them,
        and one more answers the ``ready`` each of their clients sends back. Safe,
        as a change that arrives while the client is busy is not looked at (the
        next ``ready`` is): that ``ready`` comes after the change's delivery, so
        the answer it gets was computed after it too."""
        if self.token_expired:
            return False
        outcome = self.feed.catch_up(
            self.db_id, self.principal, self.client_rev, self.client_hash, self.hub.deliveries
        )
        if self.view is None or outcome.view.all != self.view.all:
            self.hub.subscribe(self, self.db_id, outcome.view.all)
        if outcome.view.hash != self.client_hash:
            messages = realm_messages(self.view, outcome.view, self.client_hash)
        elif outcome.pull:
            messages = [live.realms_changed(outcome.view.hash)]
        else:
            messages = [outcome.message] if outcome.message else []
        self.view = outcome.view
        if self.documents is not None:
            self.documents.readable = frozenset(outcome.view.realms)
        for message in messages:
            self._send(message)
        self.waiting = bool(messages)
        return self.waiting

    def _account_due(self) -> bool:
        return (
            self.deactivated is not None
            and time.monotonic() - self._account_checked >= self.account_check
        )

    def _refuse_deactivated(self) -> bool:
        """Close the socket if the user is deactivated; True if so.

        An ``error`` message sends the client down its slow retry path (3 s and
        user activity); each reconnect is refused here again, no tight loop.
        """
        if self.deactivated is None:
            return False
        self._account_checked = time.monotonic()
        if not self.deactivated():
            return False
        log.info("live refused db=%s user=%s: deactivated", self.db_id, self.principal.user_id)
        self._send(live.error("Account deactivated"))
        self.socket.close()
        return True

    def _expired(self) -> bool:
        return self._expires is not None and time.monotonic() >= self._expires

    def _expire(self) -> None:
        """Ask for a fresh token and stop sending data; the client reconnects with it."""
        self.token_expired = True
        self.hub.unsubscribe(self)
        self._send(live.token_expired())

    def _send_y(self, message: YMessage) -> None:
        self.socket.send(encode_y(message))
        self._last_sent = time.monotonic()
        self.sent[message.type] += 1
        metrics.LIVE_MESSAGES_SENT.labels(message.type).inc()

    def _send(self, message: live.ServerMessage) -> None:
        self.socket.send(message.text)
        self._last_sent = time.monotonic()
        self.sent[message.kind] += 1
        metrics.LIVE_MESSAGES_SENT.labels(message.kind).inc()


def realm_messages(
    known: RealmView | None, current: RealmView, client_hash: str | None
) -> list[live.ServerMessage]:
    """What to tell a client whose realm set (hash ``client_hash``) is not ``current``.

    If the client holds ``known`` (its hash matches), the differences are
    named realm by realm; otherwise it is told to pull.
    """
    if known is None or known.hash != client_hash:
        return [live.realms_changed(current.hash)]
    had = set(known.realms) | set(known.invites)
    has = set(current.realms) | set(current.invites)
    messages = []
    for realm in sorted(set(current.realms) - set(known.realms)):
        was_invited = realm in known.invites
        messages.append(live.realm_accepted(realm) if was_invited else live.realm_added(realm))
    messages += [live.realm_added(realm) for realm in sorted(set(current.invites) - had)]
    messages += [live.realm_removed(realm) for realm in sorted(had - has)]
    return messages or [live.realms_changed(current.hash)]
