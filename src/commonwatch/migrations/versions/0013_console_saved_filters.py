"""access: named saved filters, each its owner's

Revision ID: 0013_console_saved_filters
Revises: 0009_sso
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0013_console_saved_filters'
down_revision = '0009_sso'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('saved_filters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_saved_filters_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_filters')),
    sa.UniqueConstraint('user_id', 'name', name=op.f('uq_saved_filters_user_id_name'))
    )
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_filters_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_filters_user_id'))
    op.drop_table('saved_filters')
