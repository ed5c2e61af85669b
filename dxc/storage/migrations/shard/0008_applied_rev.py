"""applied_transactions by revision: a replica copies those recorded after its checkpoint

Revision ID: shard_0008
Revises: shard_0007
Create Date: 2026-12-06 06:00:00.000000

Each row already holds the revision its transaction was applied at; the
index lets ``export/stream?since=N`` read the rows after N without reading
all of the database's (docs/migration.md, "Applied transactions").
"""

from alembic import op


revision = 'shard_0008'
down_revision = 'shard_0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applied_transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applied_transactions_db_id_rev'), ['db_id', 'rev'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('applied_transactions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applied_transactions_db_id_rev'))
