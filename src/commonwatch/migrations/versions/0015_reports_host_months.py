"""reports: the affected hosts per UTC month (the hosts per day folded by month, per type and for
every type), so that distinct hosts over a year read a dozen months instead of 365 days; filled
from the hosts per day

Revision ID: 0015_reports_host_months
Revises: 0014_reports_rollup_mark
Create Date: 2026-12-04 19:00:00
"""

from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision = '0015_reports_host_months'
down_revision = '0014_reports_rollup_mark'
branch_labels = None
depends_on = None


def _first_day(month: int) -> int:
    return (date(1970 + month // 12, month % 12 + 1, 1) - date(1970, 1, 1)).days


def upgrade() -> None:
    op.create_table('reports_host_months',
                    sa.Column('month', sa.BigInteger(), nullable=False),
                    sa.Column('type', sa.String(length=64), nullable=False),
                    sa.Column('org_id', sa.BigInteger(), nullable=False),
                    sa.Column('partner_org_id', sa.BigInteger(), nullable=False),
                    sa.Column('host', sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint('month', 'type', 'org_id', 'partner_org_id', 'host',
                                            name=op.f('pk_reports_host_months')),
                    sqlite_with_rowid=False)
    bind = op.get_bind()
    days = bind.execute(sa.text("SELECT min(day), max(day) FROM reports_hosts")).first()
    if days is None or days[0] is None:
        return
    first = date(1970, 1, 1) + timedelta(days=int(days[0]))
    last = date(1970, 1, 1) + timedelta(days=int(days[1]))
    for month in range((first.year - 1970) * 12 + first.month - 1, (last.year - 1970) * 12 + last.month):
        window = {"m": month, "d0": _first_day(month), "d1": _first_day(month + 1)}
        bind.execute(sa.text("INSERT INTO reports_host_months (month, type, org_id, partner_org_id, host) "
                             "SELECT DISTINCT :m, type, org_id, partner_org_id, host FROM reports_hosts "
                             "WHERE day >= :d0 AND day < :d1 AND type <> ''"), window)
        # type '' holds every type's hosts (reports.rollup.host_months)
        bind.execute(sa.text("INSERT INTO reports_host_months (month, type, org_id, partner_org_id, host) "
                             "SELECT DISTINCT :m, '', org_id, partner_org_id, host FROM reports_hosts "
                             "WHERE day >= :d0 AND day < :d1"), window)


def downgrade() -> None:
    op.drop_table('reports_host_months')
