"""Accepting ``/changes`` sockets: authentication, then one :class:`LiveSession` each."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable

from sqlalchemy import Engine

from dxc import metrics
from dxc.access import ANONYMOUS, Principal
from dxc.auth.accounts import is_deactivated
from dxc.auth.tokens import ExpiredToken, InvalidToken, TokenSigner
from dxc.bus.base import Bus
from dxc.protocol import live
from dxc.protocol.live import SocketQuery
from dxc.realtime.feed import LiveFeed
from dxc.realtime.hub import Hub
from dxc.realtime.session import LiveSession, Socket, SocketClosed

log = logging.getLogger(__name__)


class LiveService:
    """The sockets of one process: their hub, and the bus that feeds it."""

    def __init__(
        self,
        signer: TokenSigner,
        feed: LiveFeed,
        bus: Bus,
        control: Engine,
        y_stored: Callable[[str], None] | None = None,
    ) -> None:
        """``control``: where the users are, whose deactivation closes their sockets;
        ``y_stored`` hears of each database a socket stored a Y update of."""
        self.y_stored = y_stored
        self.signer = signer
        self.control = control
        self.feed = feed
        self.bus = bus
        self.hub = Hub()
        self._sockets: dict[Socket, str] = {}  # -> its database
        self._draining = False

    def serve(self, socket: Socket, db_id: str, query: SocketQuery) -> None:
        """Run the socket of a client of ``db_id`` until it closes."""
        principal, expires_at = ANONYMOUS, None
        deactivated: Callable[[], bool] | None = None
        if query.token:
            try:
                claims = self.signer.verify(db_id, query.token)
            except ExpiredToken:
                # Accepted, then told at once to refresh (spec §5.9): closing
                # would make the client reconnect at once with the same token.
                expires_at = 0.0
            except InvalidToken:
                # The client's slow retry path (3 s and user activity), not a tight loop.
                with contextlib.suppress(SocketClosed):
                    socket.send(live.error("Invalid token").text)
                    metrics.LIVE_MESSAGES_SENT.labels("error").inc()
                socket.close()
                return
            else:
                principal = Principal(claims.sub, claims.scopes, claims.email, claims.name)
                expires_at = None if claims.expires is None else float(claims.expires)
                deactivated = functools.partial(is_deactivated, self.control, db_id, claims.sub)
        self.bus.start(self.hub)
        log.info(
            "live open db=%s client=%s user=%s v=%d dxcv=%s",
            db_id,
            query.client_id,
            principal.user_id,
            query.version,
            query.client_version,
        )
        if self._draining:  # accepted just before the worker stopped listening
            socket.close()
            return
        self._sockets[socket] = db_id
        try:
            LiveSession(
                socket, self.feed, self.hub, db_id, principal, query, expires_at,
                deactivated=deactivated, bus=self.bus, y_stored=self.y_stored,
            ).run()
        finally:
            self._sockets.pop(socket, None)

    def open_per_database(self) -> Counter[str]:
        """How many sockets this process serves, per database (``flask dxc stats``)."""
        return Counter(self._sockets.values())

    def drain(self) -> None:
        """Close every open socket: the worker is stopping (a HUP, a deploy), and its
        clients should reconnect to another worker now, not after the grace period."""
        self._draining = True
        for socket in list(self._sockets):
            socket.close()  # the session's reader sees it and the session ends

    def close_database(self, db_id: str) -> int:
        """Close the sockets of ``db_id`` (it moved: its clients reconnect, and are
        forwarded); how many."""
        closing = [socket for socket, db in list(self._sockets.items()) if db == db_id]
        for socket in closing:
            socket.close()
        return len(closing)
