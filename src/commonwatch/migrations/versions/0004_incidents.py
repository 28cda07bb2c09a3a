"""incidents: cases, links, comments, attachments, tasks, shares, timeline, alerts

Revision ID: 0004_incidents
Revises: 0001_foundation
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0004_incidents'
down_revision = '0001_foundation'
branch_labels = ('incidents',)
depends_on = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=32), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('opened_via', sa.String(length=20), nullable=False),
    sa.Column('reported_by_id', sa.Integer(), nullable=True),
    sa.Column('reporter_name', sa.String(length=200), nullable=False),
    sa.Column('reporter_contact', sa.String(length=320), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('tlp', sa.String(length=20), nullable=False),
    sa.Column('route', sa.String(length=32), nullable=False),
    sa.Column('route_basis', sa.String(length=200), nullable=False),
    sa.Column('involves_cii', sa.Boolean(), nullable=False),
    sa.Column('protection_department', sa.String(length=200), nullable=False),
    sa.Column('operator_province', sa.String(length=100), nullable=False),
    sa.Column('parent_department', sa.String(length=200), nullable=False),
    sa.Column('affected_system', sa.Text(), nullable=False),
    sa.Column('discovered_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('discovery_basis', sa.String(length=300), nullable=False),
    sa.Column('occurred_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('location', sa.String(length=300), nullable=False),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('subcategory', sa.String(length=16), nullable=True),
    sa.Column('rsit_class', sa.String(length=64), nullable=False),
    sa.Column('rsit_type', sa.String(length=64), nullable=False),
    sa.Column('effects', sa.Text(), nullable=False),
    sa.Column('measures_taken', sa.Text(), nullable=False),
    sa.Column('ransom_amount', sa.String(length=200), nullable=False),
    sa.Column('ransom_method', sa.String(length=200), nullable=False),
    sa.Column('ransom_dates', sa.String(length=200), nullable=False),
    sa.Column('trend', sa.Text(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('leads', sa.Text(), nullable=False),
    sa.Column('further_measures', sa.Text(), nullable=False),
    sa.Column('evidence_preservation', sa.Text(), nullable=False),
    sa.Column('other_info', sa.Text(), nullable=False),
    sa.Column('suspected_crime', sa.Boolean(), nullable=False),
    sa.Column('impact', sa.JSON(), nullable=False),
    sa.Column('computed_level', sa.String(length=16), nullable=False),
    sa.Column('grading', sa.JSON(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('level_override_reason', sa.Text(), nullable=False),
    sa.Column('rules_version', sa.String(length=120), nullable=False),
    sa.Column('reportable', sa.Boolean(), nullable=False),
    sa.Column('first_report_due', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_report_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_report_channel', sa.String(length=200), nullable=False),
    sa.Column('escalation_due', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('handling_closed_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('summary_due', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('summary_report_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duties_done', sa.JSON(), nullable=False),
    sa.Column('summary_cause', sa.Text(), nullable=False),
    sa.Column('summary_handling', sa.Text(), nullable=False),
    sa.Column('summary_harm', sa.Text(), nullable=False),
    sa.Column('summary_accountability', sa.Text(), nullable=False),
    sa.Column('summary_rectification', sa.Text(), nullable=False),
    sa.Column('summary_lessons', sa.Text(), nullable=False),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merged_into_id'], ['incidents.id'], name=op.f('fk_incidents_merged_into_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_incidents_org_id_organisations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_incidents_owner_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reported_by_id'], ['users.id'], name=op.f('fk_incidents_reported_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('ref', name=op.f('uq_incidents_ref'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_status'), ['status'], unique=False)
        batch_op.create_index('ix_incidents_status_first_due', ['status', 'first_report_due'], unique=False)

    op.create_table('incident_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('clock', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('due_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_via', sa.String(length=64), nullable=False),
    sa.Column('read_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_alerts_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_incident_alerts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_alerts')),
    sa.UniqueConstraint('incident_id', 'clock', 'state', 'due_at', 'user_id', name=op.f('uq_incident_alerts_incident_id_clock_state_due_at_user_id'))
    )
    with op.batch_alter_table('incident_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_alerts_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_alerts_user_id'), ['user_id'], unique=False)

    op.create_table('incident_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('uploaded_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_attachments_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_attachments'))
    )
    with op.batch_alter_table('incident_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_attachments_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_attachments_sha256'), ['sha256'], unique=False)

    op.create_table('incident_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('linked_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('linked_by', sa.String(length=400), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_incident_events_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_events_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_events')),
    sa.UniqueConstraint('incident_id', 'event_id', name=op.f('uq_incident_events_incident_id_event_id'))
    )
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_events_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_events_incident_id'), ['incident_id'], unique=False)

    op.create_table('incident_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('other_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_links_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['other_id'], ['incidents.id'], name=op.f('fk_incident_links_other_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_links')),
    sa.UniqueConstraint('incident_id', 'other_id', name=op.f('uq_incident_links_incident_id_other_id'))
    )
    with op.batch_alter_table('incident_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_links_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_links_other_id'), ['other_id'], unique=False)

    op.create_table('incident_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('partner_org_id', sa.Integer(), nullable=False),
    sa.Column('tlp', sa.String(length=20), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('shared_by', sa.String(length=400), nullable=False),
    sa.Column('shared_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_shares_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partner_org_id'], ['organisations.id'], name=op.f('fk_incident_shares_partner_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_shares'))
    )
    with op.batch_alter_table('incident_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_shares_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index('ix_incident_shares_partner', ['partner_org_id', 'shared_at'], unique=False)

    op.create_table('incident_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('due_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('responded_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('responded_by', sa.String(length=400), nullable=False),
    sa.Column('created_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_tasks_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_incident_tasks_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_tasks'))
    )
    with op.batch_alter_table('incident_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_tasks_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_tasks_org_id'), ['org_id'], unique=False)

    op.create_table('incident_timeline',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=400), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_timeline_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_timeline'))
    )
    with op.batch_alter_table('incident_timeline', schema=None) as batch_op:
        batch_op.create_index('ix_incident_timeline_incident_at', ['incident_id', 'at'], unique=False)

    op.create_table('incident_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_name', sa.String(length=200), nullable=False),
    sa.Column('visibility', sa.String(length=16), nullable=False),
    sa.Column('share_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_incident_comments_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_comments_incident_id_incidents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['share_id'], ['incident_shares.id'], name=op.f('fk_incident_comments_share_id_incident_shares'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_comments'))
    )
    with op.batch_alter_table('incident_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_comments_incident_id'), ['incident_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('incident_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_comments_incident_id'))

    op.drop_table('incident_comments')
    with op.batch_alter_table('incident_timeline', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_timeline_incident_at')

    op.drop_table('incident_timeline')
    with op.batch_alter_table('incident_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_tasks_org_id'))
        batch_op.drop_index(batch_op.f('ix_incident_tasks_incident_id'))

    op.drop_table('incident_tasks')
    with op.batch_alter_table('incident_shares', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_shares_partner')
        batch_op.drop_index(batch_op.f('ix_incident_shares_incident_id'))

    op.drop_table('incident_shares')
    with op.batch_alter_table('incident_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_links_other_id'))
        batch_op.drop_index(batch_op.f('ix_incident_links_incident_id'))

    op.drop_table('incident_links')
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_events_incident_id'))
        batch_op.drop_index(batch_op.f('ix_incident_events_event_id'))

    op.drop_table('incident_events')
    with op.batch_alter_table('incident_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_attachments_sha256'))
        batch_op.drop_index(batch_op.f('ix_incident_attachments_incident_id'))

    op.drop_table('incident_attachments')
    with op.batch_alter_table('incident_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_alerts_user_id'))
        batch_op.drop_index(batch_op.f('ix_incident_alerts_incident_id'))

    op.drop_table('incident_alerts')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_status_first_due')
        batch_op.drop_index(batch_op.f('ix_incidents_status'))
        batch_op.drop_index(batch_op.f('ix_incidents_owner_id'))
        batch_op.drop_index(batch_op.f('ix_incidents_org_id'))
        batch_op.drop_index(batch_op.f('ix_incidents_level'))

    op.drop_table('incidents')
