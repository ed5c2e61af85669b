"""who issued what: the user in applied txids and in consistent operations

Revision ID: shard_0003
Revises: shard_0002
Create Date: 2026-12-05 20:05:00.000000

A client identity is chosen by the client, so the record of applied
transactions is keyed by the user too: another user's push with the same
identity and txid is its own and must not be skipped. Rows written before
this migration get the user ``''`` (a resend of such a transaction after the
upgrade is applied again; it would have come within seconds of the upgrade).

Where-clause operations record their issuer, so that replaying one onto a
later write acts with the issuer's rights. Older ones have none and are no
longer replayed onto anyone's write.
"""

from alembic import op
import sqlalchemy as sa


revision = 'shard_0003'
down_revision = 'shard_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applied_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.String(length=320), nullable=False, server_default=''))
        batch_op.drop_constraint('pk_applied_transactions', type_='primary')
        batch_op.create_primary_key('pk_applied_transactions', ['db_id', 'user_id', 'client_identity', 'txid'])
    with op.batch_alter_table('consistent_operations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('consistent_operations', schema=None) as batch_op:
        batch_op.drop_column('user_id')
    op.execute("DELETE FROM applied_transactions WHERE user_id <> ''")
    with op.batch_alter_table('applied_transactions', schema=None) as batch_op:
        batch_op.drop_constraint('pk_applied_transactions', type_='primary')
        batch_op.create_primary_key('pk_applied_transactions', ['db_id', 'client_identity', 'txid'])
        batch_op.drop_column('user_id')
