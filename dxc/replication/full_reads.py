"""Copying a source that keeps no revisions: its whole export, read again each round.

A source that is not a dxc-server (Dexie Cloud's own service) has no
``export/stream?since=``: it answers with the export the ``dexie-cloud`` CLI
reads, every live object without its revision (and no tombstones). So each
round reads the whole export and applies what changed there since the round
before: an object whose line differs from the one copied last is written
here, at a revision of this database, like an import; one that is gone from
the export is deleted here. What was copied last is a digest per object
(:mod:`dxc.storage.source_digests`), written in the transaction that writes
the object, so a round that dies leaves rows and digests in step.

Only the source's changes are applied: an object written here by a client
that already moved stays as it is until the source changes it again.
Deletions are applied only once an export was read to its end (a cut stream
raises before that), so a failed read never deletes anything.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import groupby

from dxc.access.index import store_objects
from dxc.bus.commits import committing
from dxc.cooperative import taking_turns
from dxc.manage.importer import Import, batches, known_tables, ndjson_rows, register
from dxc.services import Services
from dxc.storage.objects import BATCH, StoredObject, refresh_statistics
from dxc.storage.source_digests import Place, SourceDigests


@dataclass
class FullRead:
    """What one read of the source's export found and did here."""

    #: Live objects per table at the source.
    counts: Counter[str] = field(default_factory=Counter)
    written: int = 0
    deleted: int = 0


def apply_export(
    services: Services, db_id: str, lines: Iterable[bytes], progress: Callable[[int], None]
) -> FullRead:
    """Apply the source's changes found in its export ``lines``; ``progress(rows)`` after
    each commit, with the rows it wrote or deleted."""
    batch = Import(known_tables(services, db_id))
    found = FullRead()
    seen: set[Place] = set()
    registered = False
    for rows in batches(ndjson_rows(batch, taking_turns(lines))):
        # The schema line comes first: registered with the first batch, before its news.
        registering = None if registered else functools.partial(register, services, db_id, batch)
        written = _write_changed(services, db_id, rows, seen, registering)
        registered = True
        found.counts.update(row.tbl for row in rows if not row.deleted)
        found.written += written
        progress(written)
    if not registered:
        register(services, db_id, batch)
    found.deleted = _delete_vanished(services, db_id, seen, progress)
    refresh_statistics(services.router.shard_for(db_id).engine, found.written + found.deleted)
    return found


def _write_changed(
    services: Services,
    db_id: str,
    rows: list[StoredObject],
    seen: set[Place],
    before_news: Callable[[], None] | None,
) -> int:
    """Write the objects of ``rows`` whose digest changed; how many."""
    latest = {(row.tbl, row.key): row for row in rows}
    digests = {place: _digest(row) for place, row in latest.items()}
    seen.update(latest)
    shard = services.router.shard_for(db_id)
    with committing(shard, db_id, services.bus, before_news=before_news) as write:
        stored = SourceDigests(write.store.connection, db_id)
        known = stored.known(list(latest))
        changed = {place: digest for place, digest in digests.items() if known.get(place) != digest}
        if changed:
            fresh = [latest[place] for place in changed]
            for row in fresh:
                row.rev = write.rev
            store_objects(write.store, fresh)
            stored.record(changed)
    return len(changed)


def _delete_vanished(
    services: Services, db_id: str, seen: set[Place], progress: Callable[[int], None]
) -> int:
    """Delete here the objects copied before that the export no longer holds; how many."""
    shard = services.router.shard_for(db_id)
    with shard.transaction(read_only=True) as connection:
        gone = sorted(place for place in SourceDigests(connection, db_id).places()
                      if place not in seen)
    deleted = 0
    for start in range(0, len(gone), BATCH):
        some = gone[start:start + BATCH]
        with committing(shard, db_id, services.bus) as write:
            tombstones = [
                row.tombstone(write.rev)
                for table, places in groupby(some, key=lambda place: place[0])
                for row in write.store.get_many(table, [key for _, key in places]).values()
                if not row.deleted
            ]
            store_objects(write.store, tombstones)
            SourceDigests(write.store.connection, db_id).forget(some)
        deleted += len(tombstones)
        progress(len(tombstones))
    return deleted


def _digest(row: StoredObject) -> bytes:
    """What identifies an object's line of the export: its realm, owner and value."""
    text = "\0".join((row.realm_id, row.owner or "", row.value or "", str(row.deleted)))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()
