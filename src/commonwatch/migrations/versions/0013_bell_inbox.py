"""inbox: notifications addressed to one person, follows of cases, notification settings

Revision ID: 0013_bell_inbox
Revises: 0001_foundation
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0013_bell_inbox'
down_revision = '0001_foundation'
branch_labels = ('inbox',)
depends_on = ('0004_incidents',)


def upgrade() -> None:
    op.create_table('inbox_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('link', sa.String(length=300), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('mailed_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('mail_status', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_inbox_notifications_incident_id_incidents'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_inbox_notifications_org_id_organisations'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_inbox_notifications_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_notifications'))
    )
    with op.batch_alter_table('inbox_notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_notifications_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_notifications_user_id'), ['user_id'], unique=False)
        batch_op.create_index('ix_inbox_notifications_user_unread', ['user_id', 'read_at'], unique=False)
    op.create_table('inbox_follows',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_inbox_follows_incident_id_incidents'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_inbox_follows_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_follows')),
    sa.UniqueConstraint('user_id', 'incident_id', name=op.f('uq_inbox_follows_user_id_incident_id'))
    )
    with op.batch_alter_table('inbox_follows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_follows_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbox_follows_user_id'), ['user_id'], unique=False)
    op.create_table('inbox_preferences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_inbox_preferences_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_preferences')),
    sa.UniqueConstraint('user_id', 'kind', name=op.f('uq_inbox_preferences_user_id_kind'))
    )
    with op.batch_alter_table('inbox_preferences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_preferences_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_table('inbox_preferences')
    op.drop_table('inbox_follows')
    op.drop_table('inbox_notifications')
