"""Storing records (no-op re-import, history, quarantine), KEV/EPSS, and findings from a match,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from commonwatch.access.principal import Principal, Role
from commonwatch.cii.models import Asset, CiiSystem
from commonwatch.clock import FrozenClock
from commonwatch.constituency import services as registry
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Invalid, NotFound
from commonwatch.vulns import services as svc
from commonwatch.vulns.intake import IntakeError
from commonwatch.vulns.models import VulnEpss, VulnFinding, VulnKev, VulnQuarantine, VulnRecord, VulnRecordVersion
from tests.conftest import START

SAMPLES = Path(svc.intake.__file__).parent / "samples"


@pytest.fixture
def session(any_engine):
    with session_scope(make_sessionmaker(any_engine), actor="test") as s:
        s.info["clock"] = FrozenClock(START)
        yield s


def _org(session, name):
    return registry.create_org(session, {"name": name, "kind": "cii-operator", "sector": "energy"}).id


def _inventory(session):
    a, b = _org(session, "Grid A"), _org(session, "Grid B SECRET-B")
    sys_a = CiiSystem(org_id=a, name="SCADA front end", mlps_level=3)
    session.add(sys_a)
    session.flush()
    assets = [Asset(org_id=a, system_id=sys_a.id, name="web", cpe="cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"),
              Asset(org_id=a, system_id=sys_a.id, name="app", purl="pkg:npm/lodash@4.17.20"),
              Asset(org_id=b, name="gw", cpe="cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:acme_gateway:*")]
    session.add_all(assets)
    session.flush()
    return a, b, assets


def test_reimport_is_a_noop_and_a_newer_version_keeps_history(session):
    now = START
    raw = (SAMPLES / "CVE-2021-44228.json").read_bytes()
    r1 = svc.import_document(session, raw, "CVE-2021-44228.json", now)
    r2 = svc.import_document(session, raw, "CVE-2021-44228.json", now)
    assert (r1.added, r2.added, r2.unchanged) == (1, 0, 1)
    doc = json.loads(raw)
    doc["cveMetadata"]["dateUpdated"] = "2026-01-01T00:00:00.000Z"
    doc["containers"]["cna"]["title"] = "Log4Shell (updated)"
    r3 = svc.import_document(session, json.dumps(doc).encode(), "CVE-2021-44228.json", now)
    assert r3.updated == 1
    rec = session.scalars(select(VulnRecord)).one()
    assert rec.version == 2 and rec.title == "Log4Shell (updated)"
    old = session.scalars(select(VulnRecordVersion)).one()
    assert old.version == 1 and "2025-02-04" in old.modified
    doc["cveMetadata"]["dateUpdated"] = "2024-01-01T00:00:00.000Z"   # older than held: not applied
    doc["containers"]["cna"]["title"] = "stale"
    assert svc.import_document(session, json.dumps(doc).encode(), "x", now).stale == 1
    assert session.scalars(select(VulnRecord)).one().title == "Log4Shell (updated)"


def test_bad_documents_are_quarantined_whole(session):
    page = json.loads((SAMPLES / "nvd-page.json").read_bytes())
    page["vulnerabilities"][1]["cve"]["id"] = "CVE-XX"
    rep = svc.import_document(session, json.dumps(page).encode(), "page-1.json", START)
    assert rep.quarantined == 1 and "CVE-XX" in rep.reasons[0]
    assert session.scalar(select(func.count()).select_from(VulnRecord)) == 0   # not half-imported
    q = session.scalars(select(VulnQuarantine)).one()
    assert q.name == "page-1.json" and "is not a CVE id" in q.reason and "CVE-2021-41773" in q.raw


def test_zip_bomb_refused_before_anything_is_stored(session, tmp_path):
    z = tmp_path / "delta.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("deltaCves/CVE-2021-44228.json", (SAMPLES / "CVE-2021-44228.json").read_bytes())
        zf.writestr("deltaCves/CVE-2021-0001.json", b" " * (4 * 1024 * 1024))
    with pytest.raises(IntakeError, match="zip bomb"):
        svc.import_path(session, z, START)
    assert session.scalar(select(func.count()).select_from(VulnRecord)) == 0


def test_kev_and_epss(session):
    assert svc.import_kev(session, (SAMPLES / "kev.json").read_bytes(), START) == 2
    assert svc.import_kev(session, (SAMPLES / "kev.json").read_bytes(), START) == 2   # upsert
    assert session.get(VulnKev, "CVE-2021-44228").ransomware == "Known"
    assert svc.import_epss(session, (SAMPLES / "epss.csv").read_text(), START) == 4
    assert session.get(VulnEpss, "CVE-2021-41773").epss == pytest.approx(0.94401)


def test_match_findings_vex_false_positive_and_tenancy(session):
    a, b, assets = _inventory(session)
    for name in ("nvd-page.json", "GHSA-35jh-r3h4-6jhm.json"):
        svc.import_document(session, (SAMPLES / name).read_bytes(), name, START)
    s1 = svc.run_match(session, START)
    got = {(f.asset_id, f.vuln_id) for f in session.scalars(select(VulnFinding))}
    assert got == {(assets[0].id, "CVE-2021-41773"), (assets[1].id, "CVE-2021-23337"),
                   (assets[2].id, "CVE-2021-41773")}
    assert len(s1.new) == 3
    # the vendor's VEX arrives as a delta: the gateway's finding is no longer matched on a full run
    rep = svc.import_document(session, (SAMPLES / "acme-vex-2021-41773.json").read_bytes(), "vex.json", START)
    later = START + timedelta(hours=1)
    assert svc.run_match(session, later, record_keys=rep.keys).new == []
    s3 = svc.run_match(session, later)
    assert s3.closed == 1 and s3.suppressed_by_vex == 1
    # an operator marks its finding a false positive, with a reason; it stays so after re-matching
    op_a = Principal(user_id=99, email="op@a", role=Role.CONSTITUENT, org_ids=frozenset({a}))
    f = session.scalars(select(VulnFinding).where(VulnFinding.asset_id == assets[1].id)).one()
    with pytest.raises(Invalid, match="reason"):
        svc.set_status(session, op_a, f.id, "false_positive", " ", later)
    svc.set_status(session, op_a, f.id, "false_positive", "lodash is vendored but template() is never called", later)
    svc.run_match(session, later + timedelta(hours=1))
    session.refresh(f)
    assert f.status == "false_positive" and f.matched
    assert [x.vuln_id for x in svc.open_findings(session, op_a)] == ["CVE-2021-41773"]
    # another tenant's finding answers NotFound
    fb = session.scalars(select(VulnFinding).where(VulnFinding.org_id == b)).one()
    with pytest.raises(NotFound):
        svc.set_status(session, op_a, fb.id, "mitigated", "", later)
