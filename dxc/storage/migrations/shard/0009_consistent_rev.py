"""consistent_operations by revision: a replica copies those recorded after its checkpoint

Revision ID: shard_0009
Revises: shard_0008
Create Date: 2026-12-06 08:30:00.000000

The index on (db_id, tbl, rev) serves a rebase, which reads one table's
operations; ``export/stream?since=N`` reads every table's after N
(docs/migration.md, "Where-clause operations").
"""

from alembic import op


revision = 'shard_0009'
down_revision = 'shard_0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consistent_operations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consistent_operations_db_id_rev'), ['db_id', 'rev'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consistent_operations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consistent_operations_db_id_rev'))
