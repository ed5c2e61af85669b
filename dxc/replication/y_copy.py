"""Copying a source's Y.js updates here: ``export/yjs?since=<revision>`` (docs/migration.md).

Updates carry a revision of the database's counter (spec sync §7.4), so they
follow the rows' scheme: each is stored with its revision at the source, in
transactions of about :data:`BATCH` updates cut only between two revisions,
and after each commit the Y checkpoint (every update up to it is here) is
stored. An update this copy holds already is not stored again, so the
batch a killed job committed but could not checkpoint is not doubled, nor
the updates a source re-sends when their object moved realm (they take the
move's revision there, as here when its departure is applied).

The updates of a document whose object is deleted later go with the
deletion's row, here as at the source; a document whose object is not here
yet waits for it (reads join the object).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dxc.cooperative import take_turns
from dxc.manage.part_reader import PartReader
from dxc.manage.y_archive import LENGTH, MAGIC, MAX_HEADER, decoded_header, update_place
from dxc.protocol import ProtocolError
from dxc.services import Services
from dxc.storage.ydocs import YDocStore

#: Updates per transaction (more when one revision holds more).
BATCH = 500

#: Called after each commit with the new Y checkpoint.
Checkpoint = Callable[[int], None]


@dataclass(frozen=True)
class _Update:
    table: str
    prop: str
    key: str
    rev: int
    data: bytes


def apply_y_updates(
    services: Services, db_id: str, body: Iterable[bytes], checkpoint: Checkpoint
) -> int:
    """Store the updates of one ``export/yjs?since=`` answer; how many were new here."""
    reader = PartReader(body, "yjs.dcyj", "Y.js update")
    if reader.read(len(MAGIC)) != MAGIC:
        raise ProtocolError("the source's Y.js export does not start with DXCYJS01")
    stored = 0
    pending: list[_Update] = []
    while True:
        (size,) = LENGTH.unpack(reader.read(LENGTH.size))
        if size > MAX_HEADER:
            raise ProtocolError(f"the source's Y.js export: a header of {size} bytes")
        header = decoded_header(reader.read(size))
        if "end" in header:
            stored += _store(services, db_id, pending)
            checkpoint(_revision(header["end"]))
            return stored
        table, prop, key, update_size = update_place(header)
        rev = _revision(header.get("rev"))
        if len(pending) >= BATCH and rev != pending[-1].rev:
            stored += _store(services, db_id, pending)
            checkpoint(pending[-1].rev)
            pending = []
        pending.append(_Update(table, prop, key, rev, reader.read(update_size)))


def _revision(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"the source's Y.js export: {value!r} is not a revision")
    return value


def _store(services: Services, db_id: str, updates: list[_Update]) -> int:
    """Write the updates this copy lacks, in one transaction; how many."""
    stored = 0
    with services.router.shard_for(db_id).transaction() as connection:
        documents = YDocStore(connection, db_id)
        for update in updates:
            if not documents.has(update.table, update.prop, update.key, update.data):
                documents.add(update.table, update.prop, update.key, update.rev, None,
                              update.data)
                stored += 1
            take_turns()
    return stored
