"""source_digests: what a copy of a source without revisions copied last

Revision ID: shard_0013
Revises: shard_0012
Create Date: 2026-12-07 14:30:00.000000

A source that is not a dxc-server (Dexie Cloud's own service) exports every
object without its revision, so its copy reads the whole export each round
and applies only the objects whose line changed (dxc.replication.full_reads):
one digest per object, written in the transaction that writes the object.
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0013'
down_revision = 'shard_0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('source_digests',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('tbl', sa.String(length=255), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('digest', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('db_id', 'tbl', 'key', name=op.f('pk_source_digests'))
    )


def downgrade() -> None:
    op.drop_table('source_digests')
