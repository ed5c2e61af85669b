"""Revision tokens: the opaque ``serverRevision`` strings given to clients.

A token carries one revision per shard (``"1:42"``, or ``"1:42,3:7"`` once a
database spans shards). Clients only echo tokens and compare them for
equality, so the format is ours; every token ever issued must stay parseable.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Revisions are BIGINT columns: a bigger number cannot be one of ours.
_MAX_REVISION = 2**63 - 1


def encode_revision(revisions: Mapping[int, int]) -> str:
    return ",".join(f"{shard}:{rev}" for shard, rev in sorted(revisions.items()))


def decode_revision(token: object) -> dict[int, int] | None:
    """The per-shard revisions of ``token``, or None if it is not one of ours."""
    if not isinstance(token, str) or not token or len(token) > 1024:
        return None
    revisions: dict[int, int] = {}
    for part in token.split(","):
        shard, sep, rev = part.partition(":")
        # isdigit() alone takes "²", which int() refuses.
        if not (sep and _digits(shard) and _digits(rev)) or int(rev) > _MAX_REVISION:
            return None
        revisions[int(shard)] = int(rev)
    return revisions


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
