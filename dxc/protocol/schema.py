"""The ``schema`` a client sends with every sync, and the one we answer with.

The client replaces each of its table entries with ours, so we echo its own
entry and override only what the server decides: the table's ``idPrefix``.
A table whose name no column stores is not synced (writes to it are refused
one transaction at a time), and an ``idPrefix`` or ``primaryKey`` no column
stores is dropped, so that one odd table never fails every sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dxc.protocol import ProtocolError
from dxc.protocol.identifiers import TABLE_BYTES, identifier_problem

#: Entry fields the server stores, with their limits in bytes: ``id_prefix`` is
#: VARCHAR(32) and may get a number appended to be unique; key paths as the
#: sync service keeps them.
_STORED_FIELDS = {"idPrefix": 24, "primaryKey": 255}


def validate_schema(schema: object) -> dict[str, dict[str, Any]]:
    """The client's schema, without stored fields that no column can hold."""
    if not isinstance(schema, dict) or not all(isinstance(v, dict) for v in schema.values()):
        raise ProtocolError("schema must be an object of table entries")
    return {
        name: {
            field: value
            for field, value in entry.items()
            if not (
                field in _STORED_FIELDS
                and isinstance(value, str)
                and identifier_problem(value, _STORED_FIELDS[field])
            )
        }
        for name, entry in schema.items()
    }


def is_synced(name: str, entry: Mapping[str, Any]) -> bool:
    """Tables starting with ``$`` are the client's own; others sync when marked
    (and when their name can be stored)."""
    return (
        not name.startswith("$")
        and entry.get("markedForSync") is True
        and identifier_problem(name, TABLE_BYTES) is None
    )


def synced_tables(schema: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {name for name, entry in schema.items() if is_synced(name, entry)}


def y_tables(schema: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Synced tables with Y.js document properties (``yProps``): the client keeps
    documents only of these."""
    return {
        name
        for name, entry in schema.items()
        if is_synced(name, entry) and isinstance(entry.get("yProps"), list) and entry["yProps"]
    }


def echo_schema(
    schema: Mapping[str, Mapping[str, Any]], prefixes: Mapping[str, str | None]
) -> dict[str, dict[str, Any]]:
    """The client's schema with our ``idPrefix`` for every table we assigned one."""
    answer = {}
    for name, entry in schema.items():
        entry = dict(entry)
        if prefixes.get(name):
            entry["idPrefix"] = prefixes[name]
        answer[name] = entry
    return answer


_CONSONANTS = frozenset("bcdfghjklmnpqrstvxyz")


def table_prefix(name: str) -> str:
    """The prefix the client itself would compute for table ``name``.

    First letter lower-cased, then the following consonants or upper-case
    letters, up to three characters (``todoItems`` → ``tdi``).
    """
    prefix = name[:1].lower()
    for char in name[1:]:
        if len(prefix) == 3:
            break
        if char.lower() in _CONSONANTS or char.isupper():
            prefix += char.lower()
    return prefix


def primary_key_path(declaration: str) -> str:
    """The primary key path of a Dexie store declaration (``"@id, title"`` → ``"id"``)."""
    first = declaration.split(",", 1)[0].strip()
    return first.lstrip("@&+")
