"""reports: event rollups per hour and day, hosts per day, report runs

Revision ID: 0012_reports
Revises: 0001_foundation
Create Date: 2026-12-02 14:07:37.994794
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0012_reports'
down_revision = '0001_foundation'
branch_labels = ('reports',)
depends_on = None


def upgrade() -> None:
    op.create_table('reports_event_counts',
    sa.Column('grain', sa.Integer(), nullable=False),
    sa.Column('dim', sa.String(length=16), nullable=False),
    sa.Column('org_id', sa.BigInteger(), nullable=False),
    sa.Column('bucket', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('partner_org_id', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('grain', 'dim', 'org_id', 'bucket', 'value', 'type', 'partner_org_id',
                            name=op.f('pk_reports_event_counts'))
    )
    op.create_table('reports_hosts',
    sa.Column('day', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.BigInteger(), nullable=False),
    sa.Column('partner_org_id', sa.BigInteger(), nullable=False),
    sa.Column('host', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'type', 'org_id', 'partner_org_id', 'host', name=op.f('pk_reports_hosts'))
    )
    op.create_table('reports_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('start', sa.String(length=10), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports_runs')),
    sa.UniqueConstraint('period', 'start', name=op.f('uq_reports_runs_period_start'))
    )


def downgrade() -> None:
    op.drop_table('reports_runs')
    op.drop_table('reports_hosts')
    op.drop_table('reports_event_counts')
