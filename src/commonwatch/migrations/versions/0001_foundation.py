"""foundation: accounts, audit log, constituency, event store

Revision ID: 0001_foundation
Revises: 
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

import commonwatch.db

revision = '0001_foundation'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=400), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('entity', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=64), nullable=False),
    sa.Column('before', sa.Text(), nullable=True),
    sa.Column('after', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_log_seq'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_entity'), ['entity'], unique=False)

    op.create_table('login_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_email_at', ['email', 'at'], unique=False)
        batch_op.create_index('ix_login_attempts_ip_at', ['ip', 'at'], unique=False)

    op.create_table('organisations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('name_local', sa.String(length=300), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('sector', sa.String(length=64), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('region', sa.String(length=100), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['organisations.id'], name=op.f('fk_organisations_parent_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations'))
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisations_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_organisations_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_organisations_parent_id'), ['parent_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('phone', sa.String(length=64), nullable=False),
    sa.Column('pgp_key', sa.Text(), nullable=False),
    sa.Column('pgp_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('pgp_expires_at', commonwatch.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notices', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_contacts_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('org_id', 'email', name=op.f('uq_contacts_org_id_email'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_org_id'), ['org_id'], unique=False)

    op.create_table('domains',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_domains_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domains')),
    sa.UniqueConstraint('org_id', 'name', name=op.f('uq_domains_org_id_name'))
    )
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domains_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_domains_org_id'), ['org_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_key', sa.String(length=64), nullable=False),
    sa.Column('time_source', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('time_observation', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('feed_name', sa.String(length=100), nullable=False),
    sa.Column('feed_provider', sa.String(length=100), nullable=False),
    sa.Column('source_ip', sa.String(length=45), nullable=True),
    sa.Column('source_ip_bin', sa.LargeBinary(length=16), nullable=True),
    sa.Column('source_port', sa.Integer(), nullable=True),
    sa.Column('source_asn', sa.BigInteger(), nullable=True),
    sa.Column('source_as_name', sa.String(length=200), nullable=True),
    sa.Column('source_cc', sa.String(length=2), nullable=True),
    sa.Column('source_fqdn', sa.String(length=253), nullable=True),
    sa.Column('source_url', sa.Text(), nullable=True),
    sa.Column('source_reverse_dns', sa.String(length=253), nullable=True),
    sa.Column('destination_ip', sa.String(length=45), nullable=True),
    sa.Column('destination_port', sa.Integer(), nullable=True),
    sa.Column('destination_fqdn', sa.String(length=253), nullable=True),
    sa.Column('protocol_transport', sa.String(length=16), nullable=True),
    sa.Column('protocol_application', sa.String(length=64), nullable=True),
    sa.Column('classification_taxonomy', sa.String(length=64), nullable=False),
    sa.Column('classification_type', sa.String(length=64), nullable=False),
    sa.Column('classification_identifier', sa.String(length=200), nullable=True),
    sa.Column('malware_name', sa.String(length=200), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('partner_org_id', sa.Integer(), nullable=True),
    sa.Column('constituent_sector', sa.String(length=64), nullable=True),
    sa.Column('constituent_cii', sa.Boolean(), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('gbt_category', sa.String(length=64), nullable=True),
    sa.Column('tlp', sa.String(length=16), nullable=False),
    sa.Column('batch_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_events_org_id_organisations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['partner_org_id'], ['organisations.id'], name=op.f('fk_events_partner_org_id_organisations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('event_key', name=op.f('uq_events_event_key'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_feed_name'), ['feed_name'], unique=False)
        batch_op.create_index('ix_events_org_time', ['org_id', 'time_source'], unique=False)
        batch_op.create_index('ix_events_partner_time', ['partner_org_id', 'time_source'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_severity'), ['severity'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_source_asn'), ['source_asn'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_source_cc'), ['source_cc'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_source_ip_bin'), ['source_ip_bin'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_time_source'), ['time_source'], unique=False)
        batch_op.create_index('ix_events_type_time', ['classification_type', 'time_source'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_memberships_org_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('user_id', 'org_id', name=op.f('uq_memberships_user_id_org_id'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_memberships_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_memberships_user_id'), ['user_id'], unique=False)

    op.create_table('networks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.Column('family', sa.Integer(), nullable=False),
    sa.Column('prefixlen', sa.Integer(), nullable=False),
    sa.Column('first', sa.LargeBinary(length=16), nullable=False),
    sa.Column('last', sa.LargeBinary(length=16), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_networks_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_networks')),
    sa.UniqueConstraint('org_id', 'cidr', name=op.f('uq_networks_org_id_cidr'))
    )
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_index('ix_networks_first_last', ['first', 'last'], unique=False)
        batch_op.create_index(batch_op.f('ix_networks_org_id'), ['org_id'], unique=False)

    op.create_table('org_asns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('asn', sa.BigInteger(), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_org_asns_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_asns')),
    sa.UniqueConstraint('org_id', 'asn', name=op.f('uq_org_asns_org_id_asn'))
    )
    with op.batch_alter_table('org_asns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_asns_asn'), ['asn'], unique=False)
        batch_op.create_index(batch_op.f('ix_org_asns_org_id'), ['org_id'], unique=False)

    op.create_table('web_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', commonwatch.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_sessions')),
    sa.UniqueConstraint('session_hash', name=op.f('uq_web_sessions_session_hash'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_user_id'))

    op.drop_table('web_sessions')
    with op.batch_alter_table('org_asns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_asns_org_id'))
        batch_op.drop_index(batch_op.f('ix_org_asns_asn'))

    op.drop_table('org_asns')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_networks_org_id'))
        batch_op.drop_index('ix_networks_first_last')

    op.drop_table('networks')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_memberships_user_id'))
        batch_op.drop_index(batch_op.f('ix_memberships_org_id'))

    op.drop_table('memberships')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_type_time')
        batch_op.drop_index(batch_op.f('ix_events_time_source'))
        batch_op.drop_index(batch_op.f('ix_events_source_ip_bin'))
        batch_op.drop_index(batch_op.f('ix_events_source_cc'))
        batch_op.drop_index(batch_op.f('ix_events_source_asn'))
        batch_op.drop_index(batch_op.f('ix_events_severity'))
        batch_op.drop_index('ix_events_partner_time')
        batch_op.drop_index('ix_events_org_time')
        batch_op.drop_index(batch_op.f('ix_events_feed_name'))
        batch_op.drop_index(batch_op.f('ix_events_batch_id'))

    op.drop_table('events')
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domains_org_id'))
        batch_op.drop_index(batch_op.f('ix_domains_name'))

    op.drop_table('domains')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_org_id'))

    op.drop_table('contacts')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisations_parent_id'))
        batch_op.drop_index(batch_op.f('ix_organisations_name'))
        batch_op.drop_index(batch_op.f('ix_organisations_kind'))

    op.drop_table('organisations')
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_ip_at')
        batch_op.drop_index('ix_login_attempts_email_at')

    op.drop_table('login_attempts')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_entity'))

    op.drop_table('audit_log')
    op.drop_table('audit_head')
