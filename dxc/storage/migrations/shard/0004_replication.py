"""objects by revision: what a replica copies after its checkpoint

Revision ID: shard_0004
Revises: shard_0003
Create Date: 2026-12-08 10:00:00.000000

A replica (another installation copying this database) asks for every row
written after a revision, whatever its realm; the (db_id, realm_id, rev)
index cannot answer that without reading the whole database.
"""

from alembic import op


revision = 'shard_0004'
down_revision = 'shard_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_objects_db_id_rev'), 'objects', ['db_id', 'rev'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_objects_db_id_rev'), table_name='objects')
