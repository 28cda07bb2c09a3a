"""notify: notify_warnings.event_id names an event in the event store, which may live outside the
database (Parquet segments, ClickHouse), so it is no longer a foreign key to the events table

Revision ID: 0008_notify_store_ids
Revises: 0003_notify
Create Date: 2026-12-02
"""

from alembic import op

revision = '0008_notify_store_ids'
down_revision = '0003_notify'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notify_warnings', schema=None) as batch_op:
        batch_op.drop_constraint('fk_notify_warnings_event_id_events', type_='foreignkey')



def downgrade() -> None:
    with op.batch_alter_table('notify_warnings', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_notify_warnings_event_id_events', 'events', ['event_id'], ['id'], ondelete='CASCADE')
