"""pipeline: ingest runs, quarantine, enrichment ranges, feed subscriptions

Revision ID: 0002_pipeline
Revises: 0001_foundation
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0002_pipeline'
down_revision = '0001_foundation'
branch_labels = ('pipeline',)
depends_on = None


def upgrade() -> None:
    op.create_table('enrichment_loads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('file_name', sa.String(length=500), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('ranges', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('loaded_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrichment_loads'))
    )
    with op.batch_alter_table('enrichment_loads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrichment_loads_kind'), ['kind'], unique=False)

    op.create_table('enrichment_ranges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('first', sa.LargeBinary(length=16), nullable=False),
    sa.Column('last', sa.LargeBinary(length=16), nullable=False),
    sa.Column('asn', sa.BigInteger(), nullable=True),
    sa.Column('as_name', sa.String(length=200), nullable=True),
    sa.Column('cc', sa.String(length=2), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrichment_ranges'))
    )
    with op.batch_alter_table('enrichment_ranges', schema=None) as batch_op:
        batch_op.create_index('ix_enrichment_ranges_kind_first', ['kind', 'first'], unique=False)

    op.create_table('feed_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('feed', sa.String(length=500), nullable=False),
    sa.Column('every_minutes', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('etag', sa.String(length=500), nullable=False),
    sa.Column('last_modified', sa.String(length=100), nullable=False),
    sa.Column('last_fetched_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Text(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_subscriptions')),
    sa.UniqueConstraint('name', name=op.f('uq_feed_subscriptions_name'))
    )
    op.create_table('ingest_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('feed', sa.String(length=500), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=400), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('events_stored', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('notes', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_runs'))
    )
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ingest_runs_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_runs_status'), ['status'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_key', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('feed_name', sa.String(length=500), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], name=op.f('fk_quarantine_run_id_ingest_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine')),
    sa.UniqueConstraint('record_key', name=op.f('uq_quarantine_record_key'))
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_feed_name'), ['feed_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_quarantine_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_run_id'))
        batch_op.drop_index(batch_op.f('ix_quarantine_feed_name'))
        batch_op.drop_index(batch_op.f('ix_quarantine_created_at'))

    op.drop_table('quarantine')
    with op.batch_alter_table('ingest_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ingest_runs_status'))
        batch_op.drop_index(batch_op.f('ix_ingest_runs_started_at'))

    op.drop_table('ingest_runs')
    op.drop_table('feed_subscriptions')
    with op.batch_alter_table('enrichment_ranges', schema=None) as batch_op:
        batch_op.drop_index('ix_enrichment_ranges_kind_first')

    op.drop_table('enrichment_ranges')
    with op.batch_alter_table('enrichment_loads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrichment_loads_kind'))

    op.drop_table('enrichment_loads')
