"""audit: the chain head records the first link hashed with the audit key

Revision ID: 0008_audit_key
Revises: 0001_foundation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_audit_key"
down_revision = "0001_foundation"
branch_labels = ("audit_key",)
depends_on = None


def upgrade() -> None:
    # An existing chain stays unkeyed (NULL) until the first link written with a key; from then on
    # it is keyed from that link (see access.audit.append).
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.add_column(sa.Column("keyed_from", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as batch_op:
        batch_op.drop_column("keyed_from")
