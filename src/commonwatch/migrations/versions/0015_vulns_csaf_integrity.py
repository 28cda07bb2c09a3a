"""vulns: where a record came from and how far it can be trusted (a CSAF provider's role, the
advisory's hash and OpenPGP signature, distribution failures such as the file-name rule)

Revision ID: 0015_vulns_csaf_integrity
Revises: 0013_vulns_csaf_provider
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = '0015_vulns_csaf_integrity'
down_revision = '0013_vulns_csaf_provider'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vuln_records') as batch:
        batch.add_column(sa.Column('provenance', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('vuln_records') as batch:
        batch.drop_column('provenance')
