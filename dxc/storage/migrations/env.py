"""Alembic environment shared by the control and the shard migrations.

:func:`dxc.storage.migrate.upgrade` passes the connection, the metadata and
the version table of the role being migrated through ``config.attributes``.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes["metadata"],
    version_table=config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
