"""The Y.js documents one socket has open (spec auth-and-websocket §5.4-§5.7).

* ``doc-open``: the socket follows the document; the updates after the
  client's ``serverRev`` that it did not send itself go out as ``u-s``, then
  ``in-sync``.
* ``u-c``: stored like a ``/sync`` update (``u-ack`` / ``u-reject``); the
  commit's news reaches every worker's sockets through the bus, and each
  socket that follows the document reads the new updates from the database.
* ``aware``: relayed through the bus to the other sockets that follow the
  document, never stored.
* ``doc-close``: no longer followed.
* The socket closes: the awareness states it announced are withdrawn for the
  others at once (as y-protocols does for a peer that leaves), instead of
  after their 30 s timeout.
* A frame that is no Y message: a ``u-c`` readable up to its ``i`` is
  refused (``u-reject``), an unknown type ignored (a newer client's), and
  anything else ignored until ``MAX_UNREADABLE_FRAMES``, when the socket is
  closed. Private ids: the client names its ``#x`` as ``#x``, stored as
  ``#x:<userId>`` (:func:`dxc.protocol.ymessages.on_server`).

Updates are sent only while the principal may read the parent object, and
without ``r``: a client takes ``r`` as its ``yServerRevision`` for *every*
document, and a socket only brings the open ones up to date (the next
``/sync`` sends the others, and these again, which Yjs ignores).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dxc.access import Principal
from dxc.bus.base import Awareness, Bus, Change
from dxc.bus.commits import committing
from dxc.protocol import ymessages
from dxc.protocol.lib0 import Decoder, Encoder, Lib0Error
from dxc.protocol.revisions import decode_revision
from dxc.protocol.ymessages import BadYMessage, UnknownYMessage, YMessage
from dxc.storage.objects import ObjectStore
from dxc.storage.router import ShardRouter
from dxc.storage.ydocs import YDocStore
from dxc.sync.ydocs import UpdateAcceptor, refusal

log = logging.getLogger(__name__)

#: Documents one socket may follow at once (an editor has a few open).
MAX_OPEN_DOCUMENTS = 1000
#: Largest awareness update relayed (a few users' cursors and names).
MAX_AWARENESS_BYTES = 16 * 1024
#: Unreadable binary frames after which a socket is closed (a broken or hostile client).
MAX_UNREADABLE_FRAMES = 16


@dataclass
class _Followed:
    #: The revision up to which the client has this document's updates.
    cursor: int
    #: The parent's realm when last seen readable; None: the client gets nothing.
    realm: str | None = None
    #: Awareness clients this socket announced (client id -> clock), to withdraw at close.
    announced: dict[int, int] = field(default_factory=dict)


class SocketDocuments:
    def __init__(
        self,
        router: ShardRouter,
        bus: Bus,
        db_id: str,
        principal: Principal,
        client_id: str | None,
        send: Callable[[YMessage], None],
        y_stored: Callable[[str], None] | None = None,
    ) -> None:
        """``send`` writes a message to the socket as a binary frame; ``y_stored``
        hears of the database once an update is stored (compaction, docs/yjs.md)."""
        self.y_stored = y_stored
        self.router = router
        self.bus = bus
        self.db_id = db_id
        self.principal = principal
        self.client_id = client_id
        self.send = send
        self.socket_id = secrets.token_hex(8)
        #: The realms the principal may read now (the socket's realm view).
        self.readable: frozenset[str] = frozenset()
        self._followed: dict[tuple[str, str, str], _Followed] = {}
        #: Binary frames that were no Y message (the real client sends none).
        self.unreadable = 0

    # --- from the client ------------------------------------------------------------------

    def on_frame(self, frame: bytes) -> bool:
        """Handle a binary frame; False: the socket sent too many unreadable ones
        and is to be closed."""
        try:
            message = ymessages.decode(frame)
        except UnknownYMessage as unknown:  # a newer client's: nothing to answer, no harm
            log.info("ignoring a Y frame of db=%s: %s", self.db_id, unknown)
            return True
        except BadYMessage as bad:
            if bad.message is not None and bad.message.type == "u-c":
                self.send(refusal(bad.message))  # the client drops it, as after /sync
                return True
            return self._unreadable(bad)
        self._handle(message)
        return True

    def _unreadable(self, bad: BadYMessage) -> bool:
        self.unreadable += 1
        if self.unreadable == 1:
            log.info("ignoring a Y frame of db=%s: %s", self.db_id, bad)
        if self.unreadable < MAX_UNREADABLE_FRAMES:
            return True
        log.info("closing a socket of db=%s: %d unreadable Y frames", self.db_id, self.unreadable)
        return False

    def _handle(self, message: YMessage) -> None:
        if message.type == "u-c":
            self._update(message)  # the acceptor names its document itself
            return
        message = ymessages.on_server(message, self.principal.user_id)
        if message.type == "doc-open":
            self._open(message)
        elif message.type == "doc-close":
            self._followed.pop(_doc(message), None)
        elif message.type == "aware":
            self._aware(message)

    def _open(self, message: YMessage) -> None:
        doc = _doc(message)
        if doc not in self._followed and len(self._followed) >= MAX_OPEN_DOCUMENTS:
            return
        shard = self.router.shard_for(self.db_id)
        since = (decode_revision(message.server_rev) or {}).get(shard.id, 0)
        self._followed[doc] = _Followed(since)
        self._catch_up({doc: self._followed[doc]})
        self.send(YMessage("in-sync", message.table, message.prop, self._key(message.doc_key)))

    def _update(self, message: YMessage) -> None:
        shard = self.router.shard_for(self.db_id)
        # No client_id: the commit does not bring this client's serverRevision anywhere.
        with committing(shard, self.db_id, self.bus) as write:
            acceptor = UpdateAcceptor(write, self.principal, self.client_id)
            answer = acceptor.accept(message, missing_parent_refused=False)
        if acceptor.stored and self.y_stored is not None:
            self.y_stored(self.db_id)
        if answer is not None:
            self.send(answer)

    def _aware(self, message: YMessage) -> None:
        followed = self._followed.get(_doc(message))
        if followed is None or followed.realm is None or not message.u:
            return
        if len(message.u) > MAX_AWARENESS_BYTES:
            return
        try:
            states = awareness_states(message.u)
        except Lib0Error:
            return  # not an awareness update: the other clients would fail on it
        for client, (clock, removed) in states.items():
            if removed:
                followed.announced.pop(client, None)
            else:
                followed.announced[client] = clock
        self._publish_awareness(message.table, message.prop, message.doc_key, message.u)

    def _publish_awareness(self, table: str, prop: str, doc_key: str, update: bytes) -> None:
        followed = self._followed.get((table, prop, doc_key))
        if followed is None or followed.realm is None:
            return
        awareness = Awareness(table, prop, doc_key, update, self.socket_id)
        self.bus.publish(Change.aware(self.db_id, followed.realm, awareness))

    def close(self) -> None:
        """The socket closed: withdraw the awareness states it announced."""
        for (table, prop, doc_key), followed in self._followed.items():
            if followed.announced:
                update = awareness_withdrawal(followed.announced)
                self._publish_awareness(table, prop, doc_key, update)
        self._followed.clear()

    # --- from the bus ---------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Relay an awareness update, or send the new updates of followed documents."""
        awareness = change.awareness
        if awareness is not None:
            followed = self._followed.get((awareness.table, awareness.prop, awareness.doc_key))
            if (
                followed is not None
                and followed.realm in self.readable
                and awareness.sender != self.socket_id
            ):
                key = self._key(awareness.doc_key)
                self.send(YMessage("aware", awareness.table, awareness.prop, key, awareness.update))
            return
        behind = {
            doc: followed
            for doc, followed in self._followed.items()
            if change.rev is None or followed.cursor < change.rev
        }
        if behind:
            self._catch_up(behind)

    def _catch_up(self, docs: dict[tuple[str, str, str], _Followed]) -> None:
        """Send each of ``docs`` the updates it is missing, if its parent is readable."""
        pending: list[YMessage] = []
        with self.router.shard_for(self.db_id).transaction(read_only=True) as connection:
            store = ObjectStore(connection, self.db_id)
            head = store.current_revision()
            documents = YDocStore(connection, self.db_id)
            for (table, prop, doc_key), followed in docs.items():
                parent = store.get_many(table, [doc_key]).get(doc_key)
                if parent is None or parent.deleted or parent.realm_id not in self.readable:
                    followed.realm = None
                    continue  # the cursor stays: if it becomes readable, it gets them all
                followed.realm = parent.realm_id
                if followed.cursor >= head:
                    continue
                key = self._key(doc_key)
                pending.extend(
                    YMessage("u-s", table, prop, key, update.data)
                    for update in documents.of_document(
                        table, prop, doc_key, followed.cursor, head, self.client_id
                    )
                )
                followed.cursor = head
        for message in pending:
            self.send(message)

    def _key(self, doc_key: str) -> Any:
        """The client's ``k`` of a document."""
        return ymessages.key_of(doc_key, self.principal.user_id)


def _doc(message: YMessage) -> tuple[str, str, str]:
    return (message.table, message.prop, message.doc_key)


def awareness_states(update: bytes) -> dict[int, tuple[int, bool]]:
    """A y-protocols awareness update: client id -> (clock, removed)."""
    data = Decoder(update)
    states = {}
    for _ in range(data.var_uint()):
        client, clock, state = data.var_uint(), data.var_uint(), data.var_string()
        states[client] = (clock, state == "null")
    if data.has_content():
        raise Lib0Error("bytes after the awareness states")
    return states


def awareness_withdrawal(announced: dict[int, int]) -> bytes:
    """The awareness update that removes ``announced`` (a newer clock, state null)."""
    out = Encoder()
    out.var_uint(len(announced))
    for client, clock in announced.items():
        out.var_uint(client)
        out.var_uint(clock + 1)
        out.var_string("null")
    return out.to_bytes()
