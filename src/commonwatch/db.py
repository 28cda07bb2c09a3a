"""Storage: engine, sessions, the declarative base, column types, and the tenancy scoping function.

SQLite (WAL) is the embedded default; PostgreSQL (psycopg 3) is chosen by URL. Every query that
reads or writes tenant data goes through :func:`scope`, the one door for tenancy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Executable,
    Integer,
    MetaData,
    Select,
    create_engine,
    event,
    false,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import JSON, TypeDecorator

from commonwatch.clock import ensure_utc

if TYPE_CHECKING:
    from commonwatch.access.principal import Principal

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A 64-bit key on PostgreSQL that is still SQLite's rowid alias (autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Stored as UTC everywhere; always returned timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = ensure_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class TenantScoped:
    """Mixin for tables whose rows belong to tenants.

    Subclasses say which rows a principal may see by overriding :meth:`visible_to`; the default
    is "rows of one of the principal's organisations" through an ``org_id`` column.
    """

    @classmethod
    def visible_to(cls, principal: Principal) -> ColumnElement[bool]:
        if principal.sees_all_tenants:
            return true()
        if not principal.org_ids:
            return false()
        return cls.org_id.in_(sorted(principal.org_ids))  # type: ignore[attr-defined]


def scope(stmt: Select, principal: Principal, *models: type[TenantScoped]) -> Select:
    """Restrict ``stmt`` to the rows of each of ``models`` that ``principal`` may read.

    The one door for tenancy: every query of tenant data is built through it, so a constituent
    reads only its own organisations' rows and a partner only what sharing allows.
    """
    if not models:
        raise ValueError("scope() needs at least one model")
    for model in models:
        stmt = stmt.where(model.visible_to(principal))
    return stmt


def get_scoped(session: Session, principal: Principal, model: type, ident: Any):
    """One row by primary key if ``principal`` may read it, else None (callers answer 404)."""
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    return session.scalars(scope(select(model).where(pk == ident), principal, model)).first()


def id_relation(dialect_name: str, ids: list[int]):
    """``ids`` as a one-column relation (``value``, text on PostgreSQL) in the database, from one JSON
    array parameter: a set the database joins, instead of a statement or a parameter per id."""
    if dialect_name == "sqlite":
        return func.json_each(json.dumps(ids)).table_valued("value").alias("ids")
    return func.jsonb_array_elements_text(literal(ids, JSONB)).table_valued("value").alias("ids")


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine if isinstance(url_or_engine, str) else str(url_or_engine.url)
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings each backend needs."""
    url = normalise_url(url)
    if is_sqlite(url):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            from pathlib import Path

            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


#: Bytes per page of a new SQLite database (SQLite's largest).
SQLITE_PAGE_SIZE = 65536
#: How long a SQLite writer waits for the write lock before it gives up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Set on every SQLite connection, after the page size.
SQLITE_CONNECTION_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                             f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take over transaction control from the sqlite3 module so BEGIN IMMEDIATE below works.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # Takes effect only while the database is still empty, so it must come before WAL mode.
        # Large pages make the event store's B-trees shallower: bulk inserts run ~1.5x faster.
        cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        for pragma in SQLITE_CONNECTION_PRAGMAS:
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get(READ_ONLY):
            # DEFERRED reads a WAL snapshot and never waits for a writer; query_only makes a
            # write in it an error instead of a wait for the write lock.
            conn.exec_driver_sql("PRAGMA query_only=ON")
            conn.exec_driver_sql("BEGIN")
        else:
            # IMMEDIATE takes the write lock at the start, so a transaction that read first
            # cannot fail later with SQLITE_BUSY when it writes.
            conn.exec_driver_sql("PRAGMA query_only=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")


#: Execution option of an engine whose transactions only read (see ``read_only_engine``).
READ_ONLY = "commonwatch_read_only"


