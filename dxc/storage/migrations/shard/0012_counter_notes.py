"""revisions.access_stamp and departure_rev: what a reader may skip

Revision ID: shard_0012
Revises: shard_0011
Create Date: 2026-12-07 11:20:00.000000

Both are read with the counter (docs/architecture.md, "One sync request").
access_stamp changes with every change of the access index, so that a process
can keep who a user stands for in a database for as long as the stamp stays
the same (``dxc.storage.access_index.StandingCache``); existing databases get a
random one. departure_rev is the newest revision at which an object left a
realm, so that a pull skips reading departures when none came after its
revision. NULL in either means "not known, read every time".
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
        batch.add_column(sa.Column('departure_rev', sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("UPDATE revisions SET access_stamp = (random() * 9e18)::bigint")
    else:
        op.execute("UPDATE revisions SET access_stamp = abs(random() / 2)")
    op.execute(
        "UPDATE revisions SET departure_rev = COALESCE((SELECT max(d.rev)"
        " FROM departures d WHERE d.db_id = revisions.db_id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table('revisions') as batch:
        batch.drop_column('departure_rev')
        batch.drop_column('access_stamp')
