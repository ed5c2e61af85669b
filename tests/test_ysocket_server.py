"""Garbage on the ``/changes`` socket's binary (Y.js) channel, against the real server
(gunicorn, gevent), on SQLite and PostgreSQL: truncated lib0, unknown message types, lengths
and counts far past the frame, deep nesting, random bytes. The socket that sends them is
answered where an answer exists (``u-reject``), ignored otherwise and closed once it has sent
too many; the server logs no error and other sockets carry on.
"""

from __future__ import annotations

import random

import requests

from dxc.manage.importer import import_document
from dxc.protocol import ymessages
from dxc.protocol.lib0 import Encoder
from dxc.protocol.live import realm_set_hash
from dxc.protocol.ymessages import BadYMessage, UnknownYMessage, YMessage
from dxc.realtime.ydocs import MAX_UNREADABLE_FRAMES
from tests.test_live_server import USER, Socket, db_id_of, socket_url, token
from tests.test_yjs_http import UPDATE

MINE = realm_set_hash(["rlm-public", USER])


def lib0(*parts: tuple[str, object]) -> bytes:
    out = Encoder()
    for kind, value in parts:
        getattr(out, kind)(value)
    return out.to_bytes()


def garbage() -> list[bytes]:
    """Frames that are no Y message at all (each counts against the socket)."""
    rng = random.Random(16)
    doc = (("var_string", "doc-open"), ("var_string", "items"), ("var_string", "content"))
    return [
        b"",
        b"\x05u-c",  # a string length past the end
        lib0(("var_string", "u-c"), ("var_uint", 2**50)) + b"ab",  # a huge table length
        lib0(("var_string", "u-c"), ("var_uint", 2**60)),  # more than a safe integer
        lib0(*doc) + b"\x75\x01" * 1000,  # arrays nested 1000 deep as the key
        lib0(*doc) + b"\x75" + lib0(("var_uint", 2**40)),  # a count far past the frame
        lib0(("var_string", "u-c"), ("var_string", "items"), ("var_string", "content"),
             ("any", "itm1"), ("var_uint", 10**6)),  # an update longer than the frame
        *unreadable(rng, 1024 * 1024, 1),
        *unreadable(rng, 64, 3),
    ]


def unreadable(rng: random.Random, size: int, count: int) -> list[bytes]:
    """``count`` random frames of up to ``size`` bytes that cannot be read as a message
    (random bytes that happen to name an unknown type are not counted against a socket)."""
    found: list[bytes] = []
    while len(found) < count:
        frame = rng.randbytes(rng.randrange(1, size + 1))
        try:
            ymessages.decode(frame)
        except UnknownYMessage:
            continue
        except BadYMessage as bad:
            if bad.message is None:
                found.append(frame)
    return found


def connect(server, db_url: str, client_id: str) -> Socket:
    client = Socket(socket_url(db_url, token=token(server, db_url), clientId=client_id))
    client.send({"type": "ready", "rev": "1:0", "realmSetHash": MINE})
    first = client.receive()
    assert first is not None and first["type"] == "changes", first  # the imported item
    client.send({"type": "ready", "rev": first["newRev"], "realmSetHash": MINE})
    client.round_trip()
    return client


def u_c(k: object, i: int, update: bytes = UPDATE) -> bytes:
    return ymessages.encode(YMessage("u-c", "items", "content", k, update, i=i))


def test_garbage_frames_are_refused_and_the_socket_closed_while_others_carry_on(server):
    db_url = server.create_database(demo_users=(USER,))
    import_document(server.services, db_id_of(db_url), {
        "schema": {"items": "@id"}, "data": {USER: {"items": {"itm1": {"owner": USER}}}}})
    good = connect(server, db_url, "good-client")
    good.send_bytes(ymessages.encode(YMessage("doc-open", "items", "content", "itm1")))
    assert ymessages.decode(good.receive_bytes()).type == "in-sync"
    bad = connect(server, db_url, "bad-client")

    frames = garbage()
    assert len(frames) < MAX_UNREADABLE_FRAMES
    for frame in frames:
        bad.send_bytes(frame)
    unknown = lib0(("var_string", "zz-top"), ("var_string", "items"))
    invalid_utf8 = lib0(("var_uint8_array", b"\xff\xfe\xfd"))
    for _ in range(MAX_UNREADABLE_FRAMES):  # unknown types are a newer client's: never closed
        bad.send_bytes(unknown)
        bad.send_bytes(invalid_utf8)
    bad.round_trip()  # still open, and nothing but the pong

    # A u-c readable up to its id is refused by it, as in /sync; the client then drops it.
    bad.send_bytes(u_c({"not": "a key"}, 5))
    bad.send_bytes(u_c("itm1", 6, b""))
    bad.send_bytes(u_c("itm1", 7))
    answers = [ymessages.decode(bad.receive_bytes()) for _ in range(3)]
    assert [(a.type, a.i) for a in answers] == [("u-reject", 5), ("u-reject", 6), ("u-ack", 7)]
    relayed = ymessages.decode(good.receive_bytes())
    assert (relayed.type, relayed.k, relayed.u) == ("u-s", "itm1", UPDATE)

    for frame in garbage()[: MAX_UNREADABLE_FRAMES - len(frames)]:
        bad.send_bytes(frame)
    while (message := bad.receive()) is not None:
        assert message == {"type": "pong"}, "only a keepalive before the close"
    assert bad.closed, "the socket is closed after too many unreadable frames"
    bad.close()

    good.round_trip()
    good.send_bytes(u_c("itm1", 8))
    assert (ymessages.decode(good.receive_bytes()).type, good.closed) == ("u-ack", False)
    good.close()
    assert requests.get(f"{server.url}/ready", timeout=10).status_code == 200
    log = server.log()
    assert "Traceback" not in log and " 500 " not in log, log[-4000:]
    assert f"{MAX_UNREADABLE_FRAMES} unreadable Y frames" in log
