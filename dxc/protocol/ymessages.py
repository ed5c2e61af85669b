"""Y.js messages: the socket's binary frames, the ``y``/``yMessages`` of ``/sync``
and the records of ``/y/download`` (spec sync §7, auth-and-websocket §5.7).

A document is named by (table, prop, k): ``k`` is its parent object's primary
key as the client holds it (a string, or an array for compound keys). A
private id ``#x`` is the client's name for the user's own object, which the
server stores as ``#x:<userId>`` (the client rewrites it so in its data
changes, never in Y messages): :func:`on_server` and :func:`key_of` translate.
Updates (``u``) are Yjs V2 updates and stay opaque bytes here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from dxc import tson
from dxc.protocol import ProtocolError
from dxc.protocol.identifiers import KEY_BYTES, TABLE_BYTES, identifier_problem
from dxc.protocol.keys import decode_wire_key, encode_wire_key, is_valid_key
from dxc.protocol.lib0 import Decoder, Encoder, Lib0Error
from dxc.tson import UNDEFINED, Binary

#: Messages that name a document (table, prop, k).
_DOC_TYPES = frozenset({"aware", "doc-open", "doc-close", "sv", "u-c", "u-s", "in-sync"})
#: Messages that name a table and prop but no document.
_ACK_TYPES = frozenset({"u-ack", "u-reject"})
#: Largest ``i`` the client can have (an IndexedDB auto-increment key, a JS number).
_MAX_I = 2**53
#: ``/y/download`` record tags, and the frame size the client's producer aims at.
REALM_RECORD, TABLE_RECORD, DOCUMENT_RECORD = 1, 2, 3
FRAME_BYTES = 65535


@dataclass(frozen=True)
class YMessage:
    type: str
    table: str = ""
    prop: str = ""
    k: Any = None
    u: bytes | None = None  #: an update (u-c, u-s) or an awareness update (aware)
    i: int | None = None  #: the client's update id (u-c, u-ack, u-reject)
    r: str | None = None  #: the server revision of a u-s
    sv: bytes | None = None  #: a state vector (sv, doc-open)
    server_rev: Any = None  #: doc-open: the client's yServerRevision
    y_server_rev: str = ""  #: y-complete-sync-done

    @property
    def doc_key(self) -> str:
        """The parent object's key as the store holds it (the wire key)."""
        return encode_wire_key(self.k)


class BadYMessage(ValueError):
    """A Y message that cannot be read; ``message`` is set when it can still be
    answered (a ``u-c`` refused by its ``i``)."""

    def __init__(self, reason: str, message: YMessage | None = None) -> None:
        super().__init__(reason)
        self.message = message


class UnknownYMessage(BadYMessage):
    """A message type this server does not know (a newer client's, perhaps)."""


# --- the socket's binary frames -------------------------------------------------------------


def encode(message: YMessage) -> bytes:
    """The binary frame of ``message``, as the client's ``encodeYMessage`` writes it."""
    out = Encoder()
    out.var_string(message.type)
    if message.type == "outdated-server-rev":
        return out.to_bytes()
    if message.type == "y-complete-sync-done":
        out.var_string(message.y_server_rev)
        return out.to_bytes()
    out.var_string(message.table)
    out.var_string(message.prop)
    if message.type in _ACK_TYPES:
        out.big_uint64(message.i or 0)
        return out.to_bytes()
    out.any(message.k)
    if message.type in ("aware", "u-c", "u-s"):
        out.var_uint8_array(message.u or b"")
    if message.type == "u-c":
        out.big_uint64(message.i or 0)
    elif message.type == "u-s":
        out.var_string(message.r or "")
    elif message.type == "sv":
        out.var_uint8_array(message.sv or b"")
    elif message.type == "doc-open":
        out.any(UNDEFINED if message.server_rev is None else message.server_rev)
        out.any(UNDEFINED if message.sv is None else message.sv)
    return out.to_bytes()


