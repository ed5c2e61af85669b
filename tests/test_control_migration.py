"""The control database migrations create exactly what dxc/storage/schema.py declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from dxc.storage import schema
from dxc.storage.migrate import upgrade


def test_control_migrations_match_the_declared_schema(blank_database_url):
    engine = create_engine(blank_database_url)
    upgrade(engine, "control")
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": "alembic_version_control"}
        )
        differences = compare_metadata(context, schema.control_metadata)
    engine.dispose()
    assert differences == [], "the control migrations differ from dxc/storage/schema.py"
