"""The per-table schema of each logical database: stable ``idPrefix``es.

A table's prefix is fixed the first time the server sees the table and never
changes afterwards; prefixes are unique within a database, so that a key
tells which table it was made for.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from dxc.storage import schema


@dataclass(frozen=True)
class TableInfo:
    name: str
    id_prefix: str | None
    generated_global_id: bool


def get_tables(connection: Connection, db_id: str) -> dict[str, TableInfo]:
    rows = connection.execute(
        select(schema.table_schemas).where(schema.table_schemas.c.db_id == db_id)
    )
    return {
        row.tbl: TableInfo(row.tbl, row.id_prefix, row.generated_global_id) for row in rows
    }


def register_table(
    connection: Connection, db_id: str, name: str, generated_global_id: bool, prefix: str | None
) -> TableInfo:
    """Record a table the first time it is seen; a concurrent first sight wins the race."""
    while True:
        tables = get_tables(connection, db_id)
        if name in tables:
            return tables[name]
        if generated_global_id:
            taken = {t.id_prefix for t in tables.values()}
            prefix = _unique_prefix(prefix or name[:3].lower(), taken)
        else:
            prefix = None
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(schema.table_schemas).values(
                        db_id=db_id,
                        tbl=name,
                        id_prefix=prefix,
                        generated_global_id=generated_global_id,
                    )
                )
        except IntegrityError:
            continue  # another request registered this table or took the prefix
        return TableInfo(name, prefix, generated_global_id)


def _unique_prefix(wanted: str, taken: set[str | None]) -> str:
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}{number}" in taken:
        number += 1
    return f"{wanted}{number}"
