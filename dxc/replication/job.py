"""The replication job: copy a source database here, then follow its new writes.

``run_replication(db_id)`` is a job of :mod:`dxc.jobs` (RQ with Redis, a
thread of the web process without). It takes the lease of the database's
replication row, then loops: ask the source for the changes after the
checkpoint, apply them (:mod:`dxc.replication.apply`), store the new
checkpoint, then copy the blobs the new rows refer to
(:mod:`dxc.replication.blob_copy`) and the Y.js updates after the Y
checkpoint (:mod:`dxc.replication.y_copy`), and once caught up wait
``DXC_REPLICATION_POLL_MS``. The origin whitelist and the templates are
copied when it starts, every minute and before the take-over
(:mod:`dxc.replication.settings`). The copy takes over only after all three
reached the source's last revision. A source that is not a dxc-server has
no revisions: its whole export is read every
``DXC_REPLICATION_FULL_READ_SECONDS`` instead, and the copy never takes over
from it (:mod:`dxc.replication.full_reads`). It ends when the replication is
stopped or its lease is lost; a job that died leaves its lease to run out,
and :mod:`dxc.replication.supervisor` starts a new one, which continues
from the stored checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

from cryptography.fernet import MultiFernet

from dxc.protocol import ProtocolError
from dxc.replication.apply import Round, apply_stream
from dxc.replication.blob_copy import copy_missing_blobs
from dxc.replication.full_reads import apply_export
from dxc.replication.logins import import_logins
from dxc.replication.relocations import SEALING_PURPOSE
from dxc.replication.settings import PERIOD_SECONDS, copy_settings
from dxc.replication.source import ClientKey, Source
from dxc.replication.y_copy import apply_y_updates
from dxc.services import Services
from dxc.storage import replications
from dxc.storage.objects import ObjectStore

log = logging.getLogger(__name__)

#: A job renews its lease at least this often; one that stops renewing loses it after LEASE.
LEASE_SECONDS = 30

_services: Services | None = None


def attach(services: Services) -> None:
    """Run jobs with this process's services (the web process); an RQ worker builds its own."""
    global _services
    _services = services


def _process_services() -> Services:
    global _services
    if _services is None:
        from dxc.config import settings_or_exit
        from dxc.services import build_services

        _services = build_services(settings_or_exit())
    return _services


def secret_box(services: Services) -> MultiFernet:
    """Seals the source API client's secret and the source's token key
    (:data:`SEALING_PURPOSE`, a key derived from ``DXC_SECRET``)."""
    return services.settings.keyring.fernet(SEALING_PURPOSE)


def run_replication(db_id: str) -> None:
    services = _process_services()
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    with services.control.begin() as connection:
        if not replications.claim(connection, db_id, owner, LEASE_SECONDS):
            return  # another job runs it, or it stopped
        replication = replications.get(connection, db_id)
    assert replication is not None
    source = Source(replication.source_url)
    secret = secret_box(services).decrypt(replication.sealed_secret.encode()).decode()
    source.use_key(ClientKey(replication.client_id, secret))
    try:
        job = _JobState()
        while _one_round(services, db_id, owner, source, job):
            job.first = False
    except Exception as error:
        with services.control.begin() as connection:
            replications.record_error(connection, db_id, str(error))
        raise
    finally:
        with services.control.begin() as connection:
            replications.release(connection, db_id, owner)


@dataclass
class _JobState:
    #: A job that starts looks for blobs a job before it left uncopied.
    first: bool = True
    #: When (``time.monotonic()``) the whitelist and the templates are copied next.
    settings_due: float = float("-inf")


def _one_round(
    services: Services, db_id: str, owner: str, source: Source, job: _JobState
) -> bool:
    """Copy what the source has after the checkpoint; False once the job should end."""
    with services.control.begin() as connection:
        if not replications.claim(connection, db_id, owner, LEASE_SECONDS):
            return False
        replication = replications.get(connection, db_id)
    assert replication is not None
    since = replication.checkpoint
    if time.monotonic() >= job.settings_due:
        copy_settings(services, db_id, source)
        job.settings_due = time.monotonic() + PERIOD_SECONDS

    def progress(found: Round, checkpoint: int, rows: int) -> None:
        with services.control.begin() as connection:
            kept = replications.record_round(
                connection, db_id, owner, checkpoint=checkpoint, source_shard=found.shard,
                source_head=found.head, source_counts=found.counts,
                source_blobs=found.blobs, source_ydocs=found.y_documents, copied=rows,
                lease_seconds=LEASE_SECONDS,
            )
        if not kept:
            raise LeaseLost(db_id)

    lines = source.export() if replication.full_reads else source.changes(since)
    lines, revisions = _revisions_said(lines)
    if not revisions:
        if replication.source_shard is not None:  # this copy holds the source's revisions
            raise ProtocolError("the source's answer gives no revision any more")
        return _full_read(services, db_id, owner, source, lines, job)
    try:
        found = apply_stream(services, db_id, lines, progress, replication.source_shard)
        if job.first or found.frozen or found.head != since:
            copy_missing_blobs(services, db_id, _renewing(services, db_id, owner, source.blobs))
        if replication.y_checkpoint < found.head:
            _copy_y_updates(services, db_id, owner, source, replication.y_checkpoint)
    except LeaseLost:
        return False
    if found.frozen:  # the source stopped writing and everything up to its last write is here
        take_over(services, db_id, owner, source)
        return False
    if found.head == since:
        time.sleep(services.settings.replication_poll_ms / 1000)
    return True


