"""Setting up the installation and its logical databases."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from dxc.auth.scopes import ADMIN_SCOPES
from dxc.errors import Conflict, Invalid
from dxc.services import Services
from dxc.storage import credentials, retired
from dxc.storage import databases as database_store
from dxc.storage import shards as shard_store
from dxc.storage.migrate import upgrade
from dxc.storage.objects import ObjectStore
from dxc.storage.shard_urls import seal_clear_urls

#: What an id given to ``create`` may be (Dexie Cloud's look like ``z`` and 8 more).
DATABASE_ID = re.compile(r"[a-z0-9]{2,64}")
#: First path segments that are routes, never databases (as ``dxc.api.cors`` knows).
NOT_DATABASES = frozenset({"service", "health", "ready", "static"})

@dataclass(frozen=True)
class DatabaseKey:
    """A database and the credentials of one of its admin API clients."""

    db_id: str
    url: str
    client_id: str
    client_secret: str


def migrate(services: Services) -> None:
    """Bring the control database and every shard to the newest schema, and seal
    shard connection strings stored in clear by older versions."""
    upgrade(services.control, "control")
    with services.control.begin() as connection:
        database_store.ensure_default_shard(connection)
        seal_clear_urls(connection, services.router.seal)
    for shard in services.router.all_shards():
        upgrade(shard.engine, "shard")


def create_database(
    services: Services, owner_email: str | None = None, db_id: str | None = None
) -> DatabaseKey:
    """A new logical database, with an admin API client, on a writable shard drawn by weight.

    ``db_id``: keep another installation's id (a database moving here: its clients'
    local databases are named after it, docs/migration.md)."""
    if db_id is not None and (not DATABASE_ID.fullmatch(db_id) or db_id in NOT_DATABASES):
        raise Invalid(f"{db_id!r} is not a database id (a-z and 0-9, 2 to 64)")
    with services.control.begin() as connection:
        if db_id is not None and retired.get(connection, db_id) is not None:
            raise Conflict(f"{db_id} was deleted here: its URL stays retired")
        shard_id = shard_store.pick_shard(connection)
        try:
            with connection.begin_nested():
                db_id = database_store.create_database(connection, shard_id, db_id)
        except IntegrityError:
            raise Conflict(f"a database {db_id} exists here already") from None
        client, secret = credentials.create_api_client(
            connection, db_id, ADMIN_SCOPES, owner_email
        )
    with services.router.shard_for(db_id).transaction() as connection:
        ObjectStore(connection, db_id).create_revision_counter()
    return DatabaseKey(db_id, services.settings.database_url_for(db_id), client.client_id, secret)


def add_admin_key(services: Services, db_id: str) -> DatabaseKey:
    """A new admin API client of the existing database ``db_id``, for the CLI files."""
    services.router.shard_for(db_id)  # an unknown database is an error
    with services.control.begin() as connection:
        client, secret = credentials.create_api_client(connection, db_id, ADMIN_SCOPES, None)
    return DatabaseKey(db_id, services.settings.database_url_for(db_id), client.client_id, secret)


def list_databases(services: Services) -> list[str]:
    with services.control.connect() as connection:
        return database_store.list_databases(connection)
