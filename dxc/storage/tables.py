"""The per-table schema of each logical database: stable ``idPrefix``es and key paths.

A table's prefix is fixed the first time the server sees the table and never
changes afterwards; prefixes are unique within a database, so that a key
tells which table it was made for. Its primary-key path (``id``, ``ref``,
``[a+b]`` for a compound key) is learnt from an import's schema or from a
client's sync schema (``primaryKey``, which clients send only sometimes):
the first known path is kept, and an unknown one (NULL) is filled in later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from dxc.storage import schema

#: Key paths of the built-in tables, whatever was (or was not) stored for them.
BUILT_IN_KEY_PATHS = {"realms": "realmId", "members": "id", "roles": "[realmId+name]"}


@dataclass(frozen=True)
class TableInfo:
    name: str
    id_prefix: str | None
    generated_global_id: bool
    key_path: str | None  # None: unknown; "": outbound keys (no key path)

    @property
    def key_props(self) -> list[str] | None:
        """The properties of the primary key (several for a compound key), or
        None when the key path is unknown."""
        if self.key_path is None:
            return None
        if self.key_path.startswith("[") and self.key_path.endswith("]"):
            return [part.strip() for part in self.key_path[1:-1].split("+")]
        return [self.key_path] if self.key_path else []

    @property
    def compound(self) -> bool:
        return self.key_path is not None and self.key_path.startswith("[")


def _info(row: Row[Any]) -> TableInfo:
    key_path = row.key_path if row.key_path is not None else BUILT_IN_KEY_PATHS.get(row.tbl)
    return TableInfo(row.tbl, row.id_prefix, row.generated_global_id, key_path)


def get_tables(connection: Connection, db_id: str) -> dict[str, TableInfo]:
    rows = connection.execute(
        select(schema.table_schemas).where(schema.table_schemas.c.db_id == db_id)
    )
    return {row.tbl: _info(row) for row in rows}


def register_table(
    connection: Connection,
    db_id: str,
    name: str,
    generated_global_id: bool,
    prefix: str | None,
    key_path: str | None = None,
) -> TableInfo:
    """Record a table the first time it is seen (a concurrent first sight wins
    the race), or the key path of a known table whose key path is unknown."""
    key_path = key_path if key_path is not None else BUILT_IN_KEY_PATHS.get(name)
    while True:
        tables = get_tables(connection, db_id)
        if name in tables:
            known = tables[name]
            if known.key_path is not None or key_path is None:
                return known
            connection.execute(
                update(schema.table_schemas)
                .where(
                    schema.table_schemas.c.db_id == db_id,
                    schema.table_schemas.c.tbl == name,
                    schema.table_schemas.c.key_path.is_(None),
                )
                .values(key_path=key_path)
            )
            continue  # read back what won
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
                        key_path=key_path,
                    )
                )
        except IntegrityError:
            continue  # another request registered this table or took the prefix
        return TableInfo(name, prefix, generated_global_id, key_path)


def _unique_prefix(wanted: str, taken: set[str | None]) -> str:
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}{number}" in taken:
        number += 1
    return f"{wanted}{number}"
