"""per-worker activity (stats) and retired databases (delete-db)

Revision ID: control_0010
Revises: control_0009
Create Date: 2026-12-06 02:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0010'
down_revision = 'control_0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('activity',
    sa.Column('worker_id', sa.String(length=64), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('minute', sa.BigInteger(), nullable=False),
    sa.Column('syncs', sa.BigInteger(), nullable=False),
    sa.Column('forwarded', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('worker_id', 'db_id', 'minute', name=op.f('pk_activity'))
    )
    op.create_index(op.f('ix_activity_db_id_minute'), 'activity', ['db_id', 'minute'])
    op.create_table('open_sockets',
    sa.Column('worker_id', sa.String(length=64), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('sockets', sa.Integer(), nullable=False),
    sa.Column('relayed', sa.Integer(), nullable=False),
    sa.Column('heartbeat', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('worker_id', 'db_id', name=op.f('pk_open_sockets'))
    )
    op.create_table('retired_databases',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('retired', sa.DateTime(timezone=True), nullable=False),
    sa.Column('target_url', sa.Text(), nullable=True),
    sa.Column('forward_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('db_id', name=op.f('pk_retired_databases'))
    )


def downgrade() -> None:
    op.drop_table('retired_databases')
    op.drop_table('open_sockets')
    op.drop_index(op.f('ix_activity_db_id_minute'), table_name='activity')
    op.drop_table('activity')
