"""A server WebSocket on the request's own connection, with no thread of its own.

simple-websocket gives every connection a reader thread, and the session needed a
second one to wait for both frames and changes: three greenlets per idle socket
(~8-10 KiB each) where one suffices. Here the greenlet that serves the request reads
(:meth:`WebSocket.receive`, which also sends the protocol pings), and whoever has a
message writes it (:meth:`WebSocket.send`, under a lock). wsproto does the
handshake, the framing, permessage-deflate and the close handshake.

Compression: browsers and Node's ws offer permessage-deflate; a zlib context kept
from one message to the next costs ~100 KiB per socket, for sockets that mostly
wait. Each message is compressed on its own instead (RFC 7692's
``no_context_takeover``, which a server may ask of both sides). So a text's frame
is the same on every socket that compresses alike, and is built once for all the
sockets that send the same text (:mod:`dxc.api.frames`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from gevent.socket import wait_read
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    Request,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from dxc.api.frames import FRAMES
from dxc.realtime.session import SocketClosed

#: Bytes read from the connection at once.
RECEIVE_BYTES = 4096
#: Seconds to wait for the client's answer to our close frame.
CLOSE_SECONDS = 5.0


class WebSocket:
    """One accepted WebSocket (a :class:`dxc.realtime.session.Socket`)."""

    def __init__(
        self, sock: socket.socket, connection: Connection, ping_interval: float | None,
        max_message_size: int | None, deflate: PerMessageDeflate | None = None,
    ) -> None:
        """``deflate``: the permessage-deflate the connection negotiated, if any."""
        self.sock = sock
        self.connection = connection
        self.deflate = deflate
        self.ping_interval = ping_interval
        self.max_message_size = max_message_size
        self._send_lock = threading.Lock()
        self._parts: list[str | bytes] = []
        self._size = 0
        self._messages: list[str | bytes] = []
        self._next_ping = None if ping_interval is None else time.monotonic() + ping_interval
        self._pong_due = False
        self._close_deadline: float | None = None
        self._gone = False  # the connection is unusable: closed both ways, reset, or broken

    @classmethod
    def accept(
        cls, environ: Mapping[str, Any], ping_interval: float | None = None,
        max_message_size: int | None = None,
    ) -> WebSocket:
        """Complete the upgrade of the WSGI request ``environ`` (gunicorn's or werkzeug's).

        Raises wsproto's ``RemoteProtocolError`` if the request is no valid upgrade."""
        sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
        if sock is None:
            raise RuntimeError("the WSGI server does not expose the connection's socket")
        handshake = WSConnection(ConnectionType.SERVER)
        headers = [
            (key[5:].replace("_", "-").encode("latin-1"), str(value).encode("latin-1"))
            for key, value in environ.items() if key.startswith("HTTP_")
        ]
        handshake.initiate_upgrade_connection(headers, environ.get("PATH_INFO", "/"))
        for event in handshake.events():
            if isinstance(event, Request):
                break
        else:
            raise RemoteProtocolError("no WebSocket upgrade request", event_hint=None)
        deflate = PerMessageDeflate(
            server_no_context_takeover=True, client_no_context_takeover=True
        )
        accepted = handshake.send(AcceptConnection(extensions=[deflate]))
        sock.settimeout(None)  # cooperative under gevent; receive() waits with a timeout
        sock.sendall(accepted)
        assert handshake.connection is not None
        # Only the open connection is kept: the handshake's HTTP state is of no further use.
        return cls(
            sock, handshake.connection, ping_interval, max_message_size,
            deflate if deflate.enabled() else None,
        )

    # --- any greenlet ---------------------------------------------------------------------

    def send(self, data: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message; :class:`SocketClosed` if closed.

        A text goes out as the frame :data:`FRAMES` keeps of it: wsproto keeps no state
        across whole messages sent, so writing its frame directly leaves it as it was."""
        with self._send_lock:
            if self._gone or self.connection.state is not ConnectionState.OPEN:
                raise SocketClosed
            if isinstance(data, bytes):
                self._write(Message(data=data))
            else:
                self._write_bytes(FRAMES.frame(data, self.deflate))

    def close(self, code: int = CloseReason.NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Start the close handshake (the reader sees the client's answer, or gives up
        after :data:`CLOSE_SECONDS`); does nothing if the socket is closing already."""
        with self._send_lock:
            if self._gone or self.connection.state is not ConnectionState.OPEN:
                return
            self._close_deadline = time.monotonic() + CLOSE_SECONDS
            with contextlib.suppress(SocketClosed):
                self._write(CloseConnection(code=code, reason=reason))

    def _write(self, event: Any) -> None:
        """Frame ``event`` and write it; the caller holds the send lock."""
        try:
            data = self.connection.send(event)
        except LocalProtocolError as error:
            self._gone = True
            raise SocketClosed from error
        self._write_bytes(data)

    def _write_bytes(self, data: bytes) -> None:
        """Write framed ``data``; the caller holds the send lock."""
        try:
            self.sock.sendall(data)
        except OSError as error:
            self._gone = True
            raise SocketClosed from error

    # --- the greenlet that serves the socket ----------------------------------------------

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        """The next message; None once the socket is closed. Raises ``TimeoutError``
        when ``timeout`` seconds pass without one. Pings the client meanwhile and
        closes the socket if it did not answer the last ping."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._messages:
            if self._gone:
                return None
            now = time.monotonic()
            wake = min(
                (t for t in (deadline, self._next_ping, self._close_deadline) if t is not None),
                default=None,
            )
            if wake is not None and wake <= now:
                if self._close_deadline is not None and self._close_deadline <= now:
                    self._gone = True  # the client never answered our close
                elif self._next_ping is not None and self._next_ping <= now:
                    self._ping()
                else:
                    raise TimeoutError
                continue
            if self._readable(None if wake is None else wake - now):
                self._read()
        return self._messages.pop(0)

    def _readable(self, timeout: float | None) -> bool:
        """Wait on the gevent loop until the connection is readable (each wait costs
        one watcher, and no descriptor limit applies); False after ``timeout`` seconds."""
        try:
            wait_read(self.sock.fileno(), timeout)
        except TimeoutError:
            return False
        return True

    def _read(self) -> None:
        try:
            data = self.sock.recv(RECEIVE_BYTES)
        except OSError:
            data = b""
        if not data:
            self._gone = True
            return
        try:
            self.connection.receive_data(data)
            for event in self.connection.events():
                self._on_event(event)
        except (RemoteProtocolError, LocalProtocolError, SocketClosed):
            self._gone = True

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Message):
            self._on_message(event)
        elif isinstance(event, Ping):
            with self._send_lock:
                self._write(event.response())
        elif isinstance(event, Pong):
            self._pong_due = False
        elif isinstance(event, CloseConnection):
            with self._send_lock:
                if self.connection.state is ConnectionState.REMOTE_CLOSING:
                    self._write(event.response())
            self._gone = True

    def _on_message(self, event: Message) -> None:
        if self._close_deadline is not None:
            return  # closing: what the client still sends (a refused message's rest) is dropped
        self._size += len(event.data)
        if self.max_message_size is not None and self._size > self.max_message_size:
            self._parts, self._size = [], 0
            self.close(CloseReason.MESSAGE_TOO_BIG, "Message is too big")
            return
        self._parts.append(event.data)
        if not event.message_finished:
            return
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(event, BytesMessage):
            self._messages.append(parts[0] if len(parts) == 1 else b"".join(parts))
        else:
            self._messages.append("".join(parts))

    def _ping(self) -> None:
        """Protocol pings find clients that vanished without closing (browsers answer
        them; the addon never sees them)."""
        assert self.ping_interval is not None and self._next_ping is not None
        self._next_ping += self.ping_interval
        if self._pong_due:
            self.close(CloseReason.POLICY_VIOLATION, "Ping/Pong timeout")
            return
        self._pong_due = True
        with self._send_lock, contextlib.suppress(SocketClosed):
            self._write(Ping())
