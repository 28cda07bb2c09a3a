"""pipeline: each ingest run records its process, so a later start marks a killed run interrupted

Revision ID: 0009_ingest_process
Revises: 0002_pipeline
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_ingest_process"
down_revision = "0002_pipeline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_runs") as batch_op:
        batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("ingest_runs") as batch_op:
        batch_op.drop_column("host")
        batch_op.drop_column("pid")
