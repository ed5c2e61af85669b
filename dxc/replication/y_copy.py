"""Copying a source's Y.js updates here: ``export/yjs?since=<revision>`` (docs/migration.md).

Updates carry a revision of the database's counter (spec sync §7.4), so they
follow the rows' scheme: each is stored with its revision at the source, in
transactions of about :data:`BATCH` updates cut only between two revisions,
and after each commit the Y checkpoint (every update up to it is here) is
stored.

The source's answer holds every update it has after the checkpoint, so the
first transaction first removes the updates here after it: those of a batch
a killed job committed but could not checkpoint (they come again: nothing is
doubled), and those whose object moved realm (a departure raises their
revision, here as at the source, which sends them again with it). What is
here after the answer is then exactly what the source has, duplicates and
compactions included.

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
    services: Services, db_id: str, since: int, body: Iterable[bytes], checkpoint: Checkpoint
) -> int:
    """Store the updates of the ``export/yjs?since=<since>`` answer ``body``; how many."""
    reader = PartReader(body, "yjs.dcyj", "Y.js update")
    if reader.read(len(MAGIC)) != MAGIC:
        raise ProtocolError("the source's Y.js export does not start with DXCYJS01")
    stored = 0
    pending: list[_Update] = []
    after: int | None = since  # what to remove first (in the first transaction only)
    while True:
        (size,) = LENGTH.unpack(reader.read(LENGTH.size))
        if size > MAX_HEADER:
            raise ProtocolError(f"the source's Y.js export: a header of {size} bytes")
        header = decoded_header(reader.read(size))
        if "end" in header:
            stored += _store(services, db_id, pending, after)
            checkpoint(_revision(header["end"]))
            return stored
        table, prop, key, update_size = update_place(header)
        rev = _revision(header.get("rev"))
        if len(pending) >= BATCH and rev != pending[-1].rev:
            stored += _store(services, db_id, pending, after)
            checkpoint(pending[-1].rev)
            pending, after = [], None
        pending.append(_Update(table, prop, key, rev, reader.read(update_size)))


def _revision(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"the source's Y.js export: {value!r} is not a revision")
    return value


def _store(
    services: Services, db_id: str, updates: list[_Update], after: int | None
) -> int:
    """In one transaction: remove the updates after revision ``after`` (if given), then
    write ``updates``; how many."""
    with services.router.shard_for(db_id).transaction() as connection:
        documents = YDocStore(connection, db_id)
        if after is not None:
            documents.remove_after(after)
        for update in updates:
            documents.add(update.table, update.prop, update.key, update.rev, None, update.data)
            take_turns()
    return len(updates)
