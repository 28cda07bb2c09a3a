"""incidents: incident_events.event_id names an event in the event store, which may live outside the
database (Parquet segments, ClickHouse), so it is no longer a foreign key to the events table

Revision ID: 0008_incidents_store_ids
Revises: 0004_incidents
Create Date: 2026-12-02
"""

from alembic import op

revision = '0008_incidents_store_ids'
down_revision = '0004_incidents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.drop_constraint('fk_incident_events_event_id_events', type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('incident_events', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_incident_events_event_id_events', 'events', ['event_id'], ['id'], ondelete='CASCADE')
