"""The ``/changes`` WebSocket channel: its query, its messages and the realm-set hash.

Spec: auth-and-websocket.md §5. Text frames are TSON; the client sends
``ping`` and ``ready``, the server the messages built below. Binary frames
carry Y.js messages, which this server does not support yet: they are ignored
(the client keeps its updates queued and also sends them through ``/sync``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dxc import tson
from dxc.tson import TSONError

#: Lone UTF-16 surrogates, which ``JSON.stringify`` writes as ``\\udxxx`` escapes.
_SURROGATE = re.compile("[\ud800-\udfff]")


def realm_set_hash(realms: Iterable[str], invite_realms: Iterable[str] = ()) -> str:
    """The client's ``computeRealmSetHash``: base64(SHA-1(JSON of the sorted realm set)).

    It must be computed over exactly the ``realms``/``inviteRealms`` that
    ``/sync`` answers, or the client pulls forever.
    """
    items = [{"realmId": realm, "accepted": True} for realm in realms]
    items += [{"realmId": realm, "accepted": False} for realm in invite_realms]
    # JavaScript compares strings by UTF-16 code units; the sort is stable.
    items.sort(key=lambda item: item["realmId"].encode("utf-16-be", "surrogatepass"))
    text = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    text = _SURROGATE.sub(lambda match: "\\u%04x" % ord(match.group()), text)
    return base64.b64encode(hashlib.sha1(text.encode()).digest()).decode()


@dataclass(frozen=True)
class SocketQuery:
    """The query of ``{db}/changes?v&rev&yrev&realmsHash&clientId&dxcv&token`` (spec §5.2)."""

    version: int  #: 3 = the client understands BlobRefs; 2 or absent = older clients
    rev: str | None  #: the client's serverRevision when it connected
    yrev: str | None  #: its Y.js revision (unused until Y.js is supported)
    realms_hash: str | None  #: its realm-set hash when the pipeline started (may be stale)
    client_id: str | None  #: its clientIdentity, as in /sync requests
    client_version: str | None  #: the addon version (dxcv)
    token: str | None  #: the access token; absent for anonymous clients

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> SocketQuery:
        def text(name: str) -> str | None:
            return query.get(name) or None

        version = query.get("v", "")
        small_number = version.isascii() and version.isdigit() and len(version) < 4  # not "²"
        return cls(
            version=int(version) if small_number else 1,
            rev=text("rev"),
            yrev=text("yrev"),
            realms_hash=text("realmsHash"),
            client_id=text("clientId"),
            client_version=text("dxcv"),
            token=text("token"),
        )


# --- client -> server ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Ready:
    """"I have applied everything up to ``rev`` and hold realm set ``realm_set_hash``"."""

    rev: str | None  #: None when it is not a revision of ours (an old client format)
    realm_set_hash: str | None


ClientMessage = Ping | Ready


def parse_client_message(frame: str | bytes) -> ClientMessage | None:
    """A client text frame as a message; None for what the server ignores.

    Binary frames are Y.js messages, and unknown types are ignored so that a
    newer client does not lose its socket over a message we do not know.
    """
    if isinstance(frame, bytes):
        return None
    try:
        message = tson.loads(frame)
    except TSONError:
        return None
    if not isinstance(message, dict):
        return None
    kind = message.get("type")
    if kind == "ping":
        return Ping()
    if kind == "ready":
        rev, realm_hash = message.get("rev"), message.get("realmSetHash")
        return Ready(
            rev if isinstance(rev, str) and rev else None,
            realm_hash if isinstance(realm_hash, str) else None,
        )
    return None


# --- server -> client ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServerMessage:
    kind: str  #: its ``type``, for logs and metrics
    text: str  #: the TSON text frame


def _message(kind: str, **fields: str) -> ServerMessage:
    return ServerMessage(kind, tson.dumps({"type": kind, **fields}))


def pong() -> ServerMessage:
    return _message("pong")


def error(text: str) -> ServerMessage:
    """The client logs ``text``, drops the socket and retries after 3 s and user activity."""
    return _message("error", error=text)


def token_expired() -> ServerMessage:
    """The client refreshes its token and reconnects with the new one."""
    return _message("token-expired")


def realms_changed(realms_hash: str) -> ServerMessage:
    """The client pulls unconditionally (it does not look at the hash)."""
    return _message("realms-changed", realmsHash=realms_hash)


def realm_added(realm: str) -> ServerMessage:
    """The client pulls if ``realm`` is in neither its realms nor its invites."""
    return _message("realm-added", realm=realm)


def realm_accepted(realm: str) -> ServerMessage:
    """The client pulls if ``realm`` is not among its realms yet (an invite it accepted)."""
    return _message("realm-accepted", realm=realm)


def realm_removed(realm: str) -> ServerMessage:
    """The client pulls if ``realm`` is among its realms or invites."""
    return _message("realm-removed", realm=realm)


def changes(
    base_rev: str, new_rev: str, realms_hash: str, entries: Sequence[str]
) -> ServerMessage:
    """A ready-made change set, applied only if ``base_rev`` is exactly the client's revision.

    ``entries`` are the JSON texts of ``{table, muts}`` entries, as a ``/sync``
    answer carries them. They must hold every visible change in
    (``base_rev``, ``new_rev``]: the client trusts ``new_rev`` and never
    fetches a gap.
    """
    text = '{"type":"changes","baseRev":%s,"newRev":%s,"realmSetHash":%s,"changes":[%s]}' % (
        json.dumps(base_rev, ensure_ascii=False),
        json.dumps(new_rev),
        json.dumps(realms_hash),
        ",".join(entries),
    )
    return ServerMessage("changes", text)
