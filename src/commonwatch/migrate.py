"""Schema migrations (Alembic), run from code so no alembic.ini is needed on a server.

Each capability's tables come in through its own migration branch rooted at the foundation, so
``upgrade`` goes to every head.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

SCRIPT_LOCATION = str(Path(__file__).resolve().parent / "migrations")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, target: str = "heads") -> None:
    command.upgrade(alembic_config(engine), target)


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def expected_heads() -> set[str]:
    return set(ScriptDirectory(SCRIPT_LOCATION).get_heads())


def is_current(engine: Engine) -> bool:
    return current_heads(engine) == expected_heads()
