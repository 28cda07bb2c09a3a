"""vulns: vulnerability records, their history, quarantine, KEV, EPSS and findings

Revision ID: 0009_vulns
Revises: 0001_foundation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0009_vulns'
down_revision = '0001_foundation'
branch_labels = ('vulns',)
depends_on = None


def upgrade() -> None:
    op.create_table('vuln_epss',
    sa.Column('cve_id', sa.String(length=32), nullable=False),
    sa.Column('epss', sa.Float(), nullable=False),
    sa.Column('percentile', sa.Float(), nullable=False),
    sa.Column('score_date', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('cve_id', name=op.f('pk_vuln_epss'))
    )
    op.create_table('vuln_kev',
    sa.Column('cve_id', sa.String(length=32), nullable=False),
    sa.Column('vendor_project', sa.String(length=300), nullable=False),
    sa.Column('product', sa.String(length=300), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('date_added', sa.String(length=10), nullable=False),
    sa.Column('due_date', sa.String(length=10), nullable=False),
    sa.Column('required_action', sa.Text(), nullable=False),
    sa.Column('ransomware', sa.String(length=16), nullable=False),
    sa.Column('catalog_version', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('cve_id', name=op.f('pk_vuln_kev'))
    )
    op.create_table('vuln_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vuln_quarantine'))
    )
    op.create_table('vuln_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_key', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=250), nullable=False),
    sa.Column('vuln_id', sa.String(length=250), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('modified', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('cvss', sa.JSON(), nullable=False),
    sa.Column('cwes', sa.JSON(), nullable=False),
    sa.Column('kev', sa.JSON(), nullable=True),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('imported_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vuln_records')),
    sa.UniqueConstraint('record_key', name=op.f('uq_vuln_records_record_key'))
    )
    with op.batch_alter_table('vuln_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vuln_records_vuln_id'), ['vuln_id'], unique=False)

    op.create_table('vuln_record_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('modified', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('replaced_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['vuln_records.id'], name=op.f('fk_vuln_record_versions_record_id_vuln_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vuln_record_versions'))
    )
    with op.batch_alter_table('vuln_record_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vuln_record_versions_record_id'), ['record_id'], unique=False)

    op.create_table('vuln_findings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.Integer(), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=True),
    sa.Column('vuln_id', sa.String(length=250), nullable=False),
    sa.Column('record_key', sa.String(length=300), nullable=False),
    sa.Column('identifier', sa.String(length=1100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=False),
    sa.Column('matched', sa.Boolean(), nullable=False),
    sa.Column('first_seen', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('warned_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('warning_delivery', sa.Text(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'mitigated', 'accepted_risk', 'false_positive')", name=op.f('ck_vuln_findings_status_known')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_vuln_findings_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vuln_findings')),
    sa.UniqueConstraint('asset_id', 'vuln_id', name='asset_vuln')
    )
    with op.batch_alter_table('vuln_findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vuln_findings_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vuln_findings_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vuln_findings_vuln_id'), ['vuln_id'], unique=False)

    op.create_table('vuln_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('etag', sa.String(length=500), nullable=False),
    sa.Column('last_modified', sa.String(length=100), nullable=False),
    sa.Column('last_status', sa.Text(), nullable=False),
    sa.Column('fetched_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vuln_sources')),
    sa.UniqueConstraint('url', name=op.f('uq_vuln_sources_url'))
    )


def downgrade() -> None:
    op.drop_table('vuln_sources')
    op.drop_table('vuln_findings')
    op.drop_table('vuln_record_versions')
    op.drop_table('vuln_records')
    op.drop_table('vuln_quarantine')
    op.drop_table('vuln_kev')
    op.drop_table('vuln_epss')
