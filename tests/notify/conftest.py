"""Real parts for early-warning tests: an SMTP server on loopback (aiosmtpd) that can refuse or be
stopped and restarted, GnuPG homes made by the tests, and events written straight to the store."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from commonwatch.config import Settings
from commonwatch.db import make_engine, make_sessionmaker, session_scope
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.pgp import Keyring, gpg_binary
from commonwatch.notify.runner import Notifier
from commonwatch.web.templating import make_environment
from tests.conftest import CI, build_world
from tests.events.eventdata import insert_events as store_events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


class SinkHandler:
    """Keeps every accepted message; can refuse the next N transactions, or queue a message and
    hold back the reply (so a client can die between the server taking the message and the 250)."""

    def __init__(self):
        self.messages: list[Received] = []
        self.refuse = 0
        self.refuse_code = "451 4.3.0 try again later"
        self.hold = threading.Event()
        self.entered = threading.Event()
        self.holding = False
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                return self.refuse_code
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                                      or envelope.content))
        if self.holding:
            # Like a slow MTA: the message is queued, the reply is not yet sent.
            self.entered.set()
            while not self.hold.is_set():
                await asyncio.sleep(0.02)
        return "250 2.0.0 queued"


class Sink:
    def __init__(self):
        self.port = free_port()
        self.handler = SinkHandler()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, decode_data=False)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    s.start()
    yield s
    s.handler.hold.set()
    s.stop()


@pytest.fixture
def gpg_homes(clock) -> Iterator[callable]:
    """Makes GnuPG homes under a short path (gpg-agent sockets have a path length limit), on the
    test's clock: keys are made, and expire, at the test's time, whatever the date today."""
    if gpg_binary() is None:
        if CI:
            pytest.fail("gpg is required under CI=true (apt-get install gnupg)", pytrace=False)
        pytest.skip("gpg is not installed")
    made: list[Keyring] = []
    root = Path(tempfile.mkdtemp(prefix="cwg"))

    def make(name: str) -> Keyring:
        keyring = Keyring(root / name, clock)
        made.append(keyring)
        return keyring

    yield make
    for keyring in made:
        keyring.close()
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class NotifyEnv:
    settings: Settings
    sessions: object
    clock: object
    world: object
    centre: Keyring
    nset: NotifySettings = field(default_factory=NotifySettings)

    def notifier(self, **kw) -> Notifier:
        return Notifier(settings=self.settings, sessions=self.sessions, clock=self.clock,
                        env=make_environment(self.settings.data_dir, self.settings.timezone), nset=self.nset, **kw)

    def session(self):
        return session_scope(self.sessions, actor="test")


@pytest.fixture
def nenv(any_db_url, tmp_path, clock, sink, gpg_homes) -> Iterator[NotifyEnv]:
    centre = gpg_homes("centre")
    centre.generate_centre_key("Test CERT", "cert@centre.example")
    settings = Settings(data_dir=tmp_path / "data", database_url=any_db_url, smtp_host="127.0.0.1",
                        smtp_port=sink.port, smtp_security="none", mail_from="cert@centre.example",
                        gnupg_home=centre.home, timezone="Asia/Shanghai", base_url="https://cw.example",
                        outbound_allowlist=["http://127.0.0.1:"])
    engine = make_engine(any_db_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions, actor="test") as session:
        session.info["clock"] = clock
        world = build_world(session, clock)
    yield NotifyEnv(settings, sessions, clock, world, centre,
                    NotifySettings(retry_seconds=[60, 300, 900], webhook_timeout_seconds=1.0))
    engine.dispose()


_counter = [0]


def event_row(org_id: int | None, *, at: datetime, kind: str = "infected-system", severity: str = "medium",
              ip: str = "198.51.100.7", port: int | None = None, partner_org_id: int | None = None,
              cii: bool = False, tlp: str = "AMBER", identifier: str | None = None, malware: str | None = "mirai",
              feed: str = "shadowserver-sinkhole", extra: dict | None = None, key: str | None = None,
              created_at: datetime | None = None, url: str | None = None) -> dict:
    _counter[0] += 1
    return {
        "event_key": key or f"ev-{_counter[0]:08d}-{ip}-{kind}", "time_source": at, "time_observation": at,
        "feed_name": feed, "feed_provider": "Shadowserver", "source_ip": ip, "source_port": port,
        "source_asn": 64500, "source_as_name": "DEMO-AS", "source_cc": "CN", "source_fqdn": None,
        "source_url": url, "classification_taxonomy": "malicious-code", "classification_type": kind,
        "classification_identifier": identifier, "malware_name": malware, "extra": extra,
        "org_id": org_id, "partner_org_id": partner_org_id, "constituent_cii": cii, "severity": severity,
        "tlp": tlp, "created_at": created_at or at + timedelta(minutes=5),
    }


def insert_events(session, rows: list[dict]) -> None:
    """Store ``rows`` through the configured event store."""
    store_events(session, rows)


@pytest.fixture
def settings(tmp_path, sqlite_url, gpg_homes) -> Settings:
    """The app's settings for early-warning pages: no SMTP server (the outbox folder is used) and
    a centre key in a short GnuPG home."""
    centre = gpg_homes("centre")
    centre.generate_centre_key("Test CERT", "cert@centre.example")
    return Settings(data_dir=tmp_path / "data", database_url=sqlite_url, timezone="Asia/Shanghai",
                    log_format="text", gnupg_home=centre.home, mail_from="cert@centre.example")
