"""Destructive administration: deleting databases, clearing tables and realms.

* A soft delete marks the database; it keeps working (every ``/token``
  answer carries a warning with the final date) until :func:`purge_expired`
  removes it after ``deleted_db_grace_days`` (``flask dxc purge-deleted``,
  e.g. from a daily cron job). ``undelete`` cancels the mark.
* A hard delete removes every row of the database at once, on its shard and
  in the control database; its id is unknown (404) afterwards.
* Clearing writes tombstones at a new revision through the access index, so
  connected clients delete their copies on their next sync, and realm sets
  shrink with the realm and member rows that go.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dxc.access.index import ACCESS_TABLES, store_objects
from dxc.bus.commits import committing
from dxc.errors import Conflict, NotFound
from dxc.services import Services
from dxc.storage import databases as database_store
from dxc.storage import tables as table_store
from dxc.storage.access_index import AccessIndex
from dxc.storage.clock import utcnow
from dxc.storage.objects import BATCH, ObjectStore, StoredObject


def delete_database(services: Services, db_id: str, hard: bool) -> str:
    """Soft- or hard-delete ``db_id``; the message the CLI prints."""
    if hard:
        purge_database(services, db_id)
        return f"Database {db_id} was deleted."
    with services.control.begin() as connection:
        deleted = database_store.mark_deleted(connection, db_id)
    return (
        f"Database {db_id} is marked for deletion and will be deleted on "
        f"{_purge_date(services, deleted):%Y-%m-%d}. Until then it keeps working, and "
        f"`npx dexie-cloud undelete {services.settings.database_url_for(db_id)}` restores it."
    )


def undelete_database(services: Services, db_id: str) -> str:
    with services.control.begin() as connection:
        if not database_store.unmark_deleted(connection, db_id):
            raise Conflict(f"database {db_id} is not marked for deletion")
    return "Database successfully undeleted."


def purge_database(services: Services, db_id: str) -> None:
    """Remove every row of ``db_id``: its shard data first, then its control rows."""
    with services.router.shard_for(db_id).transaction() as connection:
        ObjectStore(connection, db_id).purge()
    with services.control.begin() as connection:
        database_store.remove_database(connection, db_id)
    services.router.forget(db_id)


def purge_expired(services: Services, now: datetime | None = None) -> list[str]:
    """Hard-delete every database whose grace period is over; their ids."""
    cutoff = (now or utcnow()) - timedelta(days=services.settings.deleted_db_grace_days)
    with services.control.connect() as connection:
        expired = database_store.deleted_before(connection, cutoff)
    for db_id in expired:
        purge_database(services, db_id)
    return expired


def clear_table(services: Services, db_id: str, table: str) -> int:
    """Delete every object of ``table``; how many there were."""
    shard = services.router.shard_for(db_id)
    with services.control.connect() as connection:
        known = table in table_store.get_tables(connection, db_id) or table in ACCESS_TABLES
    with committing(shard, db_id, services.bus) as write:
        if not known and not write.store.has_rows(table):
            raise NotFound(f"database {db_id} has no table {table!r}")
        count = _tombstone(write.store, write.rev, write.store.live_heads(tbl=table))
    return count


def clear_realm(services: Services, db_id: str, realm_id: str) -> int:
    """Delete every object of ``realm_id``, its members, roles and the realm itself."""
    shard = services.router.shard_for(db_id)
    with committing(shard, db_id, services.bus) as write:
        rev = write.rev
        heads = write.store.live_heads(realm_id=realm_id)
        if not heads and AccessIndex(write.store.connection, db_id).realm(realm_id) is None:
            raise NotFound(f"database {db_id} has no realm {realm_id!r}")
        count = _tombstone(write.store, rev, heads)
    return count


def _tombstone(store: ObjectStore, rev: int, heads: Sequence[StoredObject]) -> int:
    for start in range(0, len(heads), BATCH):
        store_objects(store, [head.tombstone(rev) for head in heads[start : start + BATCH]])
    return len(heads)


def _purge_date(services: Services, deleted: datetime) -> datetime:
    return database_store.purge_date(deleted, services.settings.deleted_db_grace_days)
