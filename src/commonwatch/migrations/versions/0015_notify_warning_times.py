"""notify: an index on the warnings' creation time carrying their status, answer time and
organisation, so that a period's acknowledgements and time to acknowledge read a range of it
instead of every warning

Revision ID: 0015_notify_warning_times
Revises: 0008_notify_store_ids
Create Date: 2026-12-04 19:00:00
"""

from alembic import op

revision = '0015_notify_warning_times'
down_revision = '0008_notify_store_ids'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_notify_warnings_created', 'notify_warnings', ['created_at', 'status', 'responded_at', 'org_id'])


def downgrade() -> None:
    op.drop_index('ix_notify_warnings_created', table_name='notify_warnings')
