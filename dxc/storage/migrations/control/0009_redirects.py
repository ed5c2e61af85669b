"""redirects, and what a replica needs to take over its source's clients

Revision ID: control_0009
Revises: control_0008
Create Date: 2026-12-09 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0009'
down_revision = 'control_0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('redirects',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('target_url', sa.Text(), nullable=False),
    sa.Column('final_revision', sa.BigInteger(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_redirects_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', name=op.f('pk_redirects'))
    )
    with op.batch_alter_table('replications') as batch:
        batch.add_column(sa.Column('switched', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('token_issuer', sa.Text(), nullable=True))
        batch.add_column(sa.Column('token_audience', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('sealed_token_key', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('replications') as batch:
        batch.drop_column('sealed_token_key')
        batch.drop_column('token_audience')
        batch.drop_column('token_issuer')
        batch.drop_column('switched')
    op.drop_table('redirects')
