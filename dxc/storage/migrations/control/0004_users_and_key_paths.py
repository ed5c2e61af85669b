"""complete user records; per-table primary-key paths

Revision ID: control_0004
Revises: control_0003
Create Date: 2026-11-28 22:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0004'
down_revision = 'control_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('eval_days_left', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('deactivated', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('data', sa.Text(), nullable=True))
    op.execute('UPDATE users SET updated = COALESCE(last_login, created)')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('updated', existing_type=sa.DateTime(timezone=True), nullable=False)

    with op.batch_alter_table('table_schemas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_path', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('table_schemas', schema=None) as batch_op:
        batch_op.drop_column('key_path')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('data')
        batch_op.drop_column('deactivated')
        batch_op.drop_column('eval_days_left')
        batch_op.drop_column('valid_until')
        batch_op.drop_column('updated')
