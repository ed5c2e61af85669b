"""Collecting orphaned blobs: blobs older than ``DXC_BLOB_ORPHAN_GRACE`` that no object holds.

The grace period covers the gap between a client's upload and the ``/sync``
that brings the object referring to it (a client that fails to sync uploads
again, under new ids, so its first uploads become orphans). A collection runs
as a job (:data:`dxc.jobs`) that an upload schedules at most hourly per
database and process, and from ``flask dxc collect-blobs`` (e.g. a daily cron).

Each orphan goes in its own transaction: its record, references and chunks,
then its object in the external store if it has one (a failure there leaves the
store's object behind, logged, never a record without bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dxc.cooperative import take_turns
from dxc.jobs import RQJobs
from dxc.storage.blobs import IN_DATABASE, BlobIndex, BlobInfo
from dxc.storage.clock import utcnow

if TYPE_CHECKING:
    from dxc.blobs.service import BlobService

log = logging.getLogger(__name__)
#: Blobs examined per read.
BATCH = 200


def collect_orphans(service: BlobService, db_id: str, now: datetime | None = None) -> int:
    """Remove ``db_id``'s orphaned blobs; how many went."""
    cutoff = (now or utcnow()) - timedelta(seconds=service.settings.blob_orphan_grace)
    shard = service.router.shard_for(db_id)
    removed = 0
    after = ""
    while True:
        with shard.transaction(read_only=True) as connection:
            batch = BlobIndex(connection, db_id).older_than(cutoff, after, BATCH)
        if not batch:
            return removed
        for info in batch:
            removed += _remove_if_orphan(service, db_id, info)
        after = batch[-1].blob_id
        take_turns()


def _remove_if_orphan(service: BlobService, db_id: str, info: BlobInfo) -> bool:
    def remove(index: BlobIndex) -> bool:
        if next(index.referrers(info.blob_id), None) is not None:
            return False
        index.remove(info.blob_id)
        return True

    # Fenced like an upload: a removal must not land on a shard the database is leaving,
    # or the record would survive on the new shard while its object leaves the store.
    if not service.fenced_write(db_id, remove):
        return False
    external = service.external
    if info.location != IN_DATABASE and external and external.location == info.location:
        try:
            external.delete(db_id, info.blob_id)
        except Exception as error:
            log.warning("blob %s/%s stays in the %s: %s", db_id, info.blob_id, external.noun,
                        error)
    return True


def collection_job(service: BlobService, db_id: str) -> tuple[Callable[..., None], Any]:
    """What to enqueue for a collection of ``db_id``: in a worker process (RQ) a
    function found by name that builds its own services; in this process, this one's."""
    if isinstance(service.jobs, RQJobs):
        return collect_orphans_job, db_id

    def collect_in_process(db: str) -> None:
        _log_count(collect_orphans(service, db), db)

    return collect_in_process, db_id


def collect_orphans_job(db_id: str) -> None:
    """The RQ job: a worker reads the server's configuration once per process."""
    _log_count(collect_orphans(_worker_service(), db_id), db_id)


_worker: BlobService | None = None


def _worker_service() -> BlobService:
    global _worker
    if _worker is None:
        from dxc.config import settings_or_exit
        from dxc.services import build_services

        _worker = build_services(settings_or_exit()).blobs
    return _worker


def _log_count(removed: int, db_id: str) -> None:
    if removed:
        log.info("collected %d orphaned blob(s) of %s", removed, db_id)
