"""notify: policies, warnings, delivery ledger, deliveries, feedback

Revision ID: 0003_notify
Revises: 0001_foundation
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0003_notify'
down_revision = '0001_foundation'
branch_labels = ('notify',)
depends_on = None


def upgrade() -> None:
    op.create_table('notify_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('planned_until', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_state'))
    )
    op.create_table('notify_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('types', sa.JSON(), nullable=False),
    sa.Column('min_severity', sa.String(length=16), nullable=False),
    sa.Column('cadence', sa.String(length=16), nullable=False),
    sa.Column('immediate_severity', sa.String(length=16), nullable=False),
    sa.Column('cii_immediate', sa.Boolean(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('encryption_required', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('attach_intelmq', sa.Boolean(), nullable=False),
    sa.Column('repeat_window_hours', sa.Integer(), nullable=False),
    sa.Column('webhook_url', sa.Text(), nullable=False),
    sa.Column('webhook_secret', sa.Text(), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notify_policies_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_policies')),
    sa.UniqueConstraint('org_id', name=op.f('uq_notify_policies_org_id'))
    )
    op.create_table('notify_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('recipient_key', sa.String(length=100), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('reason', sa.JSON(), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('next_attempt_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('signed', sa.Boolean(), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('handoff_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_until', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resent_from_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_notify_deliveries_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notify_deliveries_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_deliveries'))
    )
    with op.batch_alter_table('notify_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_notify_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notify_deliveries_org_created', ['org_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_deliveries_recipient_key'), ['recipient_key'], unique=False)

    op.create_table('notify_warnings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('obs_key', sa.BigInteger(), nullable=False),
    sa.Column('time_source', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('classification_type', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('feed_name', sa.String(length=100), nullable=False),
    sa.Column('disposition', sa.String(length=16), nullable=False),
    sa.Column('repeat_of_id', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('responded_by', sa.Integer(), nullable=True),
    sa.Column('responded_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_notify_warnings_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notify_warnings_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['responded_by'], ['users.id'], name=op.f('fk_notify_warnings_responded_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_warnings')),
    sa.UniqueConstraint('event_id', 'org_id', name=op.f('uq_notify_warnings_event_id_org_id'))
    )
    with op.batch_alter_table('notify_warnings', schema=None) as batch_op:
        batch_op.create_index('ix_notify_warnings_org_obs_time', ['org_id', 'obs_key', 'time_source'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_warnings_repeat_of_id'), ['repeat_of_id'], unique=False)

    op.create_table('notify_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('warning_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('suppress', sa.Boolean(), nullable=False),
    sa.Column('classification_type', sa.String(length=64), nullable=False),
    sa.Column('feed_name', sa.String(length=100), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notify_feedback_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notify_feedback_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['warning_id'], ['notify_warnings.id'], name=op.f('fk_notify_feedback_warning_id_notify_warnings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_feedback'))
    )
    with op.batch_alter_table('notify_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_feedback_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_feedback_warning_id'), ['warning_id'], unique=False)

    op.create_table('notify_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recipient_key', sa.String(length=100), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('warning_id', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('delivery_id', sa.BigInteger(), nullable=True),
    sa.Column('due_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_notify_ledger_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['delivery_id'], ['notify_deliveries.id'], name=op.f('fk_notify_ledger_delivery_id_notify_deliveries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notify_ledger_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['warning_id'], ['notify_warnings.id'], name=op.f('fk_notify_ledger_warning_id_notify_warnings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_ledger')),
    sa.UniqueConstraint('recipient_key', 'event_id', name=op.f('uq_notify_ledger_recipient_key_event_id'))
    )
    with op.batch_alter_table('notify_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_notify_ledger_queue', ['delivery_id', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_ledger_warning_id'), ['warning_id'], unique=False)

    op.create_table('notify_suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('obs_key', sa.BigInteger(), nullable=False),
    sa.Column('warning_id', sa.BigInteger(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_notify_suppressions_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notify_suppressions_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['warning_id'], ['notify_warnings.id'], name=op.f('fk_notify_suppressions_warning_id_notify_warnings'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_suppressions')),
    sa.UniqueConstraint('org_id', 'obs_key', name=op.f('uq_notify_suppressions_org_id_obs_key'))
    )


def downgrade() -> None:
    op.drop_table('notify_suppressions')
    with op.batch_alter_table('notify_ledger', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_ledger_warning_id'))
        batch_op.drop_index('ix_notify_ledger_queue')

    op.drop_table('notify_ledger')
    with op.batch_alter_table('notify_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_feedback_warning_id'))
        batch_op.drop_index(batch_op.f('ix_notify_feedback_org_id'))

    op.drop_table('notify_feedback')
    with op.batch_alter_table('notify_warnings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_warnings_repeat_of_id'))
        batch_op.drop_index('ix_notify_warnings_org_obs_time')

    op.drop_table('notify_warnings')
    with op.batch_alter_table('notify_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_deliveries_recipient_key'))
        batch_op.drop_index('ix_notify_deliveries_org_created')
        batch_op.drop_index('ix_notify_deliveries_due')

    op.drop_table('notify_deliveries')
    op.drop_table('notify_policies')
    op.drop_table('notify_state')
