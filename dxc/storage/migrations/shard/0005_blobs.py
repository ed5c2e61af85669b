"""blobs: uploaded blobs, their bytes in chunks, and the objects that refer to them

Revision ID: shard_0005
Revises: shard_0004
Create Date: 2026-12-06 01:30:00.000000

Nothing to backfill: before this migration the server refused uploads, so
no stored object holds a BlobRef of this server.
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0005'
down_revision = 'shard_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('blobs',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('blob_id', sa.String(length=64), nullable=False),
    sa.Column('uploader', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('location', sa.String(length=8), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('db_id', 'blob_id', name=op.f('pk_blobs'))
    )

    op.create_table('blob_chunks',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('blob_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('db_id', 'blob_id', 'seq', name=op.f('pk_blob_chunks'))
    )
    op.create_table('blob_refs',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('blob_id', sa.String(length=64), nullable=False),
    sa.Column('tbl', sa.String(length=255), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('db_id', 'blob_id', 'tbl', 'key', name=op.f('pk_blob_refs'))
    )


def downgrade() -> None:
    op.drop_table('blob_refs')
    op.drop_table('blob_chunks')
    op.drop_table('blobs')
