"""Blobs of one database on its shard: their records, their references, their bytes.

* ``blobs``: one record per upload (uploader, content type, size, where the
  bytes are, when). Blobs are immutable: an id is written once.
* ``blob_refs``: (blob, table, key) for every object that was written holding
  the blob's ref. Rows are only added by writers; whether the object *still*
  holds the ref is checked when the row is read (:meth:`BlobIndex.referrers`),
  so an ordinary write costs nothing more than a scan of its own text.
* ``blob_chunks``: the bytes, in chunks of :data:`CHUNK`, when no external store
  (S3 bucket, Azure container: :mod:`dxc.storage.blob_store`) is configured:
  an upload is written and a download read chunk by chunk, so neither holds a
  whole blob in memory, and each chunk is a short statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from sqlalchemy import Connection, and_, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from dxc.protocol.blob_refs import blob_ids_in_text
from dxc.storage import schema
from dxc.storage.clock import as_utc
from dxc.storage.objects import StoredObject

#: Bytes per stored chunk: big enough that a 5 MB blob is 20 rows, small enough
#: that a chunk in flight costs little memory.
CHUNK = 256 * 1024
#: ``blobs.location`` of bytes kept here (a store elsewhere names its own).
IN_DATABASE = "db"

blobs = schema.blobs
refs = schema.blob_refs
chunks = schema.blob_chunks


@dataclass(frozen=True)
class BlobInfo:
    blob_id: str
    uploader: str
    content_type: str
    size: int
    location: str
    created: datetime


@dataclass(frozen=True)
class Referrer:
    tbl: str
    key: str
    realm_id: str


class BlobIndex:
    """Records and references of database ``db_id``'s blobs, over one connection."""

    def __init__(self, connection: Connection, db_id: str) -> None:
        self.connection = connection
        self.db_id = db_id
        dialect = connection.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def get(self, blob_id: str) -> BlobInfo | None:
        row = self.connection.execute(
            select(blobs).where(blobs.c.db_id == self.db_id, blobs.c.blob_id == blob_id)
        ).one_or_none()
        return None if row is None else _info(row)

    def add(self, info: BlobInfo) -> bool:
        """Record a new blob; False if the id is taken (nothing is changed then)."""
        statement = (
            self._insert(blobs)
            .on_conflict_do_nothing(index_elements=list(blobs.primary_key.columns))
            .returning(blobs.c.blob_id)
        )
        row = self.connection.execute(
            statement,
            [{
                "db_id": self.db_id, "blob_id": info.blob_id, "uploader": info.uploader,
                "content_type": info.content_type, "size": info.size,
                "location": info.location, "created": info.created,
            }],
        ).first()
        return row is not None

    def note_references(self, rows: Iterable[StoredObject]) -> None:
        """Remember which of ``rows`` (just written) hold which blob refs."""
        found = [
            {"db_id": self.db_id, "blob_id": blob_id, "tbl": row.tbl, "key": row.key}
            for row in rows
            if not row.deleted
            for blob_id in blob_ids_in_text(row.value)
        ]
        if found:
            statement = self._insert(refs).on_conflict_do_nothing(
                index_elements=list(refs.primary_key.columns)
            )
            self.connection.execute(statement, found)

    def referrers(self, blob_id: str) -> Iterator[Referrer]:
        """The live objects that hold ``blob_id``'s ref now (stale index rows are skipped)."""
        objects = schema.objects
        statement = (
            select(objects.c.tbl, objects.c.key, objects.c.realm_id, objects.c.value)
            .select_from(refs.join(objects, and_(
                objects.c.db_id == refs.c.db_id,
                objects.c.tbl == refs.c.tbl,
                objects.c.key == refs.c.key,
            )))
            .where(refs.c.db_id == self.db_id, refs.c.blob_id == blob_id,
                   objects.c.deleted.is_(False))
        )
        for row in self.connection.execute(statement):
            if blob_id in blob_ids_in_text(row.value):
                yield Referrer(row.tbl, row.key, row.realm_id)

    def count(self) -> int:
        return self.connection.scalar(
            select(func.count()).select_from(blobs).where(blobs.c.db_id == self.db_id)
        ) or 0

    def missing_referenced(self, after: str, limit: int) -> list[str]:
        """Up to ``limit`` ids after ``after`` that objects were written with but that
        have no record here (a replica's blobs still to copy), by id."""
        statement = (
            select(refs.c.blob_id).distinct()
            .select_from(refs.outerjoin(blobs, and_(
                blobs.c.db_id == refs.c.db_id, blobs.c.blob_id == refs.c.blob_id,
            )))
            .where(refs.c.db_id == self.db_id, refs.c.blob_id > after,
                   blobs.c.blob_id.is_(None))
            .order_by(refs.c.blob_id).limit(limit)
        )
        return list(self.connection.scalars(statement))

    def remove(self, blob_id: str) -> None:
        """Forget ``blob_id``: its record, its references and any bytes kept here."""
        for table in (chunks, refs, blobs):
            self.connection.execute(
                delete(table).where(table.c.db_id == self.db_id, table.c.blob_id == blob_id)
            )

    def page(self, after: str, limit: int, realm_id: str | None = None) -> list[BlobInfo]:
        """Up to ``limit`` blobs by id after ``after``; with ``realm_id``, only those an
        object of that realm was written with (an export of one realm)."""
        statement = (
            select(blobs).where(blobs.c.db_id == self.db_id, blobs.c.blob_id > after)
            .order_by(blobs.c.blob_id).limit(limit)
        )
        if realm_id is not None:
            objects = schema.objects
            referred = select(refs.c.blob_id).select_from(refs.join(objects, and_(
                objects.c.db_id == refs.c.db_id,
                objects.c.tbl == refs.c.tbl,
                objects.c.key == refs.c.key,
            ))).where(refs.c.db_id == self.db_id, objects.c.realm_id == realm_id,
                      objects.c.deleted.is_(False))
            statement = statement.where(blobs.c.blob_id.in_(referred))
        return [_info(row) for row in self.connection.execute(statement)]

    def older_than(self, created_before: datetime, after: str, limit: int) -> list[BlobInfo]:
        """Up to ``limit`` blobs created before ``created_before``, by id after ``after``."""
        rows = self.connection.execute(
            select(blobs)
            .where(blobs.c.db_id == self.db_id, blobs.c.blob_id > after,
                   blobs.c.created < created_before)
            .order_by(blobs.c.blob_id).limit(limit)
        )
        return [_info(row) for row in rows]

    # --- bytes kept in the database ------------------------------------------

    def write_chunks(self, blob_id: str, source: IO[bytes]) -> None:
        seq = 0
        while data := source.read(CHUNK):
            self.connection.execute(
                chunks.insert().values(db_id=self.db_id, blob_id=blob_id, seq=seq, data=data)
            )
            seq += 1

    def chunk(self, blob_id: str, seq: int) -> bytes | None:
        return self.connection.scalar(
            select(chunks.c.data).where(
                chunks.c.db_id == self.db_id, chunks.c.blob_id == blob_id, chunks.c.seq == seq
            )
        )


def _info(row) -> BlobInfo:  # type: ignore[no-untyped-def]
    return BlobInfo(
        blob_id=row.blob_id, uploader=row.uploader, content_type=row.content_type,
        size=row.size, location=row.location, created=as_utc(row.created),
    )
