"""vulns: CSAF failures kept by test id on quarantined input; a source's delta cursor

Revision ID: 0013_vulns_csaf_provider
Revises: 0009_vulns
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = '0013_vulns_csaf_provider'
down_revision = '0009_vulns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vuln_quarantine') as batch:
        batch.add_column(sa.Column('failures', sa.JSON(), nullable=True))
    with op.batch_alter_table('vuln_sources') as batch:
        batch.add_column(sa.Column('cursor', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('vuln_sources') as batch:
        batch.drop_column('cursor')
    with op.batch_alter_table('vuln_quarantine') as batch:
        batch.drop_column('failures')
