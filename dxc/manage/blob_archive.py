"""``blobs.dcbl``: the blobs part of a ``dexie-cloud export`` zip (``GET /<db>/export/blobs``,
``POST /<db>/import/blobs``).

The CLI passes the part through unread (it only drops one of 8 bytes or less),
so the format is this server's own::

    b"DXCBLOB1"                                   magic (an export without blobs: just this,
                                                  which the CLI leaves out of the zip)
    then per blob:
      4 bytes, big-endian: n                      length of the header
      n bytes: {"id", "ct", "size", "uploader"}   UTF-8 JSON
      size bytes                                  the blob

Exports stream blob by blob (bytes in pieces); imports read the body the same
way, each blob spooled and stored in its own transaction. A blob whose id is
there already is skipped, so an import can be run again after a failure;
the objects that refer to the blobs come in ``data.ndjson``, in any order.
"""

from __future__ import annotations

import json
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from dxc.cooperative import take_turns
from dxc.errors import Invalid
from dxc.manage.part_reader import PartReader
from dxc.services import Services
from dxc.storage.blobs import BlobIndex, BlobInfo

MAGIC = b"DXCBLOB1"
_LENGTH = struct.Struct(">I")
#: A header is a few ids and a content type.
MAX_HEADER = 4096
PAGE = 200
SPOOL_IN_MEMORY = 1024 * 1024


@dataclass
class BlobImportSummary:
    imported: int = 0
    skipped: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"ok": True, "imported": self.imported, "skipped": self.skipped}


def export_blobs(
    services: Services, db_id: str, realm_id: str | None = None,
    blob_ids: Iterable[str] | None = None,
) -> Iterator[bytes]:
    """The ``blobs.dcbl`` of ``db_id`` (of one realm's objects, or of the given ids)."""
    yield MAGIC
    for info in _selected(services, db_id, realm_id, blob_ids):
        header = json.dumps({
            "id": info.blob_id, "ct": info.content_type, "size": info.size,
            "uploader": info.uploader,
        }).encode()
        yield _LENGTH.pack(len(header)) + header
        yield from services.blobs.content(db_id, info)
        take_turns()


def _selected(
    services: Services, db_id: str, realm_id: str | None, blob_ids: Iterable[str] | None
) -> Iterator[BlobInfo]:
    shard = services.router.shard_for(db_id)
    if blob_ids is not None:
        for blob_id in sorted(set(blob_ids)):
            with shard.transaction(read_only=True) as connection:
                info = BlobIndex(connection, db_id).get(blob_id)
            if info is not None:
                yield info
        return
    after = ""
    while True:
        with shard.transaction(read_only=True) as connection:
            page = BlobIndex(connection, db_id).page(after, PAGE, realm_id)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].blob_id


def import_blobs(
    services: Services, db_id: str, body: Iterable[bytes], replica: bool = False
) -> BlobImportSummary:
    """Store the blobs of a ``blobs.dcbl`` body (an empty body holds none); ``replica``:
    the replication's copy, stored while the database is frozen for it."""
    services.router.shard_for(db_id)  # an unknown database fails first
    reader = PartReader(body, "blobs.dcbl", "blob")
    summary = BlobImportSummary()
    magic = reader.read_up_to(len(MAGIC))
    if len(magic) < len(MAGIC) or (magic != MAGIC and reader.at_end()):
        return summary  # a part of 8 bytes or less holds nothing (the CLI's own rule)
    if magic != MAGIC:
        raise Invalid("blobs.dcbl does not start with DXCBLOB1: not an export of this server")
    while length := reader.read(_LENGTH.size, at_end_ok=True):
        (size,) = _LENGTH.unpack(length)
        if size > MAX_HEADER:
            raise Invalid(f"blobs.dcbl: a blob header of {size} bytes (at most {MAX_HEADER})")
        header = _header(reader.read(size))
        info = services.blobs.new_blob(header["id"], header["uploader"], header["ct"],
                                       header["size"])
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            reader.copy(spool, info.size)
            spool.seek(0)
            if services.blobs.store(db_id, info, spool, replica):
                summary.imported += 1
            else:
                summary.skipped += 1
        take_turns()
    return summary


def _header(data: bytes) -> dict[str, Any]:
    try:
        header = json.loads(data)
    except ValueError:
        raise Invalid("blobs.dcbl: a blob header is not JSON") from None
    if not (
        isinstance(header, dict) and isinstance(header.get("id"), str)
        and isinstance(header.get("uploader"), str) and isinstance(header.get("ct"), str)
        and isinstance(header.get("size"), int) and header["size"] >= 0
    ):
        raise Invalid('blobs.dcbl: a blob header needs "id", "uploader", "ct" and "size"')
    return header
