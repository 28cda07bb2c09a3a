"""cooperation: partner directory, agreements, assistance requests

Revision ID: 0008_cooperation
Revises: 0001_foundation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0008_cooperation'
down_revision = '0001_foundation'
branch_labels = ('cooperation',)
depends_on = None


def upgrade() -> None:
    op.create_table('coop_agreements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('renews_on', sa.Date(), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_coop_agreements_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_agreements'))
    )
    with op.batch_alter_table('coop_agreements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_agreements_org_id'), ['org_id'], unique=False)

    op.create_table('coop_partner_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('short_name', sa.String(length=64), nullable=False),
    sa.Column('first_member', sa.Boolean(), nullable=False),
    sa.Column('apcert_member', sa.Boolean(), nullable=False),
    sa.Column('ti_level', sa.String(length=16), nullable=False),
    sa.Column('constituency', sa.Text(), nullable=False),
    sa.Column('hours', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('emergency_contact', sa.String(length=300), nullable=False),
    sa.Column('rfc2350_url', sa.String(length=500), nullable=False),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_coop_partner_profiles_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_partner_profiles')),
    sa.UniqueConstraint('org_id', name=op.f('uq_coop_partner_profiles_org_id'))
    )
    op.create_table('coop_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('authority', sa.String(length=300), nullable=False),
    sa.Column('partner_org_id', sa.Integer(), nullable=True),
    sa.Column('legal_basis', sa.String(length=32), nullable=False),
    sa.Column('legal_basis_detail', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('contents', sa.JSON(), nullable=False),
    sa.Column('concerns', sa.JSON(), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('decline_reason', sa.Text(), nullable=False),
    sa.Column('answered_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pi_findings', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_org_id'], ['organisations.id'], name=op.f('fk_coop_requests_partner_org_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_requests')),
    sa.UniqueConstraint('ref', name=op.f('uq_coop_requests_ref'))
    )
    with op.batch_alter_table('coop_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_requests_country'), ['country'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_requests_partner_org_id'), ['partner_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_requests_status'), ['status'], unique=False)

    op.create_table('coop_agreement_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('agreement_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agreement_id'], ['coop_agreements.id'], name=op.f('fk_coop_agreement_reminders_agreement_id_coop_agreements'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_coop_agreement_reminders_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_agreement_reminders')),
    sa.UniqueConstraint('agreement_id', 'kind', 'due_on', name=op.f('uq_coop_agreement_reminders_agreement_id_kind_due_on'))
    )
    with op.batch_alter_table('coop_agreement_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_agreement_reminders_agreement_id'), ['agreement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_agreement_reminders_org_id'), ['org_id'], unique=False)

    op.create_table('coop_request_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['coop_requests.id'], name=op.f('fk_coop_request_assignments_request_id_coop_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_coop_request_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_request_assignments')),
    sa.UniqueConstraint('request_id', 'user_id', name=op.f('uq_coop_request_assignments_request_id_user_id'))
    )
    with op.batch_alter_table('coop_request_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_request_assignments_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_request_assignments_user_id'), ['user_id'], unique=False)

    op.create_table('coop_request_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('pi_findings', sa.JSON(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['coop_requests.id'], name=op.f('fk_coop_request_attachments_request_id_coop_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_request_attachments'))
    )
    with op.batch_alter_table('coop_request_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_request_attachments_request_id'), ['request_id'], unique=False)

    op.create_table('coop_request_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=400), nullable=False),
    sa.Column('at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['coop_requests.id'], name=op.f('fk_coop_request_history_request_id_coop_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_request_history'))
    )
    with op.batch_alter_table('coop_request_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_request_history_request_id'), ['request_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('coop_request_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_request_history_request_id'))

    op.drop_table('coop_request_history')
    with op.batch_alter_table('coop_request_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_request_attachments_request_id'))

    op.drop_table('coop_request_attachments')
    with op.batch_alter_table('coop_request_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_request_assignments_user_id'))
        batch_op.drop_index(batch_op.f('ix_coop_request_assignments_request_id'))

    op.drop_table('coop_request_assignments')
    with op.batch_alter_table('coop_agreement_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_agreement_reminders_org_id'))
        batch_op.drop_index(batch_op.f('ix_coop_agreement_reminders_agreement_id'))

    op.drop_table('coop_agreement_reminders')
    with op.batch_alter_table('coop_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_requests_status'))
        batch_op.drop_index(batch_op.f('ix_coop_requests_partner_org_id'))
        batch_op.drop_index(batch_op.f('ix_coop_requests_country'))

    op.drop_table('coop_requests')
    op.drop_table('coop_partner_profiles')
    with op.batch_alter_table('coop_agreements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_agreements_org_id'))

    op.drop_table('coop_agreements')
