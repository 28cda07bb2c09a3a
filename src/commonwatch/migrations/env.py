"""Alembic environment: the engine comes from commonwatch.migrate, the metadata from every capability."""

from alembic import context

from commonwatch import capabilities
from commonwatch.db import Base

capabilities.import_models()
config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=engine.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
