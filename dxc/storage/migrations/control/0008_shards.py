"""Shards: read-only shards, revision keys that survive moves, and moves in progress

Revision ID: control_0008
Revises: control_0007
Create Date: 2026-12-10 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0008'
down_revision = 'control_0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('shards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_only', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('databases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision_key', sa.Integer(), nullable=True))
    op.create_table('shard_moves',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('from_shard', sa.Integer(), nullable=False),
    sa.Column('to_shard', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_shard_moves_db_id_databases')),
    sa.ForeignKeyConstraint(['from_shard'], ['shards.id'], name=op.f('fk_shard_moves_from_shard_shards')),
    sa.ForeignKeyConstraint(['to_shard'], ['shards.id'], name=op.f('fk_shard_moves_to_shard_shards')),
    sa.PrimaryKeyConstraint('db_id', name=op.f('pk_shard_moves'))
    )


def downgrade() -> None:
    op.drop_table('shard_moves')
    with op.batch_alter_table('databases', schema=None) as batch_op:
        batch_op.drop_column('revision_key')
    with op.batch_alter_table('shards', schema=None) as batch_op:
        batch_op.drop_column('read_only')
