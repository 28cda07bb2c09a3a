"""notify: indexes by creation time on the warnings (carrying status, answer time and
organisation) and on the deliveries (carrying status and organisation), so that a period's
acknowledgements, time to acknowledge and deliveries read a range of an index instead of every row

Revision ID: 0015_notify_period_indexes
Revises: 0008_notify_store_ids
Create Date: 2026-12-04 19:00:00
"""

from alembic import op

revision = '0015_notify_period_indexes'
down_revision = '0008_notify_store_ids'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_notify_warnings_created', 'notify_warnings', ['created_at', 'status', 'responded_at', 'org_id'])
    op.create_index('ix_notify_deliveries_created', 'notify_deliveries', ['created_at', 'status', 'org_id'])


def downgrade() -> None:
    op.drop_index('ix_notify_deliveries_created', table_name='notify_deliveries')
    op.drop_index('ix_notify_warnings_created', table_name='notify_warnings')
