"""Shard connection strings at rest: sealed with DXC_SECRET, shown masked, and the
clear ones of older installations read as they are and sealed by ``migrate``."""

from __future__ import annotations

import dataclasses
import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import Result
from sqlalchemy import select, text

from app import create_app
from dxc.config import load_settings
from dxc.manage import databases
from dxc.storage import schema
from dxc.storage.clock import utcnow
from dxc.storage.migrate import alembic_config, upgrade
from dxc.storage.shard_urls import UnreadableShardUrl, masked
from tests.conftest import free_port, server_environment
from tests.shard_databases import *  # noqa: F403 (the fixtures)
from tests.shard_databases import PASSWORD


def dxc(app, *args: str) -> Result:
    with app.app_context():
        return app.test_cli_runner().invoke(args=["dxc", *args], catch_exceptions=False)


def stored(services, name: str):
    with services.control.connect() as connection:
        return connection.execute(
            select(schema.shards).where(schema.shards.c.name == name)
        ).one()


def healthy(app, name: str) -> bool:
    listing = dxc(app, "shards", "--json").output
    assert PASSWORD not in listing
    return {row["name"]: row for row in json.loads(listing)}[name]["health"] == "ok"


def test_a_shard_password_is_stored_sealed_and_never_shown(app, shard_database, caplog):
    services = app.extensions["dxc"]
    url = shard_database()
    added = dxc(app, "add-shard", "one", url)
    assert added.exit_code == 0 and PASSWORD not in added.output
    row = stored(services, "one")
    assert row.url == masked(url) and "***" in row.url and PASSWORD not in row.url
    assert row.sealed_url and PASSWORD not in row.sealed_url
    services.router.close(row.id)
    assert healthy(app, "one")  # opened from the sealed form
    assert PASSWORD not in dxc(app, "shards").output
    updated = dxc(app, "update-shard", "one", "--url", url + "?sslmode=disable")
    assert updated.exit_code == 0 and PASSWORD not in updated.output
    assert stored(services, "one").version == row.version + 1
    assert PASSWORD not in caplog.text

    # Another DXC_SECRET cannot open it, and says what to do.
    other = create_app(dataclasses.replace(services.settings, secret="another-" + "x" * 32))
    try:
        with pytest.raises(UnreadableShardUrl) as unreadable:
            other.extensions["dxc"].router.shard(row.id)
    finally:
        other.extensions["dxc"].control.dispose()
    assert "update-shard" in str(unreadable.value) and PASSWORD not in str(unreadable.value)


def test_clear_urls_of_older_installations_work_and_migrate_seals_them(
    blank_database_url, tmp_path, shard_database
):
    """A control database at control_0010 with a shard stored in clear: the newest
    schema reads it as it is, ``migrate`` seals it, the schema is as declared."""
    url = shard_database()
    app = create_app(load_settings(server_environment(blank_database_url, tmp_path, free_port())))
    services = app.extensions["dxc"]
    config = alembic_config("control")
    try:
        with services.control.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "control_0010")
            connection.execute(
                text("INSERT INTO shards (name, url, weight, created, read_only) "
                     "VALUES ('old', :url, 1, :now, false)"),
                {"url": url, "now": utcnow()},
            )
        upgrade(services.control, "control")
        row = stored(services, "old")
        assert row.url == url and row.sealed_url is None and row.version == 1
        assert healthy(app, "old")  # read in clear, as before

        databases.migrate(services)
        row = stored(services, "old")
        assert row.url == masked(url) and PASSWORD not in row.url
        assert row.sealed_url and PASSWORD not in row.sealed_url
        services.router.close(row.id)
        assert healthy(app, "old")  # read sealed
        with services.control.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "version_table": "alembic_version_control",
                # the control database is the default shard too: its tables are not ours here
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or name in schema.control_metadata.tables
                ),
            })
            differences = compare_metadata(context, schema.control_metadata)
        assert differences == [], "the control migrations differ from dxc/storage/schema.py"
    finally:
        services.control.dispose()
