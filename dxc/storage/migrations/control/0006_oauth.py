"""OAuth and OpenID Connect logins: providers, login settings, pending states, codes

Revision ID: control_0006
Revises: control_0005
Create Date: 2026-12-06 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = 'control_0006'
down_revision = 'control_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('oauth_providers',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('client_id', sa.Text(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('issuer', sa.Text(), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('icon_url', sa.Text(), nullable=True),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_oauth_providers_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', 'name', name=op.f('pk_oauth_providers'))
    )
    op.create_table('login_settings',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('otp_enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['db_id'], ['databases.id'], name=op.f('fk_login_settings_db_id_databases')),
    sa.PrimaryKeyConstraint('db_id', name=op.f('pk_login_settings'))
    )
    op.create_table('oauth_states',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_oauth_states'))
    )
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_states_expires'), ['expires'], unique=False)

    op.create_table('oauth_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=320), nullable=True),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_oauth_codes'))
    )
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_codes_expires'), ['expires'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('oauth_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_codes_expires'))

    op.drop_table('oauth_codes')
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_states_expires'))

    op.drop_table('oauth_states')
    op.drop_table('login_settings')
    op.drop_table('oauth_providers')
