"""cii: the protection department's address and language, for early warnings

Revision ID: 0013_cii_protection_contact
Revises: 0008_cii
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = '0013_cii_protection_contact'
down_revision = '0008_cii'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cii_systems') as batch:
        batch.add_column(sa.Column('protection_department_email', sa.String(length=320), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('protection_department_language', sa.String(length=16), nullable=False,
                                   server_default='zh-CN'))


def downgrade() -> None:
    with op.batch_alter_table('cii_systems') as batch:
        batch.drop_column('protection_department_language')
        batch.drop_column('protection_department_email')
