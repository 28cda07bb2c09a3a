"""Early warning through a real SMTP server on loopback: the CII operator's security contact and the
protection department of the system concerned are mailed, each in its language; the department
sees only its own systems' findings, and each finding is warned of once."""

from __future__ import annotations

import email
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from commonwatch.cii.models import Asset, CiiSystem
from commonwatch.clock import FrozenClock
from commonwatch.config import Settings
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.runner import Notifier
from commonwatch.vulns import jobs
from commonwatch.vulns import services as svc
from commonwatch.web.templating import make_environment
from tests.conftest import START
from tests.notify.conftest import Sink

SAMPLES = Path(svc.intake.__file__).parent / "samples"


@pytest.fixture
def sink():
    s = Sink()
    s.start()
    yield s
    s.handler.hold.set()
    s.stop()


def _text(data: bytes) -> tuple[str, str, str]:
    msg = email.message_from_bytes(data)
    part = next(x for x in msg.walk() if x.get_content_type() == "text/plain")
    return msg["To"], str(make_header(decode_header(msg["Subject"]))), part.get_payload(decode=True).decode("utf-8")


def test_operator_and_protection_department_are_warned_in_their_languages(any_engine, sink, tmp_path):
    clock = FrozenClock(START)
    sessions = make_sessionmaker(any_engine)
    with session_scope(sessions, actor="test") as s:
        s.info["clock"] = clock
        org = registry.create_org(s, {"name": "Grid Dispatch", "kind": "cii-operator", "sector": "energy"})
        registry.add_contact(s, org, {"email": "soc@grid.example", "role": "security", "language": "en"},
                             clock.now())
        scada = CiiSystem(org_id=org.id, name="SCADA front end", mlps_level=3,
                          protection_department="National Energy Administration",
                          protection_department_email="Warn@NEA.example", protection_department_language="zh-CN")
        office = CiiSystem(org_id=org.id, name="Office portal", mlps_level=2)
        s.add_all([scada, office])
        s.flush()
        s.add_all([Asset(org_id=org.id, system_id=scada.id, name="web",
                         cpe="cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"),
                   Asset(org_id=org.id, system_id=office.id, name="app", purl="pkg:npm/lodash@4.17.20")])
        s.flush()
        for name in ("nvd-page.json", "GHSA-35jh-r3h4-6jhm.json"):
            svc.import_path(s, SAMPLES / name, START)
        assert len(svc.run_match(s, START).new) == 2
    settings = Settings(data_dir=tmp_path / "data", smtp_host="127.0.0.1", smtp_port=sink.port, smtp_security="none",
                        mail_from="cert@centre.example", timezone="Asia/Shanghai")
    notifier = Notifier(settings=settings, sessions=sessions, clock=clock,
                        env=make_environment(settings.data_dir, settings.timezone), nset=NotifySettings())
    with session_scope(sessions, actor="test") as s:
        assert jobs.deliver_warnings(s, notifier, settings.data_dir) == 1
    with session_scope(sessions, actor="test") as s:
        assert jobs.deliver_warnings(s, notifier, settings.data_dir) == 0     # warned once
    if notifier.transport is not None:
        notifier.transport.close()
    got = {m.recipients[0]: _text(m.data) for m in sink.messages}
    assert set(got) == {"soc@grid.example", "warn@nea.example"}, list(got)
    _to, subject, en = got["soc@grid.example"]
    assert "Vulnerability warning for Grid Dispatch" in subject
    assert "CVE-2021-41773" in en and "CVE-2021-23337" in en and "protection department" not in en
    _to, subject, zh = got["warn@nea.example"]
    assert "漏洞预警" in subject
    assert "保护工作部门" in zh and "CVE-2021-41773" in zh
    assert "CVE-2021-23337" not in zh      # the office portal is not the department's system
    with session_scope(sessions, actor="test") as s:
        from sqlalchemy import select

        from commonwatch.vulns.models import VulnFinding

        deliveries = {f.warning_delivery for f in s.scalars(select(VulnFinding))}
        assert all("warn@nea.example" in d and "soc@grid.example" in d for d in deliveries)
