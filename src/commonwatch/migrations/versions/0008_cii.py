"""cii: operators' systems and asset inventory

Revision ID: 0008_cii
Revises: 0001_foundation
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0008_cii'
down_revision = '0001_foundation'
branch_labels = ('cii',)
depends_on = None


def upgrade() -> None:
    op.create_table('cii_systems',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('mlps_level', sa.Integer(), nullable=False),
    sa.Column('filing_number', sa.String(length=100), nullable=False),
    sa.Column('filing_date', sa.Date(), nullable=True),
    sa.Column('protection_department', sa.String(length=300), nullable=False),
    sa.Column('last_mlps_assessment', sa.Date(), nullable=True),
    sa.Column('last_inspection', sa.Date(), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('mlps_level BETWEEN 1 AND 5', name=op.f('ck_cii_systems_mlps_level_range')),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_cii_systems_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cii_systems'))
    )
    with op.batch_alter_table('cii_systems', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cii_systems_org_id'), ['org_id'], unique=False)

    op.create_table('cii_assets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('vendor', sa.String(length=300), nullable=False),
    sa.Column('product', sa.String(length=300), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=True),
    sa.Column('cpe', sa.String(length=1000), nullable=True),
    sa.Column('purl', sa.String(length=1000), nullable=True),
    sa.Column('host', sa.String(length=300), nullable=False),
    sa.Column('network', sa.String(length=100), nullable=False),
    sa.Column('owner', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_cii_assets_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['system_id'], ['cii_systems.id'], name=op.f('fk_cii_assets_system_id_cii_systems'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cii_assets'))
    )
    with op.batch_alter_table('cii_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cii_assets_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cii_assets_system_id'), ['system_id'], unique=False)

    op.create_table('cii_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=True),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('spec_version', sa.String(length=32), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('added', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=400), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_cii_imports_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['system_id'], ['cii_systems.id'], name=op.f('fk_cii_imports_system_id_cii_systems'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cii_imports'))
    )
    with op.batch_alter_table('cii_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cii_imports_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cii_imports_system_id'), ['system_id'], unique=False)

    op.create_table('cii_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('system_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivery', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_cii_reminders_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['system_id'], ['cii_systems.id'], name=op.f('fk_cii_reminders_system_id_cii_systems'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cii_reminders')),
    sa.UniqueConstraint('system_id', 'kind', 'state', 'due_on', name=op.f('uq_cii_reminders_system_id_kind_state_due_on'))
    )
    with op.batch_alter_table('cii_reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cii_reminders_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cii_reminders_system_id'), ['system_id'], unique=False)

    op.create_table('cii_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['import_id'], ['cii_imports.id'], name=op.f('fk_cii_quarantine_import_id_cii_imports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_cii_quarantine_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cii_quarantine'))
    )
    with op.batch_alter_table('cii_quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cii_quarantine_import_id'), ['import_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cii_quarantine_org_id'), ['org_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('cii_quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cii_quarantine_org_id'))
        batch_op.drop_index(batch_op.f('ix_cii_quarantine_import_id'))

    op.drop_table('cii_quarantine')
    with op.batch_alter_table('cii_reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cii_reminders_system_id'))
        batch_op.drop_index(batch_op.f('ix_cii_reminders_org_id'))

    op.drop_table('cii_reminders')
    with op.batch_alter_table('cii_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cii_imports_system_id'))
        batch_op.drop_index(batch_op.f('ix_cii_imports_org_id'))

    op.drop_table('cii_imports')
    with op.batch_alter_table('cii_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cii_assets_system_id'))
        batch_op.drop_index(batch_op.f('ix_cii_assets_org_id'))

    op.drop_table('cii_assets')
    with op.batch_alter_table('cii_systems', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cii_systems_org_id'))

    op.drop_table('cii_systems')
