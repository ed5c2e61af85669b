"""``yjs.dcyj``: the Y.js part of a ``dexie-cloud export`` zip (``GET /<db>/export/yjs``,
``POST /<db>/import/yjs``).

The CLI passes the part through unread (it only drops one of 8 bytes or less),
so the format is this server's own, built like ``blobs.dcbl``::

    b"DXCYJS01"                                   magic (an export without documents:
                                                  just this, which the CLI leaves out)
    then per stored update, document by document, oldest first:
      4 bytes, big-endian: n                      length of the header
      n bytes: {"table", "prop", "key", "size"}   UTF-8 JSON; "key" is the parent object's
                                                  key as in data.ndjson's "id"
      size bytes                                  the Yjs (V2) update, as the client sent it

A document has no realm of its own: it is exported with its parent object
(``realmId`` / ``table`` filter as for ``data.ndjson``) and imported after
the objects (the CLI posts this part last), attached to the live object with
that key. Updates whose parent is not there are skipped and counted: a
parent created between the CLI's two requests exports its document without
itself. An update the document holds already is skipped too, so an import can
be run again (once compaction merged the imported updates, a second import
stores them again; Yjs ignores what it has, and compaction merges them anew).
The whole part is one transaction and one new revision, so devices receive
the documents with their next sync.

With ``since=<revision>`` (our extension, read by a replica as
``export/stream?since=`` is) the export holds every stored update with a
revision after ``since``, by revision, each header with its ``"rev"``, and
ends with ``{"end": <revision>, "size": 0}``: the revision it reaches (every
update up to it is in the answer or in an earlier one), and the proof that
the answer was not cut.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dxc.bus.commits import committing
from dxc.cooperative import take_turns
from dxc.errors import Invalid
from dxc.manage.part_reader import PartReader
from dxc.protocol.identifiers import KEY_BYTES, TABLE_BYTES, identifier_problem
from dxc.services import Services
from dxc.storage.objects import ObjectStore
from dxc.storage.ydocs import YDocStore

MAGIC = b"DXCYJS01"
#: The length of each record's header.
LENGTH = struct.Struct(">I")
#: A header is a table, a property, a key (at most KEY_BYTES) and a size.
MAX_HEADER = 4096


@dataclass
class YImportSummary:
    imported: int = 0
    #: Updates the document held already.
    skipped: int = 0
    #: Updates of documents whose parent object is not in the database.
    orphaned: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "imported": self.imported, "skipped": self.skipped,
                "orphaned": self.orphaned}


def export_documents(
    services: Services, db_id: str, realm_id: str | None = None, table: str | None = None
) -> Iterator[bytes]:
    """The ``yjs.dcyj`` of ``db_id`` (of one realm's or one table's objects), streamed
    from one read transaction. An unknown database fails here, before any byte."""
    shard = services.router.shard_for(db_id)

    def stream() -> Iterator[bytes]:
        with shard.transaction(read_only=True) as connection:
            yield MAGIC
            updates = YDocStore(connection, db_id).of_live_objects(realm_id, table)
            for count, update in enumerate(updates, start=1):
                yield _record({
                    "table": update.tbl, "prop": update.prop, "key": update.doc_key,
                    "size": len(update.data),
                }, update.data)
                if count % 200 == 0:
                    take_turns()

    return stream()


def export_updates_since(services: Services, db_id: str, since: int) -> Iterator[bytes]:
    """The updates of ``db_id`` after revision ``since`` (a replica's copy, see above).

    The head is read in a transaction of its own first: a revision is visible only
    once the write that took it committed, and every earlier write committed
    before it, so every update up to the head is there for the second read."""
    shard = services.router.shard_for(db_id)
    with shard.transaction(read_only=True) as connection:
        head = ObjectStore(connection, db_id).current_revision()

    def stream() -> Iterator[bytes]:
        yield MAGIC
        with shard.transaction(read_only=True) as connection:
            updates = YDocStore(connection, db_id).after_revision(since, head)
            for count, update in enumerate(updates, start=1):
                yield _record({
                    "table": update.tbl, "prop": update.prop, "key": update.doc_key,
                    "rev": update.rev, "size": len(update.data),
                }, update.data)
                if count % 200 == 0:
                    take_turns()
        yield _record({"end": head, "size": 0}, b"")

    return stream()


def _record(header: dict[str, Any], data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return LENGTH.pack(len(encoded)) + encoded + data


def import_documents(services: Services, db_id: str, body: Iterable[bytes]) -> YImportSummary:
    """Store the updates of a ``yjs.dcyj`` body (one of 8 bytes or less holds none)."""
    shard = services.router.shard_for(db_id)  # an unknown database fails first
    reader = PartReader(body, "yjs.dcyj", "Y.js update")
    summary = YImportSummary()
    magic = reader.read_up_to(len(MAGIC))
    if len(magic) < len(MAGIC) or (magic != MAGIC and reader.at_end()):
        return summary
    if magic != MAGIC:
        raise Invalid("yjs.dcyj does not start with DXCYJS01: not an export of this server")
    max_update = services.settings.max_body_bytes  # no update can have arrived bigger
    with committing(shard, db_id, services.bus) as write:
        documents = YDocStore(write.store.connection, db_id)
        parents: dict[tuple[str, str], str | None] = {}  # (table, key) -> realm of a live one
        while length := reader.read(LENGTH.size, at_end_ok=True):
            (size,) = LENGTH.unpack(length)
            if size > MAX_HEADER:
                raise Invalid(f"yjs.dcyj: an update header of {size} bytes (at most {MAX_HEADER})")
            table, prop, key, update_size = update_place(decoded_header(reader.read(size)))
            if update_size > max_update:
                raise Invalid(f"yjs.dcyj: an update of {update_size} bytes (at most {max_update})")
            update = reader.read(update_size)
            if (table, key) not in parents:
                parent = write.store.get_many(table, [key]).get(key)
                live = parent is not None and not parent.deleted
                parents[(table, key)] = parent.realm_id if live else None
            realm_id = parents[(table, key)]
            if realm_id is None:
                summary.orphaned += 1
            elif documents.has(table, prop, key, update):
                summary.skipped += 1
            else:
                documents.add(table, prop, key, write.rev, None, update)
                write.store.written_realms.add(realm_id)
                write.store.written_tables.add(table)
                summary.imported += 1
            take_turns()
    if summary.imported:
        services.ycompaction.stored(db_id)  # many updates may have come: merge them soon
    return summary


def decoded_header(data: bytes) -> dict[str, Any]:
    try:
        header = json.loads(data)
    except ValueError:
        raise Invalid("yjs.dcyj: an update header is not JSON") from None
    if not isinstance(header, dict):
        raise Invalid("yjs.dcyj: an update header is not an object")
    return header


def update_place(header: dict[str, Any]) -> tuple[str, str, str, int]:
    """The checked (table, prop, key, size) of an update header."""
    table, prop, key, size = (header.get(name) for name in ("table", "prop", "key", "size"))
    if not (
        isinstance(table, str) and isinstance(prop, str) and isinstance(key, str)
        and isinstance(size, int) and not isinstance(size, bool) and size > 0
    ):
        raise Invalid('yjs.dcyj: an update header needs "table", "prop", "key" and "size"')
    for name, text, limit in (("table", table, TABLE_BYTES), ("prop", prop, TABLE_BYTES),
                              ("key", key, KEY_BYTES)):
        if problem := identifier_problem(text, limit) if text else "is empty":
            raise Invalid(f"yjs.dcyj: {name} {problem}")
    return table, prop, key, size
