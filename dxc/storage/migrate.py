"""Apply the Alembic migrations of the control database or of a shard."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

from dxc.storage.schema import control_metadata, shard_metadata

MIGRATIONS = Path(__file__).parent / "migrations"
ROLES: dict[str, MetaData] = {"control": control_metadata, "shard": shard_metadata}


def alembic_config(role: str) -> Config:
    """An Alembic configuration for ``role`` ("control" or "shard")."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS / role))
    config.attributes["metadata"] = ROLES[role]
    config.attributes["version_table"] = f"alembic_version_{role}"
    return config


def upgrade(engine: Engine, role: str) -> None:
    """Bring the database behind ``engine`` to the newest ``role`` schema."""
    config = alembic_config(role)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
