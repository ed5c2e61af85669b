"""What a copy of a source without revisions copied last: one digest per object.

Kept on the shard, beside the objects, and written in the transaction that
writes them (:mod:`dxc.replication.full_reads`), so digests and rows never
disagree, whatever point a copy dies at.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from sqlalchemy import Connection, delete, insert, select

from dxc.storage import schema

digests = schema.source_digests

#: An object by table and key.
Place = tuple[str, str]


class SourceDigests:
    """The digests of database ``db_id`` over one connection."""

    def __init__(self, connection: Connection, db_id: str) -> None:
        self.connection = connection
        self.db_id = db_id

    def known(self, places: Collection[Place]) -> dict[Place, bytes]:
        """The digests stored for ``places`` (those that have one)."""
        found: dict[Place, bytes] = {}
        for table, keys in _by_table(places).items():
            rows = self.connection.execute(
                select(digests.c.key, digests.c.digest).where(
                    digests.c.db_id == self.db_id, digests.c.tbl == table,
                    digests.c.key.in_(keys),
                )
            )
            found.update({(table, row.key): bytes(row.digest) for row in rows})
        return found

    def record(self, new: Mapping[Place, bytes]) -> None:
        """Store ``new``, replacing what those places had."""
        if not new:
            return
        self.forget(new.keys())
        self.connection.execute(insert(digests), [
            {"db_id": self.db_id, "tbl": tbl, "key": key, "digest": digest}
            for (tbl, key), digest in new.items()
        ])

    def forget(self, places: Collection[Place]) -> None:
        for table, keys in _by_table(places).items():
            self.connection.execute(delete(digests).where(
                digests.c.db_id == self.db_id, digests.c.tbl == table, digests.c.key.in_(keys),
            ))

    def places(self) -> Iterator[Place]:
        """Every place with a digest."""
        rows = self.connection.execute(
            select(digests.c.tbl, digests.c.key).where(digests.c.db_id == self.db_id)
            .execution_options(yield_per=1000)
        )
        for row in rows:
            yield row.tbl, row.key


def _by_table(places: Collection[Place]) -> dict[str, list[str]]:
    """The keys of ``places`` by table: one indexed ``IN`` per table (a row-value ``IN``
    of pairs is much slower on PostgreSQL)."""
    tables: dict[str, list[str]] = {}
    for table, key in places:
        tables.setdefault(table, []).append(key)
    return tables
