"""Reading the binary parts this server exports (``blobs.dcbl``, ``yjs.dcyj``) in tests:
a magic, then records of a 4-byte big-endian header length, a JSON header with the
``size`` of the bytes that follow, and those bytes."""

from __future__ import annotations

import json
import struct


def records(archive: bytes, magic: bytes) -> list[tuple[dict, bytes]]:
    assert archive.startswith(magic)
    at, found = len(magic), []
    while at < len(archive):
        (size,) = struct.unpack(">I", archive[at:at + 4])
        header = json.loads(archive[at + 4:at + 4 + size])
        at += 4 + size
        found.append((header, archive[at:at + header["size"]]))
        at += header["size"]
    return found
