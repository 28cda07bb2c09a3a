"""events: fewer indexes for faster bulk inserts; partner index partial

Revision ID: 0007_event_indexes
Revises: 0001_foundation
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_event_indexes"
down_revision = "0001_foundation"
branch_labels = ("event_indexes",)
depends_on = None

DROPPED = ("ix_events_feed_name", "ix_events_source_cc", "ix_events_severity", "ix_events_batch_id")
PARTIAL = sa.text("partner_org_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        for name in DROPPED:
            batch_op.drop_index(name)
        batch_op.drop_index("ix_events_partner_time")
    op.create_index("ix_events_partner_time", "events", ["partner_org_id", "time_source"],
                    sqlite_where=PARTIAL, postgresql_where=PARTIAL)


def downgrade() -> None:
    op.drop_index("ix_events_partner_time", table_name="events")
    op.create_index("ix_events_partner_time", "events", ["partner_org_id", "time_source"])
    for name, column in zip(DROPPED, ("feed_name", "source_cc", "severity", "batch_id"), strict=True):
        op.create_index(name, "events", [column])
