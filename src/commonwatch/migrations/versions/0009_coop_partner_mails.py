"""cooperation: mails to partner CERTs (acknowledgements, outbound documents) with delivery state

Revision ID: 0009_coop_partner_mails
Revises: 0009_coop_inbound
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0009_coop_partner_mails'
down_revision = '0009_coop_inbound'
branch_labels = None
depends_on = ('0004_incidents',)  # coop_partner_mails.incident_id references incidents


def upgrade() -> None:
    op.create_table('coop_partner_mails',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedup_key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('partner_org_id', sa.Integer(), nullable=True),
    sa.Column('inbound_report_id', sa.Integer(), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('our_ref', sa.String(length=64), nullable=False),
    sa.Column('their_ref', sa.String(length=500), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('attachment_name', sa.String(length=200), nullable=False),
    sa.Column('attachment', sa.LargeBinary(), nullable=True),
    sa.Column('signed', sa.Boolean(), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('next_attempt_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=500), nullable=False),
    sa.Column('sent_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['inbound_report_id'], ['coop_inbound_reports.id'], name=op.f('fk_coop_partner_mails_inbound_report_id_coop_inbound_reports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_coop_partner_mails_incident_id_incidents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['partner_org_id'], ['organisations.id'], name=op.f('fk_coop_partner_mails_partner_org_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_partner_mails')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_coop_partner_mails_dedup_key'))
    )
    with op.batch_alter_table('coop_partner_mails', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_partner_mails_inbound_report_id'), ['inbound_report_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_partner_mails_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_partner_mails_partner_org_id'), ['partner_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_partner_mails_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('coop_partner_mails', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_partner_mails_status'))
        batch_op.drop_index(batch_op.f('ix_coop_partner_mails_partner_org_id'))
        batch_op.drop_index(batch_op.f('ix_coop_partner_mails_incident_id'))
        batch_op.drop_index(batch_op.f('ix_coop_partner_mails_inbound_report_id'))
    op.drop_table('coop_partner_mails')
