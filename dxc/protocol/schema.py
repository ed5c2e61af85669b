"""The ``schema`` a client sends with every sync, and the one we answer with.

The client replaces each of its table entries with ours, so we echo its own
entry and override only what the server decides: the table's ``idPrefix``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dxc.protocol import ProtocolError


def validate_schema(schema: object) -> dict[str, dict[str, Any]]:
    if not isinstance(schema, dict) or not all(isinstance(v, dict) for v in schema.values()):
        raise ProtocolError("schema must be an object of table entries")
    return schema


def is_synced(name: str, entry: Mapping[str, Any]) -> bool:
    """Tables starting with ``$`` are the client's own; others sync when marked."""
    return not name.startswith("$") and entry.get("markedForSync") is True


def synced_tables(schema: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {name for name, entry in schema.items() if is_synced(name, entry)}


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
