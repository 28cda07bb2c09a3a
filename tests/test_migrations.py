"""The schema comes only from migrations, on both engines, and matches the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from commonwatch.db import Base
from commonwatch.migrate import current_heads, expected_heads, is_current, upgrade


def test_upgrade_empty_database_reaches_every_head(any_engine):
    # any_db_url is already migrated; upgrading again must be a no-op and leave it current.
    upgrade(any_engine)
    assert is_current(any_engine)
    assert current_heads(any_engine) == expected_heads()
    tables = set(inspect(any_engine).get_table_names())
    assert {"users", "organisations", "networks", "contacts", "audit_log", "events"} <= tables


def test_migrations_match_the_models(any_engine):
    with any_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_upgrade_from_nothing(tmp_path):
    from commonwatch.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert current_heads(engine) == set()
    upgrade(engine)
    assert is_current(engine)
