"""replications: a source without revisions, copied by reading its whole export

Revision ID: control_0013
Revises: control_0012
Create Date: 2026-12-07 14:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0013'
down_revision = 'control_0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('replications') as batch:
        batch.add_column(sa.Column('full_reads', sa.Boolean(), server_default=sa.false(),
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('replications') as batch:
        batch.drop_column('full_reads')
