"""cooperation inbound reports

Revision ID: 0009_coop_inbound
Revises: 0008_cooperation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0009_coop_inbound'
down_revision = '0008_cooperation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coop_imap_cursors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox', sa.String(length=500), nullable=False),
    sa.Column('uidvalidity', sa.Integer(), nullable=False),
    sa.Column('last_uid', sa.Integer(), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_imap_cursors')),
    sa.UniqueConstraint('mailbox', name=op.f('uq_coop_imap_cursors_mailbox'))
    )
    op.create_table('coop_inbound_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('origin_ref', sa.String(length=500), nullable=False),
    sa.Column('message_id', sa.String(length=500), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('partner_org_id', sa.Integer(), nullable=True),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('signature', sa.String(length=16), nullable=False),
    sa.Column('signer', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('received_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('respond_by', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['partner_org_id'], ['organisations.id'], name=op.f('fk_coop_inbound_reports_partner_org_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_inbound_reports')),
    sa.UniqueConstraint('digest', name=op.f('uq_coop_inbound_reports_digest'))
    )
    with op.batch_alter_table('coop_inbound_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coop_inbound_reports_partner_org_id'), ['partner_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coop_inbound_reports_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('coop_inbound_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coop_inbound_reports_status'))
        batch_op.drop_index(batch_op.f('ix_coop_inbound_reports_partner_org_id'))

    op.drop_table('coop_inbound_reports')
    op.drop_table('coop_imap_cursors')
