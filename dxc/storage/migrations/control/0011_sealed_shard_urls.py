"""Shards: sealed connection strings, and a version that running workers watch

Existing clear URLs stay readable; ``flask dxc migrate`` seals them (it has
DXC_SECRET, which a migration does not).

Revision ID: control_0011
Revises: control_0010
Create Date: 2026-12-06 05:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0011'
down_revision = 'control_0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('shards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('shards', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('sealed_url')
