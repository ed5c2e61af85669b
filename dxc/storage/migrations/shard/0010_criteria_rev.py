"""revisions.criteria_rev: the newest revision with a where-clause operation

Revision ID: shard_0010
Revises: shard_0009
Create Date: 2026-12-06 19:15:00.000000

Read with the counter under its row lock, so that a push of a device that is
behind skips reading the where-clause operations to replay when none came
after its base (docs/architecture.md). NULL: not known, read them.
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0010'
down_revision = 'shard_0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('revisions') as batch:
        batch.add_column(sa.Column('criteria_rev', sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE revisions SET criteria_rev = COALESCE((SELECT max(c.rev)"
        " FROM consistent_operations c WHERE c.db_id = revisions.db_id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table('revisions') as batch:
        batch.drop_column('criteria_rev')
