"""reports: the affected hosts per UTC day and month as one sorted array of 64-bit host hashes
per type, organisation and partner (and centre-wide), in place of a row per host; filled from the
hosts per day, which then go with the hosts per month

Revision ID: 0016_reports_host_sets
Revises: 0016_reports_ack_steps
Create Date: 2026-12-06 21:00:00
"""

import polars as pl
import sqlalchemy as sa
from alembic import op

revision = '0016_reports_host_sets'
down_revision = '0016_reports_ack_steps'
branch_labels = None
depends_on = None




def upgrade() -> None:
    op.create_table('reports_host_sets',
                    sa.Column('grain', sa.Integer(), nullable=False),
                    sa.Column('bucket', sa.BigInteger(), nullable=False),
                    sa.Column('type', sa.String(length=64), nullable=False),
                    sa.Column('org_id', sa.BigInteger(), nullable=False),
                    sa.Column('partner_org_id', sa.BigInteger(), nullable=False),
                    sa.Column('n', sa.BigInteger(), nullable=False),
                    sa.Column('hosts', sa.LargeBinary(), nullable=False),
                    sa.PrimaryKeyConstraint('grain', 'bucket', 'type', 'org_id', 'partner_org_id',
                                            name=op.f('pk_reports_host_sets')),
                    sqlite_with_rowid=False)
    # the hosts per day already kept, a month of days at a time, as the running code adds them
    from commonwatch.reports import rollup

    bind = op.get_bind()
    days = bind.execute(sa.text("SELECT min(day), max(day) FROM reports_hosts")).first()
    if days is not None and days[0] is not None:
        for first in range(int(days[0]) - int(days[0]) % 28, int(days[1]) + 1, 28):
            rows = bind.execute(sa.text("SELECT day, type, org_id, partner_org_id, host FROM reports_hosts "
                                        "WHERE day >= :a AND day < :b"), {"a": first, "b": first + 28}).all()
            if rows:
                frame = pl.DataFrame(rows, schema={"day": pl.Int64, "type": pl.String, "org_id": pl.Int64,
                                                   "partner_org_id": pl.Int64, "host": pl.Int64}, orient="row")
                rollup.add_host_sets(bind, rollup.host_sets(frame))
    op.drop_table('reports_host_months')
    op.drop_table('reports_hosts')


def downgrade() -> None:
    # the host rows come back empty: `commonwatch reports rebuild --since` refills them
    for name in ('reports_hosts', 'reports_host_months'):
        op.create_table(name,
                        sa.Column('month' if name == 'reports_host_months' else 'day', sa.BigInteger(), nullable=False),
                        sa.Column('type', sa.String(length=64), nullable=False),
                        sa.Column('org_id', sa.BigInteger(), nullable=False),
                        sa.Column('partner_org_id', sa.BigInteger(), nullable=False),
                        sa.Column('host', sa.BigInteger(), nullable=False),
                        sa.PrimaryKeyConstraint('month' if name == 'reports_host_months' else 'day', 'type', 'org_id',
                                                'partner_org_id', 'host', name=op.f(f'pk_{name}')),
                        sqlite_with_rowid=False)
    op.drop_table('reports_host_sets')
