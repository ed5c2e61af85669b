"""Uploading and reading offloaded blobs (sync.md §8, docs/blobs.md).

Who may do what:

* upload: a user of the database (an ``ACCESS_DB`` token; the blueprint
  checks it). A blob id is written once: a second upload under the same id is
  refused (409), so nobody replaces bytes that objects already refer to.
* read: anyone who may read an object that holds the blob's ref now (its
  realm is in the caller's realm set, ``rlm-public`` included, so anonymous
  callers read public blobs), or a ``GLOBAL_READ`` token; the uploader also
  while no object refers to it yet. Everybody else: 403. The client never
  says which object it resolves, so any referring object counts.

Which objects refer to a blob is noted when objects are written: every
writer stores objects through ``dxc.access.index.store_objects``, which calls
:meth:`dxc.storage.blobs.BlobIndex.note_references`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TypeVar

from sqlalchemy import Connection

from dxc.access import RealmAccess
from dxc.access.principal import Principal
from dxc.auth.scopes import GLOBAL_READ
from dxc.blobs.collector import collection_job
from dxc.config import Settings
from dxc.errors import Conflict, Forbidden, Invalid, NotFound
from dxc.jobs import Jobs
from dxc.protocol.blob_refs import BadBlobId, blob_id_of, check_blob_id, make_ref
from dxc.storage.blob_azure import AzureContent
from dxc.storage.blob_s3 import S3Content
from dxc.storage.blob_store import ExternalStore, StoreUnavailable
from dxc.storage.blobs import IN_DATABASE, BlobIndex, BlobInfo
from dxc.storage.clock import utcnow
from dxc.storage.objects import ObjectStore
from dxc.storage.router import Shard, ShardRouter

#: Seconds between two orphan collections a process schedules for one database.
COLLECT_EVERY = 3600.0
#: Printable ASCII, as a Content-Type header carries it.
MAX_CONTENT_TYPE = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"
T = TypeVar("T")


@dataclass(frozen=True)
class Download:
    info: BlobInfo
    chunks: Iterator[bytes]


class BlobService:
    def __init__(self, settings: Settings, router: ShardRouter, jobs: Jobs) -> None:
        self.settings = settings
        self.router = router
        self.jobs = jobs
        self.external = external_store(settings)
        self._collect_scheduled: dict[str, float] = {}

    # --- upload ---------------------------------------------------------------

    def upload(
        self, db_id: str, uploader: str, blob_id: str, content_type: str | None,
        source: IO[bytes], size: int,
    ) -> str:
        """Store ``size`` bytes from ``source`` as a new blob; the ref for the client."""
        info = self.new_blob(blob_id, uploader, content_type, size)
        if not self.store(db_id, info, source):
            raise Conflict(f"blob {blob_id!r} exists already; a blob id is used once")
        self._schedule_collection(db_id)
        return make_ref(blob_id)

    def new_blob(
        self, blob_id: str, uploader: str, content_type: str | None, size: int
    ) -> BlobInfo:
        """The record of a blob about to be stored (:class:`Invalid` for a bad id or type)."""
        return BlobInfo(
            blob_id=_checked_id(blob_id), uploader=uploader,
            content_type=_content_type(content_type), size=size,
            location=self.external.location if self.external else IN_DATABASE,
            created=utcnow(),
        )

    def store(
        self, db_id: str, info: BlobInfo, source: IO[bytes], replica: bool = False
    ) -> bool:
        """Keep a new blob and its bytes; False (and nothing changed) if its id is taken.

        ``source`` must be seekable: an attempt that meets a database being moved
        is run again on its new shard, from the same position. ``replica``: the
        replication's copy, written while the database is frozen for it."""
        if self.external is None:
            start = source.tell()

            def add_with_bytes(index: BlobIndex) -> bool:
                source.seek(start)
                if not index.add(info):
                    return False
                index.write_chunks(info.blob_id, source)
                return True

            return self.fenced_write(db_id, add_with_bytes, replica)
        # The record claims the id first, so that a second upload of the same id
        # never overwrites the store's object; it goes again if the bytes fail.
        if not self.fenced_write(db_id, lambda index: index.add(info), replica):
            return False
        try:
            self.external.put(db_id, info.blob_id, source, info.content_type)
        except BaseException:
            self.fenced_write(db_id, lambda index: index.remove(info.blob_id), replica)
            raise
        return True

    def fenced_write(
        self, db_id: str, work: Callable[[BlobIndex], T], replica: bool = False
    ) -> T:
        """``work`` in one transaction on ``db_id``'s shard, behind the fence that every
        write of a database being moved passes (docs/shards.md): held while the move
        copies its last changes, refused by a shard the database left, and then run
        again where it lives now, as /sync is; :class:`NotOnShard` (a 503) when the
        move takes longer than its hold."""

        def attempt(shard: Shard) -> T:
            with shard.transaction() as connection:
                ObjectStore(connection, db_id).fence_unrevisioned_write(replica)
                return work(BlobIndex(connection, db_id))

        return self.router.retrying(db_id, attempt, self.settings.move_hold_seconds + 1)

    # --- download -------------------------------------------------------------

    def download(self, db_id: str, principal: Principal, ref: str) -> Download:
        """The blob behind ``ref`` if ``principal`` may read it (404, 403 otherwise)."""
        try:
            blob_id = blob_id_of(ref)
        except BadBlobId as bad:
            raise Invalid(str(bad)) from None
        with self.router.shard_for(db_id).transaction(read_only=True) as connection:
            index = BlobIndex(connection, db_id)
            info = index.get(blob_id)
            if info is None:
                raise NotFound(f"there is no blob {ref!r}")
            if not _may_read(connection, index, principal, info):
                raise Forbidden("no object you may read refers to this blob")
        return Download(info, self.content(db_id, info))

    def content(self, db_id: str, info: BlobInfo) -> Iterator[bytes]:
        """The bytes of a blob, in pieces (no access check: the caller's job)."""
        if info.location == IN_DATABASE:
            return self._database_chunks(db_id, info.blob_id)
        if self.external is None or self.external.location != info.location:
            raise StoreUnavailable(
                f"this blob is in a store of kind {info.location!r}, and none is configured"
            )
        return self.external.read(db_id, info.blob_id)

    def _database_chunks(self, db_id: str, blob_id: str) -> Iterator[bytes]:
        """The bytes chunk by chunk, each read in its own short transaction, so that a
        slow client holds no connection between them."""
        shard = self.router.shard_for(db_id)
        seq = 0
        while True:
            with shard.transaction(read_only=True) as connection:
                data = BlobIndex(connection, db_id).chunk(blob_id, seq)
            if data is None:
                return
            yield bytes(data)
            seq += 1

    # --- orphans ----------------------------------------------------------------

    def _schedule_collection(self, db_id: str) -> None:
        """Queue a collection of ``db_id``'s orphans, at most every :data:`COLLECT_EVERY` s."""
        now = time.monotonic()
        if now - self._collect_scheduled.get(db_id, -COLLECT_EVERY) < COLLECT_EVERY:
            return
        self._collect_scheduled[db_id] = now
        self.jobs.enqueue(*collection_job(self, db_id))


