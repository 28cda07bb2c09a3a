"""reports: centre-wide event counts for every type together (``type = '*'``) beside the per-type
ones, so that a centre-wide split without a type filter reads a row per value; summed from the
per-type rows already kept

Revision ID: 0016_reports_any_type
Revises: 0016_reports_host_sets
Create Date: 2026-12-06 21:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016_reports_any_type'
down_revision = '0016_reports_host_sets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # -1: the centre-wide rows (reports.models.ALL); the org dimension is kept without the type
    op.get_bind().execute(sa.text(
        "INSERT INTO reports_event_counts (grain, dim, org_id, bucket, value, type, partner_org_id, n) "
        "SELECT grain, dim, org_id, bucket, value, '*', partner_org_id, sum(n) FROM reports_event_counts "
        "WHERE org_id = -1 AND dim <> 'org' AND type <> '*' "
        "GROUP BY grain, dim, org_id, bucket, value, partner_org_id"))


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM reports_event_counts WHERE org_id = -1 AND type = '*'"))
