"""incidents: an index on the incidents' discovery time, so that a period's statistics read a range

Revision ID: 0015_incidents_discovered
Revises: 0008_incidents_store_ids
Create Date: 2026-12-04 19:00:00
"""

from alembic import op

revision = '0015_incidents_discovered'
down_revision = '0008_incidents_store_ids'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_incidents_discovered', 'incidents', ['discovered_at'])


def downgrade() -> None:
    op.drop_index('ix_incidents_discovered', table_name='incidents')
