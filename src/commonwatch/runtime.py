"""The pieces a command-line run or a worker needs: settings, engine, sessions, clock."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from commonwatch.clock import Clock, SystemClock
from commonwatch.config import Settings, get_settings
from commonwatch.db import make_engine, make_sessionmaker, session_scope


@dataclass
class Runtime:
    settings: Settings
    clock: Clock

    @cached_property
    def engine(self) -> Engine:
        from commonwatch import capabilities
        from commonwatch.access import audit

        capabilities.import_models()
        engine = make_engine(self.settings.effective_database_url)
        audit.use_key(engine, audit.load_key(self.settings))
        return engine

    @cached_property
    def sessionmaker(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    def session(self, actor: str = "cli"):
        """A committing session whose changes the audit log attributes to ``actor``."""
        return session_scope(self.sessionmaker, actor, self.clock)


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(get_settings(), SystemClock())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Tests point commands at their own database and clock."""
    global _runtime
    _runtime = runtime
