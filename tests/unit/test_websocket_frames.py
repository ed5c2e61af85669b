"""The server's WebSocket frames a text once for all the sockets that send it."""

from __future__ import annotations

import json
import socket

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol

from dxc.api import frames
from dxc.api.websocket import WebSocket


class Client:
    """A client connected to a :class:`WebSocket` over a socket pair (as gunicorn hands it)."""

    def __init__(self, deflate: bool) -> None:
        server_end, self.sock = socket.socketpair()
        self.connection = WSConnection(ConnectionType.CLIENT)
        offer = [PerMessageDeflate()] if deflate else []
        request = self.connection.send(
            Request(host="localhost", target="/db/changes", extensions=offer)
        )
        environ = {"gunicorn.socket": server_end, "PATH_INFO": "/db/changes"}
        for line in request.decode("latin-1").split("\r\n")[1:]:
            if line:
                name, value = line.split(":", 1)
                environ["HTTP_" + name.upper().replace("-", "_")] = value.strip()
        self.server = WebSocket.accept(environ)
        self.connection.receive_data(self.sock.recv(65536))
        assert isinstance(next(self.connection.events()), AcceptConnection)
        assert (self.server.deflate is not None) == deflate

    def received(self, count: int) -> list[str | bytes]:
        messages: list[str | bytes] = []
        while len(messages) < count:
            self.connection.receive_data(self.sock.recv(65536))
            messages += [
                event.data
                for event in self.connection.events()
                if isinstance(event, TextMessage | BytesMessage)
            ]
        return messages


@pytest.fixture
def framings(monkeypatch) -> list[str]:
    """The texts wsproto framed for the sockets."""
    framed: list[str] = []

    class Counting(FrameProtocol):
        def send_data(self, payload=b"", fin=True):
            framed.append(payload)
            return super().send_data(payload, fin)

    monkeypatch.setattr(frames, "FrameProtocol", Counting)
    return framed


def test_one_text_sent_by_many_sockets_is_framed_once_per_compression(framings):
    clients = [Client(deflate) for deflate in (False, True, False, True)]
    text = json.dumps({"type": "changes", "changes": ["é" * 2000]})
    for client in clients:
        client.server.send(text)
    assert len(framings) == 2, "one plain frame and one compressed"
    for client in clients:
        assert client.received(1) == [text]


def test_a_kept_frame_is_sent_again_and_other_messages_still_go_out(framings):
    client = Client(deflate=True)
    shared = json.dumps({"type": "changes", "changes": ["x" * 1000]})
    client.server.send(shared)
    client.server.send(b"\x01\x02")  # a Y.js message, framed by the connection
    client.server.send(shared)  # each compressed on its own: decodable again
    client.server.send('{"type":"pong"}')
    assert client.received(4) == [shared, b"\x01\x02", shared, '{"type":"pong"}']
    assert len(framings) == 2


def test_only_the_last_texts_are_kept():
    cache = frames.FrameCache(size=2)
    texts = [f"message {i}" for i in range(3)]
    built = [cache.frame(text, None) for text in texts]
    assert cache.frame(texts[2], None) is built[2]
    assert cache.frame(texts[0], None) is not built[0], "pushed out by the later texts"
