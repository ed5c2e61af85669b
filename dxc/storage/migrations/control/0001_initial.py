"""initial control schema

Revision ID: control_0001
Revises:
Create Date: 2026-11-28 17:13:01.774547
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shards')),
    sa.UniqueConstraint('name', name=op.f('uq_shards_name'))
    )
    op.create_table('databases',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('shard_id', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shard_id'], ['shards.id'], name=op.f('fk_databases_shard_id_shards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_databases'))
    )
    op.create_table('api_clients',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=128), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_api_clients_db_id_databases')),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_api_clients'))
    )
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_clients_db_id'), ['db_id'], unique=False)

    op.create_table('refresh_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=320), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_refresh_tokens_db_id_databases')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_refresh_tokens'))
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_db_id_user_id'), ['db_id', 'user_id'], unique=False)

    op.create_table('table_schemas',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('tbl', sa.String(length=255), nullable=False),
    sa.Column('id_prefix', sa.String(length=32), nullable=True),
    sa.Column('generated_global_id', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_table_schemas_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', 'tbl', name=op.f('pk_table_schemas')),
    sa.UniqueConstraint('db_id', 'id_prefix', name=op.f('uq_table_schemas_db_id_id_prefix'))
    )
    op.create_table('users',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=320), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('name', sa.String(length=320), nullable=True),
    sa.Column('user_type', sa.String(length=16), nullable=False),
    sa.Column('is_demo', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_users_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', 'user_id', name=op.f('pk_users'))
    )


def downgrade() -> None:
    op.drop_table('users')
    op.drop_table('table_schemas')
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refresh_tokens_db_id_user_id'))

    op.drop_table('refresh_tokens')
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_clients_db_id'))

    op.drop_table('api_clients')
    op.drop_table('databases')
    op.drop_table('shards')
