"""reports: time to acknowledge as a rollup (answered warnings per part-day, day and month, per
organisation and for the centre, per 36-second step and per hour bin), filled from the warnings
already answered

Revision ID: 0016_reports_ack_steps
Revises: 0015_reports_host_months
Create Date: 2026-12-06 21:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0016_reports_ack_steps'
down_revision = '0015_reports_host_months'
branch_labels = None
depends_on = ('0003_notify',)  # it reads notify_warnings


def upgrade() -> None:
    op.create_table('reports_ack_steps',
                    sa.Column('grain', sa.Integer(), nullable=False),
                    sa.Column('level', sa.Integer(), nullable=False),
                    sa.Column('org_id', sa.BigInteger(), nullable=False),
                    sa.Column('bucket', sa.BigInteger(), nullable=False),
                    sa.Column('step', sa.BigInteger(), nullable=False),
                    sa.Column('n', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('grain', 'level', 'org_id', 'bucket', 'step',
                                            name=op.f('pk_reports_ack_steps')),
                    sqlite_with_rowid=False)
    # the answers already given, counted as the running code counts them (in the centre's zone)
    from commonwatch.config import get_settings
    from commonwatch.reports import acks

    acks.rebuild(op.get_bind(), datetime(1970, 1, 1, tzinfo=UTC), zone=get_settings().timezone)


def downgrade() -> None:
    op.drop_table('reports_ack_steps')
