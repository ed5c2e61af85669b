"""After a bulk write the objects table's statistics are refreshed at once, not a minute
later by autovacuum (docs/operations.md, "Statistics after a bulk load")."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from dxc.manage import databases
from dxc.manage.importer import import_document
from dxc.storage.objects import BULK_WRITE
from tests.shard_databases import *  # noqa: F403 (the fixtures)
from tests.test_replication_rebase import copy
from tests.test_shards_http import dxc


def analysed(engine: Engine) -> bool:
    """Whether the objects table was analysed by hand (autovacuum's own runs not counted)."""
    with engine.connect() as connection:
        return connection.scalar(text(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'objects'"
        ))


def import_items(services, db_id: str, count: int, first: int = 0) -> None:
    items = {f"itm{n}": {"n": n} for n in range(first, first + count)}
    import_document(services, db_id, {"data": {"rlm-public": {"items": items}}})


#: PostgreSQL's planner statistics: SQLite has none of these.
pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


@pytest.fixture
def services(app):
    return app.extensions["dxc"]


def test_a_big_import_refreshes_the_statistics_and_a_small_one_does_not(services):
    db_id = databases.create_database(services).db_id
    engine = services.router.shard_for(db_id).engine
    import_items(services, db_id, 10)
    assert not analysed(engine)
    import_items(services, db_id, BULK_WRITE)
    assert analysed(engine)


def test_a_moved_database_arrives_with_statistics(app, services, shard_database):
    db_id = databases.create_database(services).db_id
    import_items(services, db_id, BULK_WRITE)
    assert dxc(app, "add-shard", "far", shard_database(), "--weight", "0").exit_code == 0
    moved = dxc(app, "move-realms", "--db", db_id, "--to", "far")
    assert moved.exit_code == 0, moved.output
    services.router.forget(db_id)
    shard = services.router.shard_for(db_id)
    assert shard.name == "far" and analysed(shard.engine)


def test_a_replicas_first_copy_refreshes_the_statistics(services):
    source = databases.create_database(services).db_id
    half = BULK_WRITE // 2 + 1  # each import alone is too small to analyse
    import_items(services, source, half)
    import_items(services, source, half, first=half)
    engine = services.router.shard_for(source).engine
    assert not analysed(engine)
    copy(services, source, databases.create_database(services).db_id)
    assert analysed(engine)
