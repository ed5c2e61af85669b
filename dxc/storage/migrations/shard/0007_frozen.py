"""revisions.frozen: a database that takes no local writes (moving between installations)

Revision ID: shard_0007
Revises: shard_0006
Create Date: 2026-12-09 10:00:00.000000

Read with the counter under its row lock, so that once it is set no write
commits after it (docs/migration.md, "The switch-over").
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0007'
down_revision = 'shard_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('revisions') as batch:
        batch.add_column(
            sa.Column('frozen', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('revisions') as batch:
        batch.drop_column('frozen')