def decode(frame: bytes) -> YMessage:
    """The message in a binary frame; :class:`BadYMessage` if it is not one."""
    data = Decoder(frame)
    try:
        kind = data.var_string()
        if kind == "outdated-server-rev":
            return YMessage(kind)
        if kind == "y-complete-sync-done":
            return YMessage(kind, y_server_rev=data.var_string())
        if kind not in _DOC_TYPES | _ACK_TYPES:
            raise UnknownYMessage(f"unknown Y message type {kind[:40]!r}")
        table, prop = data.var_string(), data.var_string()
        if kind in _ACK_TYPES:
            return YMessage(kind, table, prop, i=data.big_uint64())
        k = data.any()
        if kind in ("in-sync", "doc-close"):
            return _checked(YMessage(kind, table, prop, k))
        if kind == "doc-open":
            server_rev, sv = data.any(), data.any()
            return _checked(
                YMessage(
                    kind,
                    table,
                    prop,
                    k,
                    server_rev=server_rev if isinstance(server_rev, str) else None,
                    sv=sv if isinstance(sv, bytes) else None,
                )
            )
        if kind == "sv":
            return _checked(YMessage(kind, table, prop, k, sv=data.var_uint8_array()))
        u = data.var_uint8_array()
        if kind == "u-c":
            message = _checked(YMessage(kind, table, prop, k, u, i=data.big_uint64()))
            if not u:
                raise BadYMessage("u is empty", message)
            return message
        if kind == "u-s":
            r = data.var_string() if data.has_content() else ""
            return _checked(YMessage(kind, table, prop, k, u, r=r or None))
        return _checked(YMessage(kind, table, prop, k, u))  # aware
    except Lib0Error as error:
        raise BadYMessage(str(error)) from None


def _checked(message: YMessage) -> YMessage:
    """``message`` if its table, prop and key can name a stored document."""
    for name, text in (("table", message.table), ("prop", message.prop)):
        problem = identifier_problem(text, TABLE_BYTES) if text else "is empty"
        if problem:
            raise BadYMessage(f"{name} {problem}", message)
    if not (isinstance(message.k, str | list) and is_valid_key(message.k)):
        raise BadYMessage("k must be a string or an array key", message)
    if problem := identifier_problem(message.doc_key, KEY_BYTES):
        raise BadYMessage(f"k {problem}", message)
    return message


# --- /sync: the request's ``y`` and the answer's ``yMessages`` --------------------------------


def parse_sync_y(value: Any) -> tuple[list[YMessage], list[BadYMessage]]:
    """The ``u-c`` messages of a request's ``y`` (other types are hints we do not
    use), and those that cannot be stored: refused by their ``i``.

    A ``y`` that is not an array, or a ``u-c`` without a usable table, prop or
    ``i`` (nothing to refuse it by), is a :class:`ProtocolError`.
    """
    if value is UNDEFINED or value is None:
        return [], []
    if not isinstance(value, list):
        raise ProtocolError("y must be an array")
    updates, refused = [], []
    for entry in value:
        if not isinstance(entry, dict) or entry.get("type") != "u-c":
            continue
        table, prop, i = entry.get("table"), entry.get("prop"), entry.get("i")
        if not (isinstance(table, str) and isinstance(prop, str)):
            raise ProtocolError("y: a u-c needs table and prop strings")
        if not (isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= _MAX_I):
            raise ProtocolError("y: a u-c needs a non-negative integer i")
        u = entry.get("u")
        message = YMessage("u-c", table, prop, entry.get("k"), i=i)
        if not (isinstance(u, Binary) and u.type_name == "Uint8Array" and u.data):
            refused.append(BadYMessage("u must be a non-empty Uint8Array", message))
            continue
        try:
            updates.append(_checked(YMessage("u-c", table, prop, entry.get("k"), u.data, i=i)))
        except BadYMessage as bad:
            refused.append(bad)
    return updates, refused


def to_tson(message: YMessage) -> str:
    """``message`` as an entry of the answer's ``yMessages`` (TSON text)."""
    if message.type == "y-complete-sync-done":
        value: dict[str, Any] = {"type": message.type, "yServerRev": message.y_server_rev}
    elif message.type in _ACK_TYPES:
        value = {"type": message.type, "table": message.table, "prop": message.prop, "i": message.i}
    else:
        value = {"type": message.type, "table": message.table, "prop": message.prop, "k": message.k}
        if message.u is not None:
            value["u"] = Binary("Uint8Array", message.u)
        if message.r is not None:
            value["r"] = message.r
    return tson.dumps(value)


