"""intel: a MISP instance can be paused (not pulled on schedule) and resumed

Revision ID: 0013_bell_intel_misp_active
Revises: 0008_intel_stix_extension
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = '0013_bell_intel_misp_active'
down_revision = '0008_intel_stix_extension'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('intel_misp_peers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('intel_misp_peers', schema=None) as batch_op:
        batch_op.alter_column('active', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('intel_misp_peers', schema=None) as batch_op:
        batch_op.drop_column('active')
