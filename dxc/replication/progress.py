"""What ``replication-progress`` reports, from the replication row and the copy here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dxc.services import Services
from dxc.storage import replications
from dxc.storage.blobs import BlobIndex
from dxc.storage.clock import utcnow
from dxc.storage.objects import ObjectStore
from dxc.storage.ydocs import YDocStore

#: A replica whose source answered longer ago than this is not "in sync", whatever it holds.
STALE_SECONDS = 30


@dataclass(frozen=True)
class Report:
    db_id: str
    source_url: str
    state: str
    in_sync: bool
    copied: int
    checkpoint: int
    source_head: int | None
    lag_revisions: int | None
    lag_seconds: float
    #: table -> (live objects at the source as of its last answer, live objects here)
    counts: dict[str, tuple[int, int]]
    #: (at the source as of its last answer (None: unknown), here)
    blobs: tuple[int | None, int]
    y_documents: tuple[int | None, int]
    #: Y.js updates up to this source revision are here.
    y_checkpoint: int
    error: str | None
    polled: str | None
    #: The source keeps no revisions: its whole export is read every so often.
    full_reads: bool


def reports(services: Services, db_id: str | None = None) -> list[Report]:
    with services.control.connect() as connection:
        found = replications.list_all(connection)
    return [_report(services, r) for r in found if db_id is None or r.db_id == db_id]


def _report(services: Services, replication: replications.Replication) -> Report:
    with services.router.shard_for(replication.db_id).transaction(read_only=True) as connection:
        here = ObjectStore(connection, replication.db_id).live_counts()
        blobs_here = BlobIndex(connection, replication.db_id).count()
        documents_here = YDocStore(connection, replication.db_id).document_count()
    there = replication.source_counts
    now = utcnow()
    behind = replication.lag or 0
    stale = STALE_SECONDS + (
        services.settings.replication_full_read_seconds if replication.full_reads else 0
    )
    fresh = replication.polled is not None and _seconds(now, replication.polled) < stale
    caught_up_at = replication.synced or replication.started
    in_sync = (
        replication.state == replications.TAILING and behind == 0 and fresh
        and replication.error is None
        # The Y copy runs after the round's blobs: both are done up to the checkpoint.
        and replication.y_checkpoint >= replication.checkpoint
    )
    return Report(
        db_id=replication.db_id,
        source_url=replication.source_url,
        state=replication.state,
        in_sync=in_sync,
        copied=replication.copied,
        checkpoint=replication.checkpoint,
        source_head=replication.source_head,
        lag_revisions=replication.lag,
        lag_seconds=0.0 if in_sync else _seconds(now, caught_up_at),
        counts={t: (there.get(t, 0), here.get(t, 0)) for t in sorted({*there, *here})},
        blobs=(replication.source_blobs, blobs_here),
        y_documents=(replication.source_ydocs, documents_here),
        y_checkpoint=replication.y_checkpoint,
        error=replication.error,
        polled=replication.polled.isoformat() if replication.polled else None,
        full_reads=replication.full_reads,
    )


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())
