"""feeds: feed health — what each ingest run brought of each feed, and the faults found

Revision ID: 0009_feedhealth_tables
Revises: 0001_foundation
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0009_feedhealth_tables'
down_revision = '0001_foundation'
branch_labels = ('feeds',)
depends_on = '0002_pipeline'  # feed_run_stats.run_id refers to ingest_runs


def upgrade() -> None:
    op.create_table('feed_run_stats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('feed_name', sa.String(length=500), nullable=False),
    sa.Column('at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('header', sa.JSON(), nullable=False),
    sa.Column('new_columns', sa.JSON(), nullable=False),
    sa.Column('missing_columns', sa.JSON(), nullable=False),
    sa.Column('has_mapping', sa.Boolean(), nullable=False),
    sa.Column('known_columns', sa.Integer(), nullable=False),
    sa.Column('subscription', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['ingest_runs.id'], name=op.f('fk_feed_run_stats_run_id_ingest_runs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_run_stats'))
    )
    with op.batch_alter_table('feed_run_stats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_run_stats_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_run_stats_feed_name'), ['feed_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_run_stats_run_id'), ['run_id'], unique=False)

    op.create_table('feed_faults',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_name', sa.String(length=500), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('opened_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('alerted_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivery', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_faults'))
    )
    with op.batch_alter_table('feed_faults', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_faults_closed_at'), ['closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_faults_feed_name'), ['feed_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_faults_opened_at'), ['opened_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('feed_faults', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_faults_opened_at'))
        batch_op.drop_index(batch_op.f('ix_feed_faults_feed_name'))
        batch_op.drop_index(batch_op.f('ix_feed_faults_closed_at'))
    op.drop_table('feed_faults')
    with op.batch_alter_table('feed_run_stats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_run_stats_run_id'))
        batch_op.drop_index(batch_op.f('ix_feed_run_stats_feed_name'))
        batch_op.drop_index(batch_op.f('ix_feed_run_stats_at'))
    op.drop_table('feed_run_stats')
