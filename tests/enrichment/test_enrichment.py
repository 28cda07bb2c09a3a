"""Enrichment from operator files made in the test: a real MMDB (written with the format itself),
an iptoasn TSV and a RIR delegated-extended file; loaded, then applied by the enrich stage."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from commonwatch.access.models import AuditEntry
from commonwatch.constituency.index import parse_ips
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.enrichment.models import EnrichmentLoad, EnrichmentRange
from commonwatch.enrichment.readers import detect_kind, read_iptoasn, read_mmdb, read_rir
from commonwatch.enrichment.services import enrich, load_enrichment, load_file
from commonwatch.errors import Invalid
from tests.enrichment.mmdb_writer import write_mmdb

IPTOASN = ("198.51.100.0\t198.51.100.255\t64500\tCN\tNORTHERN-DEMO-TELECOM\n"
           "203.0.113.0\t203.0.113.127\t64501\tCN\tEASTERN-DEMO-GRID\n"
           "100.64.0.0\t100.127.255.255\t0\tNone\tNot routed\n"
           "2001:db8:100::\t2001:db8:100:ffff:ffff:ffff:ffff:ffff\t64500\tCN\tNORTHERN-DEMO-TELECOM\n")
RIR = ("2|apnic|20261124|5|19830613|20261123|+1000\n"
       "apnic|*|ipv4|*|3|summary\n"
       "apnic|CN|ipv4|198.51.100.0|256|20100101|allocated|A1\n"
       "apnic|SG|ipv4|103.252.118.0|512|20150101|assigned|A2\n"
       "apnic||ipv4|192.0.2.0|256||available|\n"
       "apnic|DE|ipv6|2001:db8:200::|48|20120101|allocated|A3\n"
       "apnic|CN|asn|64500|1|20100101|allocated|A1\n")


@pytest.fixture
def files(tmp_path):
    mmdb = tmp_path / "GeoLite2-ASN-test.mmdb"
    write_mmdb(mmdb, {"198.51.100.0/25": {"autonomous_system_number": 64999,
                                         "autonomous_system_organization": "MORE-SPECIFIC-FROM-MMDB"},
                      "185.220.101.0/24": {"autonomous_system_number": 64510,
                                           "autonomous_system_organization": "DEMO-DE-HOSTING",
                                           "country": {"iso_code": "de"}}})
    tsv = tmp_path / "ip2asn-combined.tsv"
    tsv.write_text(IPTOASN)
    rir = tmp_path / "delegated-apnic-extended-latest"
    rir.write_text(RIR)
    return mmdb, tsv, rir


def test_readers(files):
    mmdb, tsv, rir = files
    assert [detect_kind(p) for p in files] == ["mmdb", "iptoasn", "rir"]
    m = read_mmdb(mmdb).frame
    assert m["asn"].to_list() == [64510, 64999] and m["cc"].to_list() == ["DE", None]  # tree order
    t = read_iptoasn(tsv)
    assert t.frame.height == 3 and t.skipped == 1  # AS 0, not routed
    r = read_rir(rir)
    assert sorted(r.frame["cc"].to_list()) == ["CN", "DE", "SG"]


def test_load_and_enrich(any_engine, clock, files):
    mmdb, tsv, rir = files
    factory = make_sessionmaker(any_engine)
    with session_scope(factory, actor="test") as session:
        session.info["clock"] = clock
        for path in files:
            load_file(session, path, now=clock.now())
        again = load_file(session, tsv, now=clock.now())  # a reload replaces, never adds
        assert again.ranges == 3
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(EnrichmentRange)) == 2 + 3 + 3
        assert session.scalar(select(func.count()).select_from(EnrichmentLoad)) == 4
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "enrichment.load")) == 4
        index = load_enrichment(session)
    frame = pl.DataFrame({"source.ip": ["198.51.100.7", "198.51.100.200", "203.0.113.9", "185.220.101.4",
                                        "103.252.119.1", "2001:db8:100::9", "2001:db8:200::1", "8.8.4.4"],
                          "source.asn": [None, None, 65000, None, None, None, None, None]},
                         schema_overrides={"source.asn": pl.Int64})
    out = enrich(frame, index, parse_ips(frame["source.ip"]))
    rows = out.select("source.asn", "source.as_name", "source.geolocation.cc").rows()
    assert rows[0] == (64999, "MORE-SPECIFIC-FROM-MMDB", "CN")  # the /25 from MMDB beats the /24; RIR gives CN
    assert rows[1] == (64500, "NORTHERN-DEMO-TELECOM", "CN")
    assert rows[2] == (65000, "EASTERN-DEMO-GRID", "CN")  # what the feed said is kept
    assert rows[3] == (64510, "DEMO-DE-HOSTING", "DE")
    assert rows[4] == (None, None, "SG")  # inside the RIR's 512-address block
    assert rows[5] == (64500, "NORTHERN-DEMO-TELECOM", "CN")
    assert rows[6] == (None, None, "DE")
    assert rows[7] == (None, None, None)


def test_bad_files_are_refused(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 nothing here")
    with pytest.raises(Invalid, match="is not an MMDB, iptoasn TSV or RIR"):
        detect_kind(junk)
    fake = tmp_path / "fake.mmdb"
    fake.write_bytes(b"\xab\xcd\xefMaxMind.com" + b"\x00" * 10)
    with pytest.raises(Invalid, match="not a readable MMDB"):
        read_mmdb(fake)


def test_cli_load_and_status(settings, engine, clock, files):
    from commonwatch.cli import app
    from commonwatch.runtime import Runtime, set_runtime

    rt = Runtime(settings, clock)
    set_runtime(rt)
    try:
        result = CliRunner().invoke(app, ["enrichment", "load", str(files[1])])
        assert result.exit_code == 0, result.output
        assert "loaded 3 range(s) of kind iptoasn" in result.output
        status = CliRunner().invoke(app, ["enrichment", "status"])
        assert "iptoasn" in status.output and "ip2asn-combined.tsv" in status.output
        bad = CliRunner().invoke(app, ["enrichment", "load", str(files[1]), "--kind", "nonsense"])
        assert bad.exit_code == 1
    finally:
        set_runtime(None)
