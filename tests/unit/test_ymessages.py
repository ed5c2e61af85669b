"""The Y.js binary messages and lib0 primitives, against the byte vectors of
spec auth-and-websocket §5.7 (lib0 0.2.114 output), and on arbitrary input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dxc.protocol import ProtocolError, ymessages
from dxc.protocol.lib0 import Decoder, Encoder, Lib0Error
from dxc.protocol.ymessages import BadYMessage, YMessage
from dxc.realtime.ydocs import awareness_states, awareness_withdrawal
from dxc.tson import UNDEFINED, Binary

DOC = {"table": "docs", "prop": "content", "k": "doc1"}


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


VECTORS = [
    (
        YMessage("u-ack", "docs", "content", i=5),
        "05752d61636b 04646f6373 07636f6e74656e74 0000000000000005",
    ),
    (YMessage("outdated-server-rev"), "136f757464617465642d7365727665722d726576"),
    (
        YMessage("y-complete-sync-done", y_server_rev="r1"),
        "14792d636f6d706c6574652d73796e632d646f6e65 027231",
    ),
    (YMessage("in-sync", **DOC), "07696e2d73796e63 04646f6373 07636f6e74656e74 77 04646f6331"),
    (
        YMessage("doc-open", **DOC, server_rev="r1"),
        "08646f632d6f70656e 04646f6373 07636f6e74656e74 7704646f6331 77027231 7f",
    ),
    (
        YMessage("doc-open", **DOC, server_rev="r1", sv=b"\x00"),
        "08646f632d6f70656e 04646f6373 07636f6e74656e74 7704646f6331 77027231 740100",
    ),
    (
        YMessage("doc-close", **DOC),
        "09646f632d636c6f7365 04646f6373 07636f6e74656e74 7704646f6331",
    ),
    (
        YMessage("u-c", **DOC, u=b"\x01\x02\x03", i=7),
        "03752d63 04646f6373 07636f6e74656e74 7704646f6331 03010203 0000000000000007",
    ),
    (
        YMessage("u-s", **DOC, u=b"\x01\x02\x03", r="r2"),
        "03752d73 04646f6373 07636f6e74656e74 7704646f6331 03010203 027232",
    ),
    (
        YMessage("aware", **DOC, u=b"\x09"),
        "056177617265 04646f6373 07636f6e74656e74 7704646f6331 0109",
    ),
]


@pytest.mark.parametrize(("message", "hex_text"), VECTORS, ids=[m.type for m, _ in VECTORS])
def test_messages_encode_and_decode_as_lib0_writes_them(message, hex_text):
    frame = unhex(hex_text)
    assert ymessages.encode(message) == frame
    assert ymessages.decode(frame) == message


def test_a_u_s_without_its_revision_tail_has_none():
    frame = unhex("03752d73 04646f6373 07636f6e74656e74 7704646f6331 03010203")
    assert ymessages.decode(frame).r is None
    assert ymessages.encode(YMessage("u-s", **DOC, u=b"\x01")).endswith(b"\x00")


@pytest.mark.parametrize(
    ("value", "hex_text"),
    [
        (0, "7d00"),
        (63, "7d3f"),
        (64, "7d8001"),
        (-1, "7d41"),
        (-64, "7dc001"),
        (2**31 - 1, "7dbfffffff0f"),
        (2**31, "7c4f000000"),
        (1.5, "7c3fc00000"),
        (0.1, "7b3fb999999999999a"),
        (None, "7e"),
        (True, "78"),
        (False, "79"),
        ("é", "7702c3a9"),
        (["a", 1], "75027701617d01"),
        ({"a": None}, "760101617e"),
        (b"\x07", "740107"),
    ],
)
def test_any_matches_lib0(value, hex_text):
    out = Encoder()
    out.any(value)
    assert out.to_bytes().hex() == hex_text
    assert Decoder(bytes.fromhex(hex_text)).any() == value


def test_undefined_is_tag_127():
    out = Encoder()
    out.any(UNDEFINED)
    assert out.to_bytes() == b"\x7f"
    assert Decoder(b"\x7f").any() is UNDEFINED


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**31) + 1, 2**31 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_any_round_trips(value):
    out = Encoder()
    out.any(value)
    assert Decoder(out.to_bytes()).any() == value


@given(st.binary(max_size=200))
def test_garbage_frames_are_refused_cleanly(frame):
    with contextlib.suppress(BadYMessage):
        ymessages.decode(frame)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x03u-c",
        unhex("03752d63 04646f6373 07636f6e74656e74 7704646f6331 05010203"),
        b"\x05hello\x04docs\x07content",
        unhex("07696e2d73796e63 04646f6373 07636f6e74656e74 76ffffffff0f"),
        unhex("07696e2d73796e63 04646f6373 07636f6e74656e74 7e"),
        unhex("07696e2d73796e63 00 07636f6e74656e74 7704646f6331"),
    ],
    ids=[
        "empty", "truncated", "overlong-update", "unknown-type",
        "huge-count", "null-key", "no-table",
    ],
)
def test_bad_frames_are_bad_y_messages(frame):
    with pytest.raises(BadYMessage):
        ymessages.decode(frame)


def test_nesting_is_bounded():
    with pytest.raises(Lib0Error):
        Decoder(b"\x75\x01" * 100 + b"\x7e").any()


def test_sync_y_keeps_u_c_and_refuses_unstorable_ones_by_id():
    good = {"type": "u-c", **DOC, "u": Binary("Uint8Array", b"\x01"), "i": 3}
    bad = {**good, "k": {"no": "key"}, "i": 4}
    updates, refused = ymessages.parse_sync_y([good, bad, {"type": "sv"}, "junk"])
    assert [m.i for m in updates] == [3]
    assert updates[0].u == b"\x01" and updates[0].doc_key == "doc1"
    assert [r.message.i for r in refused] == [4]
    with pytest.raises(ProtocolError):
        ymessages.parse_sync_y({"type": "u-c"})


def test_compound_keys_name_documents_by_their_wire_key():
    message = YMessage("u-c", "docs", "content", ["a", 1], b"\x01", i=1)
    assert message.doc_key == '["a",1]'
    assert ymessages.key_of(message.doc_key, "alice") == ["a", 1]


def test_a_private_id_names_the_users_own_object():
    message = ymessages.on_server(YMessage("u-c", "prefs", "content", "#prefs", b"\x01"), "al")
    assert message.doc_key == "#prefs:al"
    assert ymessages.key_of("#prefs:al", "al") == "#prefs"
    assert ymessages.key_of("#prefs:bob", "al") == "#prefs:bob"
    assert ymessages.on_server(message, None).doc_key == "#prefs:al"
    assert ymessages.on_server(YMessage("u-c", k="#p"), None).doc_key == "#p"
    assert ymessages.on_server(YMessage("u-c", k=["#p", "x"]), "al").doc_key == '["#p","x"]'
    assert ymessages.stored_key("plain", "al") == "plain"


def test_frames_hold_whole_groups_of_records():
    big = [ymessages.document_record("k1", None, b"\x00" * 40000)] * 2
    small = [ymessages.realm_record("r")]
    body = b"".join(ymessages.frames([small, big, small]))
    sizes = []
    pos = 0
    while pos < len(body):
        (size,) = struct.unpack(">I", body[pos : pos + 4])
        sizes.append(size)
        pos += 4 + size
    assert pos == len(body)
    assert sizes == [len(small[0]) + 2 * len(big[0]), len(small[0])]
    assert list(ymessages.frames([])) == []


# y-protocols 1.0.7: client 300 at clock 1 with {"user": {"name": "x"}}; applying the
# withdrawal below after it removes client 300's state (checked with the real y-protocols).
ANNOUNCED = unhex("01ac0201157b2275736572223a7b226e616d65223a2278227d7d")
WITHDRAWN = unhex("01ac0202046e756c6c")


def test_awareness_updates_are_read_and_withdrawn_as_y_protocols_does():
    assert awareness_states(ANNOUNCED) == {300: (1, False)}
    assert awareness_withdrawal({300: 1}) == WITHDRAWN
    assert awareness_states(WITHDRAWN) == {300: (2, True)}
    with pytest.raises(Lib0Error):
        awareness_states(ANNOUNCED + b"\x00")
