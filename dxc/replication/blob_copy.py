"""Copying a source's blobs here: those the copied objects refer to and this copy lacks.

A blob is immutable once uploaded, so "not here yet" is the whole state: each
one is stored in its own transaction (:func:`dxc.manage.blob_archive.import_blobs`),
and a copy killed anywhere resumes by asking again for what is still missing.
Which blobs objects refer to is noted as the rows are written
(:func:`dxc.access.index.store_objects`), for replicated rows as for any.

Blobs no object refers to are not copied: an upload is followed by the sync
that brings its object, and a client whose sync fails (as at a source that
stopped taking writes) uploads again under new ids (docs/blobs.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dxc.manage import blob_archive
from dxc.services import Services
from dxc.storage.blobs import BlobIndex

#: Ids per request: they travel in the query string (``blobIds``), which servers cap
#: at a few kilobytes (gunicorn: 4094 bytes for the request line).
PER_REQUEST = 40

Fetch = Callable[[list[str]], Iterable[bytes]]


def copy_missing_blobs(services: Services, db_id: str, fetch: Fetch) -> int:
    """Fetch (``fetch(ids)``: a ``blobs.dcbl`` body) and store every blob that objects
    here refer to and that is not here; how many were stored. Ids the source has
    no blob of are asked for once per call."""
    shard = services.router.shard_for(db_id)
    copied, after = 0, ""
    while True:
        with shard.transaction(read_only=True) as connection:
            wanted = BlobIndex(connection, db_id).missing_referenced(after, PER_REQUEST)
        if not wanted:
            return copied
        summary = blob_archive.import_blobs(services, db_id, fetch(wanted), replica=True)
        copied += summary.imported
        after = wanted[-1]
