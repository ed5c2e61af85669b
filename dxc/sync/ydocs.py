"""The Y.js part of a sync: storing clients' updates, and the updates a client is missing.

An update is stored with a revision of the database's counter, so that the
client's ``yServerRevision`` and ``serverRevision`` are one revision space
(spec sync §7.4): the ``r`` of a ``u-s`` and the closing
``y-complete-sync-done`` are ordinary revision tokens.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

from dxc.access import Principal, RealmAccess
from dxc.access.rejections import PermissionDenied
from dxc.access.rules import WriteRules
from dxc.bus.commits import Write
from dxc.cooperative import take_turns
from dxc.protocol.revisions import encode_revision
from dxc.protocol.ymessages import YMessage, key_of, on_server
from dxc.storage.ydocs import YDocStore


class UpdateAcceptor:
    """Stores the Y updates of one client inside a write (``committing``)."""

    def __init__(self, write: Write, principal: Principal, client_identity: str | None) -> None:
        self.write = write
        self.client_identity = client_identity
        self.principal = principal
        self.rules = WriteRules(RealmAccess(write.store, principal))
        self.documents = YDocStore(write.store.connection, write.store.db_id)
        #: Whether an update was stored (the write then has a revision).
        self.stored = False

    def accept(self, message: YMessage, *, missing_parent_refused: bool) -> YMessage | None:
        """``u-ack`` once stored, ``u-reject`` when the client may not change the
        document (its parent deleted, or no right to update that property), or
        None: the parent does not exist (yet) and ``missing_parent_refused`` is
        False (a socket's update may overtake the /sync that creates the parent;
        the client sends it again with its next sync)."""
        message = on_server(message, self.principal.user_id)
        store = self.write.store
        parent = store.get_many(message.table, [message.doc_key]).get(message.doc_key)
        if parent is None and not missing_parent_refused:
            return None
        try:
            if parent is None or parent.deleted:
                raise PermissionDenied(f"{message.table}: {message.doc_key!r} does not exist")
            self.rules.check_document_update(message.table, message.prop, parent)
        except PermissionDenied:
            return refusal(message)
        assert message.u is not None
        self.documents.add(
            message.table,
            message.prop,
            message.doc_key,
            self.write.rev,
            self.client_identity,
            message.u,
        )
        store.written_realms.add(parent.realm_id)
        store.written_tables.add(message.table)
        self.stored = True
        return YMessage("u-ack", message.table, message.prop, i=message.i)


def refusal(message: YMessage) -> YMessage:
    return YMessage("u-reject", message.table, message.prop, i=message.i)


def missing_updates(
    documents: YDocStore,
    shard_id: int,
    realms: Sequence[str],
    tables: Collection[str],
    since: int,
    upto: int,
    client_identity: str,
    user_id: str | None,
) -> Iterator[YMessage]:
    """``u-s`` for the updates of documents in ``realms`` (those the client has
    had since ``since``) that it did not send itself, then ``y-complete-sync-done``;
    keys as ``user_id`` names them."""
    for count, update in enumerate(
        documents.changed(realms, tables, since, upto, client_identity), start=1
    ):
        yield YMessage(
            "u-s",
            update.tbl,
            update.prop,
            key_of(update.doc_key, user_id),
            update.data,
            r=encode_revision({shard_id: update.rev}),
        )
        if count % 200 == 0:
            take_turns()
    yield YMessage("y-complete-sync-done", y_server_rev=encode_revision({shard_id: upto}))