def _revisions_said(lines: Iterator[bytes]) -> tuple[Iterator[bytes], bool]:
    """``lines`` as they came, and whether their header gives the source's revision (a
    dxc-server's answer to ``since``: else it is the whole export of another source)."""
    first = next(lines, b"")
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise ProtocolError(f"the source's export does not begin with a header: {first[:200]!r}")
    return chain([first], lines), "revision" in header


def _full_read(
    services: Services, db_id: str, owner: str, source: Source, lines: Iterable[bytes],
    job: _JobState,
) -> bool:
    """A round of a copy whose source keeps no revisions (:mod:`dxc.replication.full_reads`).

    Its writes take revisions of this database, so it is not frozen (as
    ``start-replication`` left it); its clients are held until the first whole read
    (:func:`replications.waiting_to_switch`), then they write here too."""

    def progress(rows: int) -> None:
        with services.control.begin() as connection:
            if not replications.record_full_read(
                connection, db_id, owner, copied=rows, lease_seconds=LEASE_SECONDS
            ):
                raise LeaseLost(db_id)

    if job.first:
        with services.router.shard_for(db_id).transaction() as connection:
            ObjectStore(connection, db_id).freeze(False)
    try:
        found = apply_export(services, db_id, lines, progress)
        if job.first or found.written:
            copy_missing_blobs(services, db_id, _renewing(services, db_id, owner, source.blobs))
    except LeaseLost:
        return False
    with services.control.begin() as connection:
        if not replications.record_full_read(
            connection, db_id, owner, copied=0, lease_seconds=LEASE_SECONDS,
            counts=dict(found.counts),
        ):
            return False
    return _pause(services, db_id, owner, services.settings.replication_full_read_seconds)


def _pause(services: Services, db_id: str, owner: str, seconds: float) -> bool:
    """Wait ``seconds``, keeping the lease; False once the job should end."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, LEASE_SECONDS / 3))
        with services.control.begin() as connection:
            if not replications.claim(connection, db_id, owner, LEASE_SECONDS):
                return False
    return True


def _renewing(
    services: Services, db_id: str, owner: str, fetch: Callable[[list[str]], Iterable[bytes]]
) -> Callable[[list[str]], Iterable[bytes]]:
    """``fetch``, extending the lease before each request (blobs may take long)."""

    def fetching(blob_ids: list[str]) -> Iterable[bytes]:
        with services.control.begin() as connection:
            if not replications.claim(connection, db_id, owner, LEASE_SECONDS):
                raise LeaseLost(db_id)
        return fetch(blob_ids)

    return fetching


def _copy_y_updates(
    services: Services, db_id: str, owner: str, source: Source, since: int
) -> None:
    def checkpoint(rev: int) -> None:
        with services.control.begin() as connection:
            if not replications.record_y_checkpoint(connection, db_id, owner, rev,
                                                    LEASE_SECONDS):
                raise LeaseLost(db_id)

    apply_y_updates(services, db_id, since, source.y_updates(since), checkpoint)


def take_over(services: Services, db_id: str, owner: str, source: Source) -> None:
    """The copy becomes the database: the source's logins come over (their users,
    sessions and token key) and its whitelist and templates once more, then local
    writes begin; until then this installation held the clients the source forwards
    (:mod:`dxc.replication.relocations`)."""
    document = source.logins()
    copy_settings(services, db_id, source)
    with services.control.begin() as connection:
        issuer, audience, key = import_logins(connection, db_id, document)
        sealed = secret_box(services).encrypt(key).decode()
        if not replications.switch(connection, db_id, owner, issuer, audience, sealed):
            raise LeaseLost(db_id)
    with services.router.shard_for(db_id).transaction() as connection:
        ObjectStore(connection, db_id).freeze(False)
    log.info("replication of %s took over from %s", db_id, source.url)


class LeaseLost(Exception):
    """Another job holds this replication now (or it was stopped): this one ends."""
