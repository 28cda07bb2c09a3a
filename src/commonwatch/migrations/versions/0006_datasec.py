"""datasec: data catalogue, PI scans, cross-border assessments

Revision ID: 0006_datasec
Revises: 0001_foundation
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0006_datasec'
down_revision = '0001_foundation'
branch_labels = ('datasec',)
depends_on = None


def upgrade() -> None:
    op.create_table('crossborder_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('window_opens', sa.Date(), nullable=True),
    sa.Column('extended_from', sa.Integer(), nullable=True),
    sa.Column('superseded', sa.Boolean(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['extended_from'], ['crossborder_approvals.id'], name=op.f('fk_crossborder_approvals_extended_from_crossborder_approvals'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_crossborder_approvals_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crossborder_approvals'))
    )
    with op.batch_alter_table('crossborder_approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crossborder_approvals_org_id'), ['org_id'], unique=False)

    op.create_table('datasec_assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('system', sa.String(length=300), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=False),
    sa.Column('owner', sa.String(length=300), nullable=False),
    sa.Column('record_count', sa.BigInteger(), nullable=True),
    sa.Column('persons_count', sa.BigInteger(), nullable=True),
    sa.Column('pi_categories', sa.JSON(), nullable=False),
    sa.Column('sensitive_categories', sa.JSON(), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('retention', sa.String(length=300), nullable=False),
    sa.Column('leaves_country', sa.Boolean(), nullable=False),
    sa.Column('destinations', sa.JSON(), nullable=False),
    sa.Column('notified_as', sa.String(length=16), nullable=False),
    sa.Column('impact_object', sa.String(length=32), nullable=False),
    sa.Column('impact_degree', sa.String(length=32), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('suggested_level', sa.String(length=16), nullable=False),
    sa.Column('suggested_subgrade', sa.Integer(), nullable=True),
    sa.Column('suggested_rule', sa.String(length=64), nullable=False),
    sa.Column('suggestion', sa.JSON(), nullable=False),
    sa.Column('grade_level', sa.String(length=16), nullable=False),
    sa.Column('grade_subgrade', sa.Integer(), nullable=True),
    sa.Column('grade_note', sa.Text(), nullable=False),
    sa.Column('confirmed_by', sa.String(length=400), nullable=False),
    sa.Column('confirmed_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_datasec_assets_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasec_assets'))
    )
    with op.batch_alter_table('datasec_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasec_assets_org_id'), ['org_id'], unique=False)

    op.create_table('crossborder_assessments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('recipient', sa.String(length=300), nullable=False),
    sa.Column('recipient_country', sa.String(length=2), nullable=False),
    sa.Column('transfer_date', sa.Date(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('recorded', sa.Boolean(), nullable=False),
    sa.Column('persons_non_sensitive', sa.BigInteger(), nullable=False),
    sa.Column('persons_sensitive', sa.BigInteger(), nullable=False),
    sa.Column('inputs', sa.JSON(), nullable=False),
    sa.Column('mechanism', sa.String(length=48), nullable=False),
    sa.Column('rule_id', sa.String(length=64), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['datasec_assets.id'], name=op.f('fk_crossborder_assessments_asset_id_datasec_assets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_crossborder_assessments_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crossborder_assessments'))
    )
    with op.batch_alter_table('crossborder_assessments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crossborder_assessments_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crossborder_assessments_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crossborder_assessments_year'), ['year'], unique=False)

    op.create_table('crossborder_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('approval_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['approval_id'], ['crossborder_approvals.id'], name=op.f('fk_crossborder_reminders_approval_id_crossborder_approvals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_crossborder_reminders_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crossborder_reminders')),
    sa.UniqueConstraint('approval_id', 'kind', name=op.f('uq_crossborder_reminders_approval_id_kind'))
    )
    with op.batch_alter_table('crossborder_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crossborder_reminders_approval_id'), ['approval_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_crossborder_reminders_org_id'), ['org_id'], unique=False)

    op.create_table('datasec_scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('sampled', sa.Boolean(), nullable=False),
    sa.Column('pi_categories', sa.JSON(), nullable=False),
    sa.Column('sensitive_categories', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['datasec_assets.id'], name=op.f('fk_datasec_scans_asset_id_datasec_assets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_datasec_scans_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasec_scans'))
    )
    with op.batch_alter_table('datasec_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasec_scans_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_datasec_scans_org_id'), ['org_id'], unique=False)

    op.create_table('datasec_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scan_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('part', sa.String(length=500), nullable=False),
    sa.Column('field', sa.String(length=300), nullable=False),
    sa.Column('detector', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('rows_total', sa.BigInteger(), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('pi_category', sa.String(length=64), nullable=False),
    sa.Column('sensitive_category', sa.String(length=64), nullable=False),
    sa.Column('minors', sa.BigInteger(), nullable=False),
    sa.Column('samples', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_datasec_findings_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scan_id'], ['datasec_scans.id'], name=op.f('fk_datasec_findings_scan_id_datasec_scans'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasec_findings'))
    )
    with op.batch_alter_table('datasec_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_datasec_findings_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_datasec_findings_scan_id'), ['scan_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('datasec_findings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasec_findings_scan_id'))
        batch_op.drop_index(batch_op.f('ix_datasec_findings_org_id'))

    op.drop_table('datasec_findings')
    with op.batch_alter_table('datasec_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasec_scans_org_id'))
        batch_op.drop_index(batch_op.f('ix_datasec_scans_asset_id'))

    op.drop_table('datasec_scans')
    with op.batch_alter_table('crossborder_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crossborder_reminders_org_id'))
        batch_op.drop_index(batch_op.f('ix_crossborder_reminders_approval_id'))

    op.drop_table('crossborder_reminders')
    with op.batch_alter_table('crossborder_assessments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crossborder_assessments_year'))
        batch_op.drop_index(batch_op.f('ix_crossborder_assessments_org_id'))
        batch_op.drop_index(batch_op.f('ix_crossborder_assessments_asset_id'))

    op.drop_table('crossborder_assessments')
    with op.batch_alter_table('datasec_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_datasec_assets_org_id'))

    op.drop_table('datasec_assets')
    with op.batch_alter_table('crossborder_approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crossborder_approvals_org_id'))

    op.drop_table('crossborder_approvals')
