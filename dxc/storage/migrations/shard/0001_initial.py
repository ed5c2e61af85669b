"""initial shard schema

Revision ID: shard_0001
Revises:
Create Date: 2026-11-28 17:13:02.135240
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('applied_transactions',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('client_identity', sa.String(length=128), nullable=False),
    sa.Column('txid', sa.String(length=128), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('db_id', 'client_identity', 'txid', name=op.f('pk_applied_transactions'))
    )
    op.create_table('consistent_operations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('tbl', sa.String(length=255), nullable=False),
    sa.Column('client_identity', sa.String(length=128), nullable=False),
    sa.Column('operation', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consistent_operations'))
    )
    with op.batch_alter_table('consistent_operations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consistent_operations_db_id_tbl_rev'), ['db_id', 'tbl', 'rev'], unique=False)

    op.create_table('departures',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('tbl', sa.String(length=255), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('realm_id', sa.Text(), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('db_id', 'tbl', 'key', 'realm_id', name=op.f('pk_departures'))
    )
    with op.batch_alter_table('departures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_departures_db_id_realm_id_rev'), ['db_id', 'realm_id', 'rev'], unique=False)

    op.create_table('objects',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('tbl', sa.String(length=255), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('realm_id', sa.Text(), nullable=False),
    sa.Column('owner', sa.Text(), nullable=True),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('db_id', 'tbl', 'key', name=op.f('pk_objects'))
    )
    with op.batch_alter_table('objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_objects_db_id_realm_id_rev'), ['db_id', 'realm_id', 'rev'], unique=False)
        batch_op.create_index(batch_op.f('ix_objects_db_id_tbl_owner'), ['db_id', 'tbl', 'owner'], unique=False)

    op.create_table('revisions',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('db_id', name=op.f('pk_revisions'))
    )


def downgrade() -> None:
    op.drop_table('revisions')
    with op.batch_alter_table('objects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_objects_db_id_tbl_owner'))
        batch_op.drop_index(batch_op.f('ix_objects_db_id_realm_id_rev'))

    op.drop_table('objects')
    with op.batch_alter_table('departures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_departures_db_id_realm_id_rev'))

    op.drop_table('departures')
    with op.batch_alter_table('consistent_operations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consistent_operations_db_id_tbl_rev'))

    op.drop_table('consistent_operations')
    op.drop_table('applied_transactions')
