"""reports: the rollups' mark (the highest event id counted), so that rollups are kept after the
ingest's commit by a job instead of inside every stored batch's transaction

Revision ID: 0014_reports_rollup_mark
Revises: 0013_reports_clustered
Create Date: 2026-12-03 14:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0014_reports_rollup_mark'
down_revision = '0013_reports_clustered'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reports_rollup_mark',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('last_event_id', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports_rollup_mark')))


def downgrade() -> None:
    op.drop_table('reports_rollup_mark')
