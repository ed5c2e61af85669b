"""replications: how far the Y.js updates are copied, the source's blobs and Y documents

Revision ID: control_0012
Revises: control_0011
Create Date: 2026-12-06 05:10:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0012'
down_revision = 'control_0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('replications') as batch:
        batch.add_column(sa.Column('y_checkpoint', sa.BigInteger(), server_default='0',
                                   nullable=False))
        batch.add_column(sa.Column('source_blobs', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('source_ydocs', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('replications') as batch:
        batch.drop_column('source_ydocs')
        batch.drop_column('source_blobs')
        batch.drop_column('y_checkpoint')
