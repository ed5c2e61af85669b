"""``PUT /<db>/blob/<blobId>`` and ``GET /<db>/blob/<ref>``: offloaded blobs (sync.md §8.3).

An upload is read in pieces into a spool (in memory up to
:data:`SPOOL_IN_MEMORY`, then a temporary file) while its size is checked
against ``DXC_MAX_BLOB_BYTES``; only a complete body reaches the store, in one
short transaction. A download streams the stored chunks as they are read.
"""

from __future__ import annotations

import logging
import tempfile
from typing import IO

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from dxc.api import services
from dxc.api.authorise import authorise, caller
from dxc.api.errors import error_response
from dxc.auth.scopes import ACCESS_DB
from dxc.storage.blob_store import StoreUnavailable

bp = Blueprint("blobs", __name__)
log = logging.getLogger(__name__)
#: Seconds a client is asked to wait when the external blob store fails.
RETRY_AFTER_SECONDS = 5

READ_CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
#: A blob never changes under its ref; the answer is for the caller only.
CACHE_CONTROL = "private, max-age=31536000, immutable"


@bp.put("/<db_id>/blob/<blob_id>")
def upload(db_id: str, blob_id: str) -> Response:
    claims = authorise(db_id, ACCESS_DB, action="upload blobs")
    limit = services().settings.max_blob_bytes
    if (request.content_length or 0) > limit:
        raise _too_large(limit)
    with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
        size = _spool_body(spool, limit)
        spool.seek(0)
        content_type = request.args.get("ct") or request.headers.get("Content-Type")
        ref = services().blobs.upload(db_id, claims.sub, blob_id, content_type, spool, size)
    return jsonify(ref=ref)


@bp.get("/<db_id>/blob/<ref>")
def download(db_id: str, ref: str) -> Response:
    found = services().blobs.download(db_id, caller(db_id), ref)
    response = Response(found.chunks, content_type=found.info.content_type)
    response.content_length = found.info.size
    response.headers["Cache-Control"] = CACHE_CONTROL
    # Whatever its declared type, a blob never runs as a page of this origin.
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def _spool_body(spool: IO[bytes], limit: int) -> int:
    size = 0
    while chunk := request.stream.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        spool.write(chunk)
    return size


def _too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"a blob may have at most {limit} bytes (DXC_MAX_BLOB_BYTES)")


@bp.errorhandler(StoreUnavailable)
def store_unavailable(error: StoreUnavailable) -> Response:
    """The external store (bucket, container) failed: the client's sync fails and
    is retried later."""
    log.warning("%s", error)
    response = error_response(503, "unavailable", str(error))
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