def external_store(settings: Settings) -> ExternalStore | None:
    """The store configured for blob bytes outside the database, if any."""
    if settings.blob_s3:
        return S3Content(settings.blob_s3)
    if settings.blob_azure:
        return AzureContent(settings.blob_azure)
    return None


def _may_read(connection: Connection, index: BlobIndex, principal: Principal,
              info: BlobInfo) -> bool:
    if principal.user_id is not None and GLOBAL_READ in principal.scopes:
        return True
    realms: tuple[str, ...] | None = None
    for referrer in index.referrers(info.blob_id):
        if realms is None:
            access = RealmAccess(ObjectStore(connection, index.db_id), principal)
            realms = access.realm_set().realms
        if referrer.realm_id in realms:
            return True
    # Nothing refers to it (yet): the uploader's alone.
    return realms is None and principal.user_id is not None and principal.user_id == info.uploader


def _checked_id(blob_id: str) -> str:
    try:
        return check_blob_id(blob_id)
    except BadBlobId as bad:
        raise Invalid(str(bad)) from None


def _content_type(value: str | None) -> str:
    value = (value or "").strip() or DEFAULT_CONTENT_TYPE
    if len(value) > MAX_CONTENT_TYPE or not all(" " <= c <= "~" for c in value):
        raise Invalid(f"a content type is at most {MAX_CONTENT_TYPE} printable ASCII characters")
    return value
