"""Y.js document updates

Revision ID: shard_0006
Revises: shard_0005
Create Date: 2027-01-10 10:00:00.000000

One row per update a client sent (or per merged state), keyed by the
document's table, property and parent key; see docs/yjs.md.
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0006'
down_revision = 'shard_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('y_updates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('tbl', sa.String(length=255), nullable=False),
    sa.Column('prop', sa.String(length=255), nullable=False),
    sa.Column('doc_key', sa.Text(), nullable=False),
    sa.Column('rev', sa.BigInteger(), nullable=False),
    sa.Column('origin', sa.String(length=128), nullable=True),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_y_updates'))
    )
    with op.batch_alter_table('y_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_y_updates_db_id_tbl_doc_key_prop_rev'), ['db_id', 'tbl', 'doc_key', 'prop', 'rev'], unique=False)
        batch_op.create_index(batch_op.f('ix_y_updates_db_id_rev'), ['db_id', 'rev'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('y_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_y_updates_db_id_rev'))
        batch_op.drop_index(batch_op.f('ix_y_updates_db_id_tbl_doc_key_prop_rev'))
    op.drop_table('y_updates')
