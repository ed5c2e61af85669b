"""BlobRefs: how an offloaded binary or long string appears inside a synced object (sync.md §8.1).

A BlobRef is a plain JSON object ``{"_bt": <type>, "ref": "<version>:<blobId>",
"size": n, "ct"?: type}``, recognised like the client does: a string ``_bt``,
a string ``ref`` and no ``v``. The ``ref`` is what ``PUT /<db>/blob/<blobId>``
answered; this server hands out version ``1`` only (where the bytes are kept is
recorded with the blob, not in its ref, so moving storage needs no new refs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

#: The ref version this server issues and accepts.
REF_VERSION = "1"
#: The client's ``newId()`` is 24 b64lex characters; other callers may choose
#: other lengths of the same alphabet, nothing that could escape a path or a key.
BLOB_ID = re.compile(r"[0-9A-Za-z_|]{8,64}")
#: Cheap pre-check on stored text before parsing it for refs.
_MARKER = '"_bt"'


class BadBlobId(ValueError):
    """A blob id or ref that this server never issues."""


def check_blob_id(blob_id: str) -> str:
    if not BLOB_ID.fullmatch(blob_id):
        raise BadBlobId(
            "a blob id is 8 to 64 characters of 0-9, A-Z, a-z, '_' and '|'"
        )
    return blob_id


def make_ref(blob_id: str) -> str:
    return f"{REF_VERSION}:{blob_id}"


def blob_id_of(ref: str) -> str:
    """The blob id inside ``ref`` (``"1:<blobId>"``); :class:`BadBlobId` otherwise."""
    version, colon, blob_id = ref.partition(":")
    if not colon or version != REF_VERSION:
        raise BadBlobId(f"a blob ref is '{REF_VERSION}:<blobId>'")
    return check_blob_id(blob_id)


def is_blob_ref(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("_bt"), str)
        and isinstance(value.get("ref"), str)
        and "v" not in value
    )


def blob_ids_in_text(text: str | None) -> set[str]:
    """The ids of the well-formed refs of this server inside a stored object's text.

    The text is TSON, but a BlobRef carries no ``$`` key or ``$t`` type, so
    plain JSON finds it. Most objects hold no BlobRef and are not parsed.
    """
    if not text or _MARKER not in text:
        return set()
    try:
        value = json.loads(text)
    except ValueError:
        return set()
    return set(_ids(value))


def _ids(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if is_blob_ref(item):
                version, _, blob_id = item["ref"].partition(":")
                if version == REF_VERSION and BLOB_ID.fullmatch(blob_id):
                    yield blob_id
            else:
                stack.extend(item.values())
