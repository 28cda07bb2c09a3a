"""cooperation: held reports resolved by a coordinator (released or discarded), reports decrypted
with the centre's key, and the language a partner is written to

Revision ID: 0013_coop_held_reports
Revises: 0009_coop_partner_mails
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = "0013_coop_held_reports"
down_revision = "0009_coop_partner_mails"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("coop_inbound_reports") as batch_op:
        batch_op.add_column(sa.Column("encrypted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=400), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("resolved_at", commonwatch.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("coop_partner_profiles") as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=10), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("coop_partner_profiles") as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("coop_inbound_reports") as batch_op:
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("resolved_by")
        batch_op.drop_column("resolution")
        batch_op.drop_column("encrypted")
