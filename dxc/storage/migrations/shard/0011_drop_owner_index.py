"""objects: drop the unused index on (db_id, tbl, owner)

Revision ID: shard_0011
Revises: shard_0010
Create Date: 2026-12-06 22:05:00.000000

No query filters objects by owner (the access index keeps realm owners in
access_realms): the index only cost every write of an object one more
B-tree insert.
"""

from alembic import op


revision = 'shard_0011'
down_revision = 'shard_0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('objects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_objects_db_id_tbl_owner'))


def downgrade() -> None:
    with op.batch_alter_table('objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_objects_db_id_tbl_owner'), ['db_id', 'tbl', 'owner'], unique=False)
