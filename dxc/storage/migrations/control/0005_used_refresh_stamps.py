"""single-use refresh requests: the signed time stamps already answered

Revision ID: control_0005
Revises: control_0004
Create Date: 2026-12-05 20:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0005'
down_revision = 'control_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('used_refresh_stamps',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('time_stamp', sa.BigInteger(), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', 'time_stamp', name=op.f('pk_used_refresh_stamps'))
    )
    with op.batch_alter_table('used_refresh_stamps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_refresh_stamps_expires'), ['expires'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('used_refresh_stamps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_refresh_stamps_expires'))

    op.drop_table('used_refresh_stamps')
