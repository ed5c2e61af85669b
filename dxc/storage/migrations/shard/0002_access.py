"""access index: realm owners and members, derived from the realms and members rows

Revision ID: shard_0002
Revises: shard_0001
Create Date: 2026-11-29 09:12:40.512337

The backfill derives the index from the objects already stored, with its
own copy of the rules (a migration must not depend on code that changes
after it): a member is active once ``accepted`` (and not rejected later),
rejected if only ``rejected``, else pending; e-mails are lower-cased;
permissions and roles are copied as they are (they are read leniently).
"""

import json

from alembic import op
import sqlalchemy as sa


revision = 'shard_0002'
down_revision = 'shard_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_members',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Text(), nullable=False),
    sa.Column('realm_id', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Text(), nullable=True),
    sa.Column('email', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('permissions', sa.Text(), nullable=True),
    sa.Column('roles', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('db_id', 'member_id', name=op.f('pk_access_members'))
    )
    with op.batch_alter_table('access_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_members_db_id_email'), ['db_id', 'email'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_members_db_id_realm_id'), ['db_id', 'realm_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_access_members_db_id_user_id'), ['db_id', 'user_id'], unique=False)

    op.create_table('access_realms',
    sa.Column('db_id', sa.String(length=64), nullable=False),
    sa.Column('realm_id', sa.Text(), nullable=False),
    sa.Column('owner', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('db_id', 'realm_id', name=op.f('pk_access_realms'))
    )
    with op.batch_alter_table('access_realms', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_access_realms_db_id_owner'), ['db_id', 'owner'], unique=False)

    _backfill()


def _backfill() -> None:
    objects = sa.table(
        'objects', sa.column('db_id'), sa.column('tbl'), sa.column('key'),
        sa.column('realm_id'), sa.column('owner'), sa.column('deleted'), sa.column('value'),
    )
    realms = sa.table('access_realms', sa.column('db_id'), sa.column('realm_id'), sa.column('owner'))
    members = sa.table(
        'access_members', sa.column('db_id'), sa.column('member_id'), sa.column('realm_id'),
        sa.column('user_id'), sa.column('email'), sa.column('state'),
        sa.column('permissions'), sa.column('roles'),
    )
    connection = op.get_bind()
    live = objects.c.deleted.is_(False)
    connection.execute(realms.insert().from_select(
        ['db_id', 'realm_id', 'owner'],
        sa.select(objects.c.db_id, objects.c.key, objects.c.owner).where(objects.c.tbl == 'realms', live),
    ))
    rows = connection.execute(
        sa.select(objects.c.db_id, objects.c.key, objects.c.realm_id, objects.c.value)
        .where(objects.c.tbl == 'members', live)
    ).all()
    entries = [_member(row) for row in rows]
    if entries:
        connection.execute(members.insert(), entries)


def _member(row) -> dict:
    value = json.loads(row.value or '{}')
    value = value if isinstance(value, dict) else {}

    def moment(name):
        field = value.get(name)
        if isinstance(field, dict) and field.get('$t') == 'Date':
            return str(field.get('v'))
        return '' if field not in (None, False) else None

    accepted, rejected = moment('accepted'), moment('rejected')
    if accepted is None:
        state = 'pending' if rejected is None else 'rejected'
    else:
        state = 'rejected' if rejected is not None and rejected > accepted else 'active'
    user_id, email, roles = value.get('userId'), value.get('email'), value.get('roles')
    return {
        'db_id': row.db_id,
        'member_id': row.key,
        'realm_id': row.realm_id,
        'user_id': user_id if isinstance(user_id, str) and user_id else None,
        'email': email.strip().lower() if isinstance(email, str) and email.strip() else None,
        'state': state,
        'permissions': json.dumps(value.get('permissions')),
        'roles': json.dumps(sorted({r for r in roles if isinstance(r, str)}) if isinstance(roles, list) else []),
    }


def downgrade() -> None:
    with op.batch_alter_table('access_realms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_realms_db_id_owner'))

    op.drop_table('access_realms')
    with op.batch_alter_table('access_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_access_members_db_id_user_id'))
        batch_op.drop_index(batch_op.f('ix_access_members_db_id_realm_id'))
        batch_op.drop_index(batch_op.f('ix_access_members_db_id_email'))

    op.drop_table('access_members')
