"""Every sample feed through the whole pipeline into the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.db import make_sessionmaker
from commonwatch.pipeline.demo import sample_inputs, samples_dir
from commonwatch.pipeline.models import IngestRun, QuarantinedRecord
from commonwatch.pipeline.rematch import rematch
from commonwatch.pipeline.runner import load_references
from tests.pipeline.helpers import count_events, events, ingest, seed_registry

#: sample -> (events, quarantined) the file must give
EXPECTED = {"threatfox.json": (3, 1), "openphish.txt": (4, 0), "spamhaus-drop.txt": (2, 0),
            "urlhaus.csv": (4, 0), "feodotracker.json": (2, 0), "intelmq.jsonl": (3, 0),
            "generic-c2.csv": (2, 0), "2026-11-24-scan_http-asn-region-geo.csv": (7, 0),
            "2026-11-24-event4_sinkhole-asn-region-geo.csv": (8, 0)}


@pytest.mark.parametrize(("path", "feed"), sample_inputs(), ids=lambda v: getattr(v, "name", v))
def test_every_sample_becomes_events(any_engine, clock, path, feed):
    seed_registry(any_engine, clock)
    run = ingest(any_engine, path, feed, clock)
    assert run.status == "done", run.error
    assert run.events_stored > 0
    assert run.rows_read == run.events_stored + run.duplicates + run.quarantined
    if path.name in EXPECTED:
        assert (run.events_stored, run.quarantined) == EXPECTED[path.name]
    stored = events(any_engine, batch_id=run.run_id)
    assert len(stored) == run.events_stored
    for ev in stored:
        assert ev.classification_taxonomy and ev.classification_type and ev.severity and ev.gbt_category
        assert ev.time_source.tzinfo is not None


def test_matching_routing_and_severity(any_engine, clock):
    orgs = seed_registry(any_engine, clock)
    ingest(any_engine, samples_dir() / "2026-11-24-scan_rdp-asn-region-geo.csv", "shadowserver", clock)
    by_ip = {e.source_ip: e for e in events(any_engine)}
    # 203.0.113.70 is in the grid's /25 and, more specifically, its dispatch centre's /26.
    assert by_ip["203.0.113.70"].org_id == orgs["dispatch"]
    assert by_ip["203.0.113.70"].constituent_cii is True
    assert by_ip["203.0.113.70"].constituent_sector == "energy"
    # open RDP: vulnerable-system (low), raised for remote administration and again for CII.
    assert by_ip["203.0.113.70"].severity == "high"
    assert by_ip["198.51.100.14"].org_id == orgs["telecom"]
    assert by_ip["198.51.100.14"].severity == "medium"
    assert by_ip["198.51.100.14"].source_ip_bin == bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 14])
    # A host in Germany goes to the partner CERT registered for DE, no constituent.
    abroad = by_ip["185.220.101.5"]
    assert abroad.org_id is None and abroad.partner_org_id == orgs["partner_de"]
    assert abroad.classification_taxonomy == "vulnerable" and abroad.gbt_category == "SHE"


def test_ipv6_asn_and_domain_matching(any_engine, clock):
    orgs = seed_registry(any_engine, clock)
    ingest(any_engine, samples_dir() / "generic-c2.csv", f"generic:{samples_dir() / 'generic-c2.yaml'}", clock)
    ingest(any_engine, samples_dir() / "threatfox.json", "threatfox", clock)
    by = {(e.source_ip or e.source_fqdn): e for e in events(any_engine)}
    assert by["2001:db8:100::25"].org_id == orgs["telecom"]
    assert by["login.demobank.example"].org_id == orgs["bank"]  # domain suffix
    assert by["dispatch.eastgrid.example"].org_id == orgs["dispatch"]  # the longer registered domain
    assert by["dispatch.eastgrid.example"].severity == "critical"  # c2-server (high) on a CII operator


def test_reingest_stores_each_event_once(any_engine, clock):
    seed_registry(any_engine, clock)
    path = samples_dir() / "2026-11-24-event4_sinkhole-asn-region-geo.csv"
    first = ingest(any_engine, path, "shadowserver", clock)
    clock.advance(timedelta(hours=3))
    second = ingest(any_engine, path, "shadowserver", clock)
    assert first.events_stored == 8 and second.events_stored == 0
    assert second.duplicates == second.rows_read == 8
    assert count_events(any_engine) == 8


def test_each_run_is_recorded_and_audited_once(any_engine, clock):
    seed_registry(any_engine, clock)
    run = ingest(any_engine, samples_dir() / "threatfox.json", "threatfox", clock)
    factory = make_sessionmaker(any_engine)
    with factory() as session:
        stored = session.get(IngestRun, run.run_id)
        assert (stored.status, stored.events_stored, stored.quarantined) == ("done", 3, 1)
        acts = session.scalars(select(AuditEntry).where(AuditEntry.action == "ingest",
                                                        AuditEntry.entity_id == str(run.run_id))).all()
        assert len(acts) == 1 and '"events_stored": 3' in acts[0].after
        assert session.scalar(select(AuditEntry).where(AuditEntry.entity == "events")) is None
        q = session.scalars(select(QuarantinedRecord)).one()
        assert q.run_id == run.run_id and q.line == 4 and "d41d8cd98f00b204e9800998ecf8427e" in q.raw
        assert "no source.ip" in q.reason


def test_dedup_window(any_engine, clock, tmp_path):
    seed_registry(any_engine, clock)
    f = tmp_path / "2026-11-24-scan_telnet-x.csv"
    f.write_text('"timestamp","ip","port","tag"\n"2026-11-24 01:00:00","198.51.100.5",23,"telnet"\n'
                 '"2026-11-24 09:00:00","198.51.100.5",23,"telnet"\n"2026-11-25 01:00:00","198.51.100.5",23,"telnet"\n')
    run = ingest(any_engine, f, "shadowserver", clock)
    assert (run.events_stored, run.duplicates) == (2, 1)  # one per day
    exact = ingest(any_engine, f, "shadowserver", clock, window=timedelta(0))
    assert exact.events_stored == 3  # exact-time keys are other keys


def test_rematch_after_registry_change(any_engine, clock):
    from commonwatch.constituency import services as registry
    from commonwatch.constituency.models import Organisation
    from commonwatch.db import session_scope

    seed_registry(any_engine, clock, skip=("gov",))
    ingest(any_engine, samples_dir() / "2026-11-24-scan_ntp-asn-region-geo.csv", "shadowserver", clock)
    gov_hosts = [e for e in events(any_engine) if e.source_ip.startswith("192.0.2.")]
    assert gov_hosts and all(e.org_id is None for e in gov_hosts)
    factory = make_sessionmaker(any_engine)
    with session_scope(factory, actor="test") as session:
        org = registry.create_org(session, {"name": "Demo City Data Bureau", "kind": "cii-operator",
                                            "sector": "e-government", "country": "CN"})
        registry.add_network(session, org, "192.0.2.0/24")
        gov_id = org.id
    refs = load_references(any_engine, factory, None)
    result = rematch(any_engine, factory, refs, clock.now() - timedelta(days=30), clock=clock)
    assert result.changed == len(gov_hosts)
    for e in events(any_engine):
        if e.source_ip.startswith("192.0.2."):
            assert e.org_id == gov_id and e.constituent_cii and e.constituent_sector == "e-government"
    again = rematch(any_engine, factory, refs, clock.now() - timedelta(days=30), clock=clock)
    assert again.changed == 0 and again.examined == result.examined
    with factory() as session:
        assert session.get(Organisation, gov_id) is not None