def on_server(message: YMessage, user_id: str | None) -> YMessage:
    """``message`` naming its document by the stored key of the parent."""
    if not isinstance(message.k, str):
        return message
    return replace(message, k=stored_key(message.k, user_id))


def stored_key(k: Any, user_id: str | None) -> str:
    """The stored key of the parent the client names ``k``: a private id ``#x`` of
    a logged-in user is ``#x:<userId>``, as the client writes it in its data changes."""
    if user_id is not None and isinstance(k, str) and k.startswith("#"):
        return f"{k}:{user_id}"
    return encode_wire_key(k)


def key_of(doc_key: str, user_id: str | None) -> Any:
    """The client's ``k`` for a stored document key: the user's own private
    ``#x:<userId>`` is ``#x`` to them (the client never strips it from Y messages)."""
    if user_id is not None and doc_key.startswith("#") and doc_key.endswith(f":{user_id}"):
        return doc_key[: -len(user_id) - 1]
    return decode_wire_key(doc_key)


# --- /y/download ---------------------------------------------------------------------------


def realm_record(realm_id: str) -> bytes:
    out = Encoder()
    out.uint8(REALM_RECORD)
    out.var_string(realm_id)
    return out.to_bytes()


def table_record(table: str, prop: str) -> bytes:
    out = Encoder()
    out.uint8(TABLE_RECORD)
    out.var_string(table)
    out.var_string(prop)
    return out.to_bytes()


def document_record(doc_key: str, user_id: str | None, update: bytes) -> bytes:
    out = Encoder()
    out.uint8(DOCUMENT_RECORD)
    out.any(key_of(doc_key, user_id))
    out.var_uint8_array(update)
    return out.to_bytes()


def frames(groups: Iterable[list[bytes]]) -> Iterator[bytes]:
    """Length-framed payloads (uint32 big-endian length + bytes) of whole groups
    of records: a frame ends only between groups, once it holds ``FRAME_BYTES``.

    A frame boundary is where the client records its resume point, so all
    records of one document must share a frame.
    """
    buffered: list[bytes] = []
    size = 0
    for group in groups:
        buffered.extend(group)
        size += sum(map(len, group))
        if size >= FRAME_BYTES:
            yield _frame(buffered, size)
            buffered, size = [], 0
    if buffered:
        yield _frame(buffered, size)


def _frame(records: list[bytes], size: int) -> bytes:
    return struct.pack(">I", size) + b"".join(records)


@dataclass(frozen=True)
class ResumePoint:
    """Where the client's download of a realm stopped: after this document."""

    table: str
    prop: str
    doc_key: str


def parse_downloaded_realms(body: Any, user_id: str | None) -> dict[str, ResumePoint | None]:
    """The ``downloadedRealms`` of a ``/y/download`` body: realm -> None for
    complete (``'*'``), or where to resume (its key translated for ``user_id``).
    Entries we cannot read mean "start that realm again", which is always safe."""
    if not isinstance(body, dict):
        raise ProtocolError("the body must be an object")
    realms = body.get("downloadedRealms", {})
    if realms is UNDEFINED or realms is None:
        realms = {}
    if not isinstance(realms, dict):
        raise ProtocolError("downloadedRealms must be an object")
    parsed: dict[str, ResumePoint | None] = {}
    for realm_id, entry in realms.items():
        if entry == "*":
            parsed[realm_id] = None
        elif (
            isinstance(entry, dict)
            and isinstance(entry.get("tbl"), str)
            and isinstance(entry.get("prop"), str)
            and isinstance(entry.get("key"), str | list)
            and is_valid_key(entry["key"])
        ):
            key = stored_key(entry["key"], user_id)
            parsed[realm_id] = ResumePoint(entry["tbl"], entry["prop"], key)
    return parsed
