"""Shared fixtures: real SQLite and PostgreSQL databases, the app on a frozen clock, a small world
of organisations and users of every role.

PostgreSQL, RabbitMQ and Chromium are real. Under ``CI=true`` a test that needs one of them fails
when it is missing; elsewhere it is skipped unless its URL or binary is configured.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from commonwatch import capabilities
from commonwatch.clock import FrozenClock
from commonwatch.config import Settings
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.migrate import upgrade

CI = os.environ.get("CI", "").lower() == "true"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Beijing

capabilities.import_models()


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing():
    """Argon2 with its smallest cost: the suite hashes hundreds of passwords; production keeps
    the library's defaults."""
    from argon2 import PasswordHasher

    from commonwatch.access import services

    saved = services._hasher, services._DUMMY_HASH
    services._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    services._DUMMY_HASH = services._hasher.hash("commonwatch-timing-equaliser")
    yield
    services._hasher, services._DUMMY_HASH = saved


@pytest.fixture(autouse=True)
def _own_event_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test has an event store of its own: the columnar store's folder is the test's, whatever
    settings the test builds (the SQL store lives in the test's database anyway)."""
    from commonwatch.config import get_settings

    monkeypatch.setenv("COMMONWATCH_EVENT_STORE_DIR", str(tmp_path / "event-store"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _environment_for_the_run(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the fixture's scope, then put back what was there."""
    saved = os.environ.get(name)
    os.environ[name] = value
    yield
    if saved is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = saved


@pytest.fixture(autouse=True, scope="session")
def _suite_keeps_its_priority():
    """In-process ingests leave the suite's own priority alone (``ingest_nice`` would lower every
    thread of the test process for the rest of the run, and a process cannot raise it back);
    tests/pipeline/test_priority.py sets it where it tests it, in processes of their own."""
    yield from _environment_for_the_run("COMMONWATCH_INGEST_NICE", "0")


@pytest.fixture(autouse=True, scope="session")
def _password_only_sign_in():
    """The world's admin and coordinator sign in with a password alone; the second-factor policy
    (admins and coordinators by default) is turned on by tests/access/test_mfa.py where it tests it."""
    yield from _environment_for_the_run("COMMONWATCH_MFA_REQUIRED_ROLES", "")


def require_service(what: str, reason: str) -> None:
    """Under CI a missing service is a failure; elsewhere the test is skipped."""
    if CI:
        pytest.fail(f"{what} is required under CI=true but {reason}", pytrace=False)
    pytest.skip(f"{what}: {reason}")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


# --- databases ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get("COMMONWATCH_TEST_POSTGRES_URL") or (DEFAULT_PG if CI else "")
    if not url:
        pytest.skip("PostgreSQL tests: set COMMONWATCH_TEST_POSTGRES_URL (CI uses 127.0.0.1:5432/test)")
    if not _reachable(url, 5432):
        require_service("PostgreSQL", f"{url} is not reachable")
    return url


def _pg_admin(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template(pg_server_url: str) -> Iterator[str]:
    """A migrated database that each PostgreSQL test copies (CREATE DATABASE ... TEMPLATE)."""
    name = f"cw_tpl_{uuid.uuid4().hex[:10]}"
    admin = _pg_admin(pg_server_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_server_url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_server_url: str, pg_template: str) -> Iterator[str]:
    name = f"cw_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin(pg_server_url)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield pg_server_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "commonwatch.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_url(request) -> str:
    """A freshly migrated database on each engine: storage tests run on both."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def any_engine(any_db_url: str) -> Iterator[Engine]:
    eng = make_engine(any_db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def sessions(engine: Engine):
    return make_sessionmaker(engine)


@pytest.fixture
def db(sessions, clock):
    """A session for arranging and checking data directly (commits on exit)."""
    with session_scope(sessions, actor="test") as session:
        session.info["clock"] = clock
        yield session


# --- the app --------------------------------------------------------------------------------------

@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, timezone="Asia/Shanghai",
                    log_format="text")


@pytest.fixture
def app(settings: Settings, engine: Engine, clock: FrozenClock):
    from commonwatch.app import create_app

    return create_app(settings, clock=clock, engine=engine)


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def anon(app):
    """A second client with no credentials at all."""
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


# --- a small world ---------------------------------------------------------------------------------

PASSWORD = "correct-horse-battery"


@dataclass
class World:
    """Two tenants (A, B), a partner CERT, and a user and token of every role."""

    org_a: int = 0
    org_a_unit: int = 0
    org_b: int = 0
    partner: int = 0
    users: dict[str, str] = field(default_factory=dict)  # role key -> email
    tokens: dict[str, str] = field(default_factory=dict)  # role key -> bearer secret
    ids: dict[str, int] = field(default_factory=dict)  # named object ids (networks, contacts, ...)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def build_world(session, clock) -> World:
    from commonwatch.access import services as access
    from commonwatch.constituency import services as registry

    w = World()
    a = registry.create_org(session, {"name": "Alpha Telecom", "kind": "network-operator", "sector": "telecom",
                                      "country": "CN", "region": "Beijing"})
    unit = registry.create_org(session, {"name": "Alpha Telecom Labs", "kind": "network-operator",
                                         "sector": "telecom", "country": "CN", "parent_id": a.id})
    b = registry.create_org(session, {"name": "Bravo Grid SECRET-B", "kind": "cii-operator", "sector": "energy",
                                      "country": "CN", "region": "Shanghai", "notes": "SECRET-B notes"})
    partner = registry.create_org(session, {"name": "CERT Partner DE", "kind": "partner-cert", "country": "DE"})
    w.org_a, w.org_a_unit, w.org_b, w.partner = a.id, unit.id, b.id, partner.id
    w.ids["network_a"] = registry.add_network(session, a, "198.51.100.0/24").id
    w.ids["network_b"] = registry.add_network(session, b, "203.0.113.0/24", "SECRET-B net").id
    w.ids["asn_b"] = registry.add_asn(session, b, 64501, "SECRET-B asn").id
    w.ids["domain_b"] = registry.add_domain(session, b, "secret-b.example").id
    w.ids["contact_a"] = registry.add_contact(session, a, {"email": "noc@alpha.example"}, clock.now()).id
    w.ids["contact_b"] = registry.add_contact(session, b, {"email": "secret-b@bravo.example",
                                                           "name": "SECRET-B person"}, clock.now()).id
    roles = {
        "admin": ("admin", []), "coordinator": ("coordinator", []), "analyst": ("analyst", []),
        "auditor": ("auditor", []), "a": ("constituent", [a.id]), "b": ("constituent", [b.id]),
        "partner": ("partner", [partner.id]),
    }
    for key, (role, orgs) in roles.items():
        email = f"{key}@test.example"
        user = access.create_user(session, email, role, PASSWORD, name=f"{key} user", org_ids=orgs, language="en")
        w.users[key] = email
        issued = access.create_token(session, user, name="test", now=clock.now())
        w.tokens[key] = issued.secret
        w.ids[f"token_{key}"] = issued.token.id
        w.ids[f"user_{key}"] = user.id
    session.flush()
    return w


@pytest.fixture
def world(app, clock) -> World:
    with session_scope(app.state.sessionmaker, actor="test") as session:
        session.info["clock"] = clock
        return build_world(session, clock)


def sign_in(client, email: str, password: str = PASSWORD):
    """Sign in through the real form (with its CSRF cookie); returns the page's CSRF token for forms."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"},
                       follow_redirects=False)
    assert resp.status_code == 303, resp.text[:500]
    return csrf_of(client)


def csrf_of(client, path: str = "/account") -> str:
    page = client.get(path)
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


# --- other real services ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("COMMONWATCH_TEST_AMQP_URL") or (DEFAULT_AMQP if CI else "")
    if not url:
        pytest.skip("RabbitMQ tests: set COMMONWATCH_TEST_AMQP_URL (CI uses 127.0.0.1:5672)")
    if not _reachable(url.replace("amqp://", "http://"), 5672):
        require_service("RabbitMQ", f"{url} is not reachable")
    return url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("COMMONWATCH_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not path:
        require_service("Chromium", "no chromium binary was found (apt-get install chromium)")
    return path


@pytest.fixture
def cli_run(settings, clock):
    """Invoke the CLI (``cli_run("events", "export", ...)``) on the test's database and clock;
    keyword arguments override settings."""
    from typer.testing import CliRunner

    from commonwatch.cli import app as cli
    from commonwatch.runtime import Runtime, set_runtime

    runtimes = []

    def invoke(*args: str, **overrides):
        rt = Runtime(settings.model_copy(update=overrides), clock)
        runtimes.append(rt)
        set_runtime(rt)
        return CliRunner().invoke(cli, list(args))

    yield invoke
    set_runtime(None)
    for rt in runtimes:
        if "engine" in rt.__dict__:
            rt.engine.dispose()