def read_only_engine(engine: Engine) -> Engine:
    """``engine`` for transactions that only read. On SQLite they do not take the write lock, so
    they run while an ingest holds it for seconds, and a write in them fails at once; on
    PostgreSQL readers never wait for writers anyway."""
    return engine.execution_options(**{READ_ONLY: True})


_WRITER_TURNS: dict[str, threading.Lock] = {}
_WRITER_TURNS_GUARD = threading.Lock()


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """Let this process's SQLite writers to ``engine`` take the write lock one after another.

    Without it, threads that begin a write at once all ask SQLite, and the losers sleep in its busy
    handler in growing steps (seconds at the tail) although the lock is free again within
    milliseconds; here they wait on a Python lock and wake when it is released. PostgreSQL: no-op."""
    if engine.dialect.name != "sqlite":
        yield
        return
    key = engine.url.render_as_string(hide_password=False)
    with _WRITER_TURNS_GUARD:
        turn = _WRITER_TURNS.setdefault(key, threading.Lock())
    with turn:
        yield


class GroupCommit:
    """Writers of one process hand their work here; whichever of them gets the turn does all the
    work queued so far in one call of ``run_batch`` (one transaction, one commit), and each waiting
    writer returns its own result from it. So concurrent writers share a commit and the write lock
    is taken once per batch, not once per writer. No thread of its own and no timed waits.

    ``run_batch(works)`` returns one result per work, in order. If it raises for a batch of several,
    each work is run again alone, so one bad work fails only its own writer (with its exception).
    """

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], max_batch: int = 16):
        self._run_batch, self._max_batch = run_batch, max_batch
        self._turn = threading.Lock()
        self._guard = threading.Lock()
        self._queue: list[_Job] = []

    def submit(self, work: Any) -> Any:
        """Queue ``work``, wait until it is done (by this thread or another) and return its result."""
        job = _Job(work)
        with self._guard:
            self._queue.append(job)
        with self._turn:
            while not job.done:
                with self._guard:
                    batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                try:
                    self._run(batch)
                except BaseException as exc:  # interrupted: the batch's other writers must not wait forever
                    for other in batch:
                        if not other.done:
                            other.error, other.done = exc, True
                    raise
        if job.error is not None:
            raise job.error
        return job.result

    def _run(self, batch: list[_Job]) -> None:
        try:
            results = self._run_batch([j.work for j in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            for job in batch:  # find the one that fails: each alone, in its own transaction
                self._run([job])
            return
        for job, result in zip(batch, results, strict=True):
            job.result, job.done = result, True


@dataclass(eq=False)
class _Job:
    work: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None


def write_after(session: Session, statement: Executable) -> None:
    """Queue an advisory write (a browser session's last activity, a token's last use) for
    ``run_writes_after``, so that a request that only reads needs no write lock for it."""
    session.info.setdefault("writes_after", []).append(statement)


def run_writes_after(engine: Engine, session: Session, wait_seconds: float = 1.0) -> bool:
    """Run what ``write_after`` queued in a transaction of its own, waiting at most
    ``wait_seconds`` for SQLite's write lock; False (nothing written) if it stayed busy. The
    writes are advisory and repeat on a later request, so skipping them loses nothing."""
    statements = session.info.pop("writes_after", [])
    if not statements:
        return True
    with engine.connect() as conn:
        # On the driver's connection: through SQLAlchemy the pragma would open the transaction.
        pragma = conn.connection.driver_connection.execute if conn.dialect.name == "sqlite" else None
        if pragma:
            pragma(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
        try:
            with conn.begin():
                for statement in statements:
                    conn.execute(statement)
            return True
        except OperationalError as exc:
            if pragma and "locked" in str(exc.orig):
                return False
            raise
        finally:
            if pragma:
                pragma(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    import commonwatch.access.audit  # noqa: F401 - its listener audits every ORM session

    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session], actor: str = "system", clock=None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error; ``actor`` goes to the audit log,
    ``clock`` (if given) dates its audit entries."""
    session = factory()
    session.info["actor"] = actor
    if clock is not None:
        session.info["clock"] = clock
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
