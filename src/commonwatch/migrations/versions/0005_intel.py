"""intel: indicators, STIX objects, TAXII collections, sightings, partner feeds

Revision ID: 0005_intel
Revises: 0001_foundation
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0005_intel'
down_revision = '0001_foundation'
branch_labels = ('intel',)
depends_on = None


def upgrade() -> None:
    op.create_table('intel_collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('alias', sa.String(length=100), nullable=True),
    sa.Column('max_tlp', sa.String(length=16), nullable=False),
    sa.Column('default_tlp', sa.String(length=16), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_collections')),
    sa.UniqueConstraint('alias', name=op.f('uq_intel_collections_alias')),
    sa.UniqueConstraint('uuid', name=op.f('uq_intel_collections_uuid'))
    )
    op.create_table('intel_state',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_intel_state'))
    )
    op.create_table('indicators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stix_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('value_key', sa.String(length=512), nullable=False),
    sa.Column('first', sa.LargeBinary(length=16), nullable=True),
    sa.Column('last', sa.LargeBinary(length=16), nullable=True),
    sa.Column('pattern', sa.Text(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('indicator_types', sa.JSON(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('kill_chain_phases', sa.JSON(), nullable=False),
    sa.Column('related', sa.JSON(), nullable=False),
    sa.Column('confidence', sa.Integer(), nullable=True),
    sa.Column('valid_from', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('valid_until', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('owner_org_id', sa.Integer(), nullable=True),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('created', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('modified', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('sighting_count', sa.Integer(), nullable=False),
    sa.Column('last_seen', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_indicators_author_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_org_id'], ['organisations.id'], name=op.f('fk_indicators_owner_org_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_indicators')),
    sa.UniqueConstraint('stix_id', name=op.f('uq_indicators_stix_id'))
    )
    with op.batch_alter_table('indicators', schema=None) as batch_op:
        batch_op.create_index('ix_indicators_first_last', ['first', 'last'], unique=False)
        batch_op.create_index('ix_indicators_kind_key', ['kind', 'value_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_indicators_owner_org_id'), ['owner_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_indicators_tlp'), ['tlp'], unique=False)
        batch_op.create_index(batch_op.f('ix_indicators_valid_until'), ['valid_until'], unique=False)

    op.create_table('intel_collection_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('can_read', sa.Boolean(), nullable=False),
    sa.Column('can_write', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['intel_collections.id'], name=op.f('fk_intel_collection_access_collection_id_intel_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_intel_collection_access_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_collection_access')),
    sa.UniqueConstraint('collection_id', 'org_id', name=op.f('uq_intel_collection_access_collection_id_org_id'))
    )
    with op.batch_alter_table('intel_collection_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_collection_access_collection_id'), ['collection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_collection_access_org_id'), ['org_id'], unique=False)

    op.create_table('intel_misp_peers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('api_key', sa.Text(), nullable=False),
    sa.Column('default_tlp', sa.String(length=16), nullable=False),
    sa.Column('last_timestamp', sa.Integer(), nullable=False),
    sa.Column('last_polled_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_intel_misp_peers_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_misp_peers')),
    sa.UniqueConstraint('name', name=op.f('uq_intel_misp_peers_name'))
    )
    with op.batch_alter_table('intel_misp_peers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_misp_peers_org_id'), ['org_id'], unique=False)

    op.create_table('intel_objects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('stix_id', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('spec_version', sa.String(length=8), nullable=False),
    sa.Column('version', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_added', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('latest', sa.Boolean(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('owner_org_id', sa.Integer(), nullable=True),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_intel_objects_author_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_org_id'], ['organisations.id'], name=op.f('fk_intel_objects_owner_org_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_objects')),
    sa.UniqueConstraint('stix_id', 'version', name=op.f('uq_intel_objects_stix_id_version'))
    )
    with op.batch_alter_table('intel_objects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_objects_date_added'), ['date_added'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_objects_owner_org_id'), ['owner_org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_objects_stix_id'), ['stix_id'], unique=False)
        batch_op.create_index('ix_intel_objects_type_latest', ['type', 'latest'], unique=False)

    op.create_table('intel_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stix_id', sa.String(length=100), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_intel_shares_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_intel_shares_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_shares')),
    sa.UniqueConstraint('stix_id', 'org_id', 'user_id', name=op.f('uq_intel_shares_stix_id_org_id_user_id'))
    )
    with op.batch_alter_table('intel_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_shares_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_shares_stix_id'), ['stix_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_shares_user_id'), ['user_id'], unique=False)

    op.create_table('intel_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('collection_url', sa.Text(), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('every_minutes', sa.Integer(), nullable=False),
    sa.Column('default_tlp', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('added_after', sa.String(length=40), nullable=True),
    sa.Column('last_polled_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_intel_subscriptions_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_subscriptions')),
    sa.UniqueConstraint('name', name=op.f('uq_intel_subscriptions_name'))
    )
    with op.batch_alter_table('intel_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_subscriptions_org_id'), ['org_id'], unique=False)

    op.create_table('intel_taxii_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('request_timestamp', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('total_count', sa.Integer(), nullable=False),
    sa.Column('success_count', sa.Integer(), nullable=False),
    sa.Column('failure_count', sa.Integer(), nullable=False),
    sa.Column('pending_count', sa.Integer(), nullable=False),
    sa.Column('successes', sa.JSON(), nullable=False),
    sa.Column('failures', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['intel_collections.id'], name=op.f('fk_intel_taxii_status_collection_id_intel_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_intel_taxii_status_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_taxii_status')),
    sa.UniqueConstraint('uuid', name=op.f('uq_intel_taxii_status_uuid'))
    )
    with op.batch_alter_table('intel_taxii_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_taxii_status_collection_id'), ['collection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_taxii_status_user_id'), ['user_id'], unique=False)

    op.create_table('intel_collection_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('object_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('date_added', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['intel_collections.id'], name=op.f('fk_intel_collection_entries_collection_id_intel_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['object_id'], ['intel_objects.id'], name=op.f('fk_intel_collection_entries_object_id_intel_objects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_collection_entries')),
    sa.UniqueConstraint('collection_id', 'object_id', name=op.f('uq_intel_collection_entries_collection_id_object_id'))
    )
    with op.batch_alter_table('intel_collection_entries', schema=None) as batch_op:
        batch_op.create_index('ix_intel_collection_entries_coll_added', ['collection_id', 'date_added'], unique=False)
        batch_op.create_index('ix_intel_collection_entries_coll_id', ['collection_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intel_collection_entries_object_id'), ['object_id'], unique=False)

    op.create_table('intel_sightings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stix_id', sa.String(length=100), nullable=False),
    sa.Column('indicator_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('org_key', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_seen', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('owner_org_id', sa.Integer(), nullable=True),
    sa.Column('author_user_id', sa.Integer(), nullable=True),
    sa.Column('modified', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_user_id'], ['users.id'], name=op.f('fk_intel_sightings_author_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['indicator_id'], ['indicators.id'], name=op.f('fk_intel_sightings_indicator_id_indicators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_intel_sightings_org_id_organisations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_org_id'], ['organisations.id'], name=op.f('fk_intel_sightings_owner_org_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intel_sightings')),
    sa.UniqueConstraint('indicator_id', 'org_key', name=op.f('uq_intel_sightings_indicator_id_org_key')),
    sa.UniqueConstraint('stix_id', name=op.f('uq_intel_sightings_stix_id'))
    )
    with op.batch_alter_table('intel_sightings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intel_sightings_indicator_id'), ['indicator_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('intel_sightings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_sightings_indicator_id'))

    op.drop_table('intel_sightings')
    with op.batch_alter_table('intel_collection_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_collection_entries_object_id'))
        batch_op.drop_index('ix_intel_collection_entries_coll_id')
        batch_op.drop_index('ix_intel_collection_entries_coll_added')

    op.drop_table('intel_collection_entries')
    with op.batch_alter_table('intel_taxii_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_taxii_status_user_id'))
        batch_op.drop_index(batch_op.f('ix_intel_taxii_status_collection_id'))

    op.drop_table('intel_taxii_status')
    with op.batch_alter_table('intel_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_subscriptions_org_id'))

    op.drop_table('intel_subscriptions')
    with op.batch_alter_table('intel_shares', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_shares_user_id'))
        batch_op.drop_index(batch_op.f('ix_intel_shares_stix_id'))
        batch_op.drop_index(batch_op.f('ix_intel_shares_org_id'))

    op.drop_table('intel_shares')
    with op.batch_alter_table('intel_objects', schema=None) as batch_op:
        batch_op.drop_index('ix_intel_objects_type_latest')
        batch_op.drop_index(batch_op.f('ix_intel_objects_stix_id'))
        batch_op.drop_index(batch_op.f('ix_intel_objects_owner_org_id'))
        batch_op.drop_index(batch_op.f('ix_intel_objects_date_added'))

    op.drop_table('intel_objects')
    with op.batch_alter_table('intel_misp_peers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_misp_peers_org_id'))

    op.drop_table('intel_misp_peers')
    with op.batch_alter_table('intel_collection_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intel_collection_access_org_id'))
        batch_op.drop_index(batch_op.f('ix_intel_collection_access_collection_id'))

    op.drop_table('intel_collection_access')
    with op.batch_alter_table('indicators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_indicators_valid_until'))
        batch_op.drop_index(batch_op.f('ix_indicators_tlp'))
        batch_op.drop_index(batch_op.f('ix_indicators_owner_org_id'))
        batch_op.drop_index('ix_indicators_kind_key')
        batch_op.drop_index('ix_indicators_first_last')

    op.drop_table('indicators')
    op.drop_table('intel_state')
    op.drop_table('intel_collections')
