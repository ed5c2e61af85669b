"""administration: pending and rotated API clients, origin whitelist, templates

Revision ID: control_0003
Revises: control_0002
Create Date: 2026-11-28 21:40:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0003'
down_revision = 'control_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('service_account', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('expires', sa.DateTime(timezone=True), nullable=True))

    op.create_table('origins',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('origin', sa.String(length=512), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_origins_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', 'origin', name=op.f('pk_origins'))
    )
    op.create_table('templates',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_templates_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', 'path', name=op.f('pk_templates'))
    )


def downgrade() -> None:
    op.drop_table('templates')
    op.drop_table('origins')
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_column('expires')
        batch_op.drop_column('service_account')
        batch_op.drop_column('verified')
