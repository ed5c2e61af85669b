"""replications: databases copied here from another installation

Revision ID: control_0007
Revises: control_0006
Create Date: 2026-12-08 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0007'
down_revision = 'control_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replications',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('sealed_secret', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('checkpoint', sa.BigInteger(), nullable=False),
    sa.Column('source_shard', sa.Integer(), nullable=True),
    sa.Column('source_head', sa.BigInteger(), nullable=True),
    sa.Column('source_counts', sa.Text(), nullable=True),
    sa.Column('copied', sa.BigInteger(), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('polled', sa.DateTime(timezone=True), nullable=True),
    sa.Column('synced', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_replications_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', name=op.f('pk_replications'))
    )


def downgrade() -> None:
    op.drop_table('replications')
