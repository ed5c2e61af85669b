"""Identifiers the server stores as they are: table names, keys, realm ids, owners, txids.

Object values are stored as TSON text and may hold any string. Identifiers
go into (indexed) columns, so every writer checks them here first: text a
database can store (no NUL, no lone surrogate, see :func:`dxc.tson.text_problem`)
and short enough for its column and for a PostgreSQL btree entry, which may
not exceed about 2.7 KB. A longer one fails deep in a statement with an
error that no resend can fix; refused here, it is a rejection of one client
transaction (or a 400) that says what is wrong.

Limits count bytes of UTF-8, so that they bound the index entry whatever the
characters. The widest entry, a ``departures`` row (database id ≤ 64 bytes,
table, key, realm id), stays below 2.4 KB.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dxc import tson
from dxc.protocol import ProtocolError
from dxc.tson import PropModification

#: Table names (``tbl`` columns are VARCHAR(255)).
TABLE_BYTES = 255
#: Primary keys, and what the store copies from a value into indexed columns:
#: ``realmId``, ``owner``, and a ``members`` row's ``email`` and ``userId``.
KEY_BYTES = 1024
#: A client transaction's ``txid`` and a client's ``clientIdentity`` (VARCHAR(128)).
TXID_BYTES = 128
#: E-mail addresses and user ids (VARCHAR(320), RFC 5321's 320 octets).
USER_ID_BYTES = 320

#: Value properties that become column values, per table (None: every table).
_INDEXED = {None: ("realmId", "owner"), "members": ("email", "userId")}


def identifier_problem(text: str, max_bytes: int) -> str | None:
    """Why ``text`` cannot be stored as an identifier of at most ``max_bytes`` (None: it can)."""
    problem = tson.text_problem(text)
    if problem is None and len(text) * 4 > max_bytes and len(text.encode()) > max_bytes:
        problem = f"is longer than {max_bytes} bytes"
    return problem


def check_identifier(value: Any, what: str, max_bytes: int) -> str:
    """``value`` if it is a non-empty string fit to store as an identifier; else
    :class:`ProtocolError` naming ``what`` and the problem."""
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{what} must be a non-empty string")
    problem = identifier_problem(value, max_bytes)
    if problem:
        raise ProtocolError(f"{what} {shown(value)} {problem}")
    return value


def check_indexed_props(table: str, value: Mapping[str, Any]) -> None:
    """Check the properties of ``value`` (an object or a change spec of ``table``)
    that the store copies into indexed columns; the rest of a value is free text."""
    for name in indexed_props(table):
        for text in _texts(value.get(name)):
            if problem := identifier_problem(text, KEY_BYTES):
                raise ProtocolError(f"{table}: {name} {shown(text)} {problem}")


def indexed_props(table: str) -> tuple[str, ...]:
    """The properties of ``table``'s values that the store copies into indexed columns."""
    return _INDEXED[None] + (_INDEXED.get(table) or ())


def plainly_storable(texts: list[Any], max_bytes: int) -> bool:
    """Whether every one of ``texts`` is a non-empty string, short in characters and
    free of what no column stores: one scan for the lot, the usual case. False says
    only that the texts must be checked one by one (:func:`identifier_problem`)."""
    short = max_bytes // 4  # a character is at most 4 bytes of UTF-8
    return plain_texts(texts) and all(0 < len(text) <= short for text in texts)


def plain_texts(texts: list[Any]) -> bool:
    """Whether every one of ``texts`` is a string free of what no column stores (NUL,
    a lone surrogate): one scan for the lot."""
    return all(type(text) is str for text in texts) and tson.text_problem("\n".join(texts)) is None


def shown(text: str) -> str:
    """``text`` as a message quotes it: escaped, and cut after 40 characters."""
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


def _texts(value: Any) -> Iterator[str]:
    """The strings a property may end up as (a PropModification's arguments too)."""
    if isinstance(value, PropModification):
        value = value.arg
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))
