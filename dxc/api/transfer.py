"""Moving data in and out: ``/<db>/import*`` and ``/<db>/export*`` (the ``dexie-cloud`` CLI)."""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Iterable, Iterator

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import (
    BadRequest,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)

from dxc import tson
from dxc.api import services
from dxc.api.authorise import authorise
from dxc.auth.scopes import ADMIN_SCOPES, GLOBAL_READ, GLOBAL_WRITE
from dxc.manage import blob_archive, exporter, y_archive
from dxc.manage.importer import import_document, import_ndjson
from dxc.replication.logins import export_logins

bp = Blueprint("transfer", __name__)

READ_CHUNK = 64 * 1024
#: Decompressed import bodies above this stay on disk while they are imported.
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@bp.post("/<db_id>/import")
def import_legacy(db_id: str) -> Response:
    """A legacy JSON import file, sent as TSON (usually gzipped)."""
    authorise(db_id, GLOBAL_WRITE)
    body = b"".join(_body_chunks())
    summary = import_document(services(), db_id, tson.loads(body))
    return jsonify(summary.to_json())


@bp.post("/<db_id>/import/blobs")
def import_blobs(db_id: str) -> Response:
    """The ``blobs.dcbl`` of an export zip (:mod:`dxc.manage.blob_archive`)."""
    authorise(db_id, GLOBAL_WRITE)
    return jsonify(blob_archive.import_blobs(services(), db_id, _body_chunks()).to_json())


@bp.post("/<db_id>/import/stream")
def import_stream(db_id: str) -> Response:
    """The ``data.ndjson`` of an export zip."""
    authorise(db_id, GLOBAL_WRITE)
    with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
        for chunk in _body_chunks():
            spool.write(chunk)
        spool.seek(0)
        summary = import_ndjson(services(), db_id, spool)
    return jsonify(summary.to_json())


@bp.post("/<db_id>/import/yjs")
def import_yjs(db_id: str) -> Response:
    """The ``yjs.dcyj`` of an export zip (:mod:`dxc.manage.y_archive`); the CLI sends it
    after ``data.ndjson``, whose objects the documents belong to."""
    authorise(db_id, GLOBAL_WRITE)
    return jsonify(y_archive.import_documents(services(), db_id, _body_chunks()).to_json())


@bp.get("/<db_id>/export/stream")
def export_stream(db_id: str) -> Response:
    """The NDJSON export; with ``since=<revision>`` the changes after it (replicas)."""
    realm_id, table = _reader(db_id)
    since = request.args.get("since")
    if since is not None:
        lines = exporter.export_changes(services(), db_id, _revision(since))
        return _streamed(lines, "application/x-ndjson")
    lines = exporter.export_ndjson(services(), db_id, realm_id, table)
    return _streamed(lines, "application/x-ndjson")


@bp.get("/<db_id>/export/blobs")
def export_blobs(db_id: str) -> Response:
    """The ``blobs.dcbl``: every blob, a realm's (``realmId``) or the ``blobIds`` given."""
    realm_id, _ = _reader(db_id)
    ids = request.args.get("blobIds")
    blob_ids = [i for i in ids.split(",") if i] if ids is not None else None
    parts = blob_archive.export_blobs(services(), db_id, realm_id, blob_ids)
    response = Response(parts, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<db_id>/export/logins")
def export_logins_of(db_id: str) -> Response:
    """Users, sessions and the token key of a database that moved, for the copy taking
    over (docs/migration.md): only for an owner's API client, only once it moved."""
    authorise(db_id, *ADMIN_SCOPES)
    response = jsonify(export_logins(services(), db_id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<db_id>/export")
def export_legacy(db_id: str) -> Response:
    realm_id, table = _reader(db_id)
    chunks = exporter.export_legacy(services(), db_id, realm_id, table)
    return _streamed(chunks, "application/json")


@bp.get("/<db_id>/export/yjs")
def export_yjs(db_id: str) -> Response:
    """The ``yjs.dcyj``: the Y.js documents of every live object, or of one realm's or
    one table's (``realmId``, ``table``: the filters of ``data.ndjson``); with
    ``since=<revision>`` the updates stored after it (replicas)."""
    realm_id, table = _reader(db_id)
    since = request.args.get("since")
    if since is not None:
        parts = y_archive.export_updates_since(services(), db_id, _revision(since))
    else:
        parts = y_archive.export_documents(services(), db_id, realm_id, table)
    response = Response(parts, mimetype="application/octet-stream")
    response.headers["Cache-Control"] = "no-store"
    return response


def _reader(db_id: str) -> tuple[str | None, str | None]:
    """Check the caller may read everything; the ``realmId`` and ``table`` filters."""
    authorise(db_id, GLOBAL_READ)
    realm_id = request.args.get("realmId") or None
    table = request.args.get("table") or None
    return realm_id, table


def _revision(text: str) -> int:
    """``since``: a revision number (0: from the start)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise BadRequest("since must be a revision number (0 for everything)")
    return int(text)


def _body_chunks() -> Iterator[bytes]:
    """The request body, decompressed, never longer than ``max_import_bytes``."""
    cap = services().settings.max_import_bytes
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported (use gzip)")
    raw = iter(lambda: request.stream.read(READ_CHUNK), b"")
    chunks = raw if encoding == "identity" else _gunzip(raw, cap)
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > cap:
            raise RequestEntityTooLarge(f"the import is larger than {cap} bytes")
        yield chunk


def _gunzip(chunks: Iterable[bytes], cap: int) -> Iterator[bytes]:
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                # Never inflate more than one byte past the cap: a gzip bomb stops here.
                yield inflater.decompress(data, cap + 1)
                data = inflater.unconsumed_tail
                if inflater.eof and inflater.unused_data:  # another gzip member follows
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        yield inflater.flush()
    except zlib.error as error:
        raise BadRequest(f"the gzip body is corrupt: {error}") from None
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")


def _streamed(texts: Iterator[str], mimetype: str) -> Response:
    """Stream ``texts``, gzipped when the client accepts it."""
    gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
    body = _gzip(texts) if gzip else (text.encode() for text in texts)
    response = Response(body, mimetype=mimetype)
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["Cache-Control"] = "no-store"
    return response


def _gzip(texts: Iterable[str]) -> Iterator[bytes]:
    deflater = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    for text in texts:
        yield deflater.compress(text.encode()) + deflater.flush(zlib.Z_SYNC_FLUSH)
    yield deflater.flush()
