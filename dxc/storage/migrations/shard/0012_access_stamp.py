"""revisions.access_stamp: changes with every change of the access index

Revision ID: shard_0012
Revises: shard_0011
Create Date: 2026-12-07 11:20:00.000000

Read with the counter, so that a process can keep who a user stands for in a
database (``dxc.storage.access_index.StandingCache``) for as long as the stamp
stays the same: one statement fewer for a sync's realm set. Existing databases
get a random stamp; NULL would mean "not known, read every time".
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0012'
down_revision = 'shard_0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('revisions') as batch:
        batch.add_column(sa.Column('access_stamp', sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE revisions SET access_stamp = (random() * 9e18)::bigint")
    else:
        op.execute("UPDATE revisions SET access_stamp = abs(random() / 2)")


def downgrade() -> None:
    with op.batch_alter_table('revisions') as batch:
        batch.drop_column('access_stamp')
