"""Parsers on real-format files: field mapping, Shadowserver report detection and schema
refresh, the generic mapping, and hypothesis fuzzing (never a crash, every line accounted for)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from commonwatch.errors import Invalid
from commonwatch.feeds.base import LINE, Source
from commonwatch.feeds.registry import get_parser, list_parsers
from commonwatch.feeds.shadowserver import load_schema, report_from_header, report_from_name, update_schema
from commonwatch.pipeline.demo import samples_dir

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def parse(feed: str, data: bytes, name: str = "input.csv", data_dir=None):
    src = Source(name, io.BufferedReader(io.BytesIO(data)), NOW)
    return list(get_parser(feed, data_dir).parse(src))


def parse_sample(feed: str, file: str):
    return parse(feed, (samples_dir() / file).read_bytes(), file)


def test_feed_names_on_the_command_line():
    names = {p.name for p in list_parsers()}
    assert {"shadowserver", "urlhaus", "feodotracker", "threatfox", "spamhaus-drop", "spamhaus-edrop", "openphish",
            "phishtank", "intelmq", "generic:MAPPING_FILE"} <= names
    with pytest.raises(Invalid, match="unknown feed nope; known feeds: shadowserver"):
        get_parser("nope")


def test_at_least_ten_shadowserver_reports_across_the_families():
    reports = load_schema()
    assert len(reports) >= 10
    for family in ("scan_http", "scan_rdp", "scan_smb", "scan_ssl", "scan_telnet", "scan_ntp", "scan_dns",
                   "event4_sinkhole", "event4_honeypot_brute_force", "compromised_website", "blocklist", "device_id"):
        assert family in reports


def test_shadowserver_scan_http_fields():
    [batch] = parse_sample("shadowserver", "2026-11-24-scan_http-asn-region-geo.csv")
    f = batch.frame
    assert f.height == 7 and not batch.bad and not batch.notes
    row = f.row(0, named=True)
    assert row["time.source"] == "2026-11-24 00:10:00" and row["source.ip"] == "198.51.100.10"
    assert row["source.port"] == "80" and row["source.asn"] == "64500" and row["source.geolocation.cc"] == "CN"
    assert row["classification.identifier"] == "accessible-http" and row["protocol.application"] == "http"
    assert row["feed.name"] == "shadowserver-scan_http" and row["extra.server"] == "nginx/1.18.0"
    assert row[LINE] == 2


def test_report_type_from_name_and_header():
    reports = load_schema()
    assert report_from_name("2026-11-24-event4_sinkhole_http-asn-region-geo.csv", reports) == "event4_sinkhole_http"
    assert report_from_name("/x/reports.zip!2026-11-24-scan_rdp-geo.csv", reports) == "scan_rdp"
    assert report_from_name("scan_smb.csv", reports) == "scan_smb"
    header = ["timestamp", "src_ip", "src_port", "src_asn", "src_geo", "dst_ip", "dst_port", "infection", "login",
              "password"]
    assert report_from_header(header, reports) == "event4_honeypot_brute_force"
    data = (samples_dir() / "2026-11-24-scan_rdp-asn-region-geo.csv").read_bytes()
    [batch] = parse("shadowserver", data, "download.csv")
    assert batch.frame["classification.identifier"][0] == "open-rdp"
    assert any("recognised from the header" in n for n in batch.notes)


def test_unknown_report_type_keeps_every_column_and_says_so():
    data = b'"timestamp","ip","port","quantum_flux","widget"\n"2026-11-24 01:00:00","198.51.100.1",9,"hi","w"\n'
    [batch] = parse("shadowserver", data, "2026-11-24-scan_quantum-asn-geo.csv")
    row = batch.frame.row(0, named=True)
    assert row["source.ip"] == "198.51.100.1" and row["extra.quantum_flux"] == "hi" and row["extra.widget"] == "w"
    assert row["classification.identifier"] == "scan_quantum"
    assert batch.notes == ["unknown report type scan_quantum: generic mapping, 2 column(s) kept under extra.*"]


def test_update_schema_from_shadowserver_json(tmp_path):
    schema = json.loads((samples_dir().parent / "data" / "shadowserver-schema.json").read_text())
    schema["scan_quantum"] = {"feed_name": "Accessible-Quantum", "file_name": "scan_quantum",
                              "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"],
                                                  ["source.ip", "ip"]],
                              "optional_fields": [["source.port", "port"], ["extra.", "quantum_flux"]],
                              "constant_fields": {"classification.identifier": "accessible-quantum",
                                                  "classification.taxonomy": "vulnerable",
                                                  "classification.type": "vulnerable-system"}}
    schema["scan_http"]["optional_fields"].append(["extra.", "http_new_column"])
    new = tmp_path / "schema.json"
    new.write_text(json.dumps(schema))
    target, added, changed = update_schema(new, tmp_path / "data")
    assert added == ["scan_quantum"] and changed == ["scan_http"] and target.is_file()
    data = b'"timestamp","ip","port","quantum_flux"\n"2026-11-24 01:00:00","198.51.100.1",9,"hi"\n'
    [batch] = parse("shadowserver", data, "2026-11-24-scan_quantum-asn-geo.csv", data_dir=tmp_path / "data")
    assert batch.frame["classification.identifier"][0] == "accessible-quantum" and not batch.notes
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"scan_x": {"required_fields": [["source.ip"]]}}))
    with pytest.raises(Invalid, match="scan_x: required_fields entry 1"):
        update_schema(broken, tmp_path / "data")
    assert load_schema(tmp_path / "data")["scan_quantum"]  # the good copy is still in place


def test_abusech_spamhaus_phishing_intelmq():
    [u] = parse_sample("urlhaus", "urlhaus.csv")
    assert u.frame["source.url"][1] == "http://files.eastgrid.example/update/setup.exe"
    assert u.frame["classification.type"][0] == "malware-distribution" and u.frame[LINE][0] == 8
    [fc] = parse_sample("feodotracker", "feodotracker.csv")
    assert fc.frame["source.ip"].to_list() == ["198.18.0.20", "203.0.113.6", "103.252.118.9"]
    assert fc.frame["malware.name"][0] == "QakBot"
    [fj] = parse_sample("feodotracker", "feodotracker.json")
    assert fj.frame["source.asn"][0] == "64502" and fj.frame["source.port"][1] == "2222"
    [tf] = parse_sample("threatfox", "threatfox.json")
    rows = tf.frame.select("source.ip", "source.port", "source.fqdn", "source.url", "classification.type").rows()
    assert rows[0] == ("198.51.100.13", "4444", None, None, "c2-server")
    assert rows[1][2] == "login.demobank.example" and rows[1][4] == "malware-distribution"
    assert rows[2][3] == "http://dispatch.eastgrid.example/gate.php"
    [d] = parse_sample("spamhaus-drop", "spamhaus-drop.txt")
    assert d.frame["extra.source.network"].to_list() == ["192.0.2.0/26", "203.0.113.128/25"]
    assert d.frame["source.ip"].to_list() == ["192.0.2.0", "203.0.113.128"] and d.frame["extra.sblid"][0] == "SBL600001"
    [o] = parse_sample("openphish", "openphish.txt")
    assert o.frame.height == 4 and o.frame["time.source"][0] == NOW.isoformat()
    [pc] = parse_sample("phishtank", "phishtank.csv")
    assert pc.frame["event_description.target"][1] == "Demo Commercial Bank"
    [pj] = parse_sample("phishtank", "phishtank.json")
    assert pj.frame["source.ip"][0] == "192.0.2.30"
    [im] = parse_sample("intelmq", "intelmq.jsonl")
    assert im.frame["feed.name"][0] == "Partner CERT drones" and im.frame["tlp"][0] == "GREEN"
    assert "raw" not in im.frame.columns and im.frame["extra.count"][2] == "3"


def test_generic_mapping(tmp_path):
    [g] = parse("generic:" + str(samples_dir() / "generic-c2.yaml"), (samples_dir() / "generic-c2.csv").read_bytes())
    assert g.frame["source.ip"].to_list() == ["198.51.100.11", "2001:db8:100::25"]
    assert g.frame["feed.name"][0] == "demo-partner-c2" and g.frame["extra.confidence"][0] == "high"
    bad = tmp_path / "m.yaml"
    bad.write_text("name: x\ncolumns:\n  ip: source.nonsense_field_that_is_fine\n  when: not.a.field\n")
    with pytest.raises(Invalid, match="when: not.a.field is not a known field"):
        get_parser(f"generic:{bad}")
    with pytest.raises(Invalid, match="does not exist"):
        get_parser(f"generic:{tmp_path / 'missing.yaml'}")


# --- fuzzing -----------------------------------------------------------------------------------------------

CSV_FEEDS = ("shadowserver", "urlhaus", "phishtank")
#: Unicode white space as the parsers strip it (Python also counts \x1c-\x1f as space; they are data).
WS = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in "\x1c\x1d\x1e\x1f")


def blank(line: str) -> bool:
    return not line.strip(WS)
cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(cell, min_size=0, max_size=9), min_size=0, max_size=15), st.sampled_from(CSV_FEEDS),
       st.sampled_from(["utf-8", "gb18030", "utf-16"]))
@example(rows=[["#"]], feed="urlhaus", encoding="utf-8")
def test_fuzz_csv_feeds_account_for_every_line(rows, feed, encoding):
    header = "timestamp,ip,port,hostname,tag,asn,geo,url,dateadded"
    body = "\n".join(",".join(r) for r in rows)
    data = (header + "\n" + body + "\n").encode(encoding, errors="replace")
    batches = parse(feed, data, "2026-11-24-scan_telnet-fuzz.csv")
    records = sum(b.frame.height + len(b.bad) for b in batches)
    text = data.decode(encoding, errors="replace").lstrip("\ufeff")
    # abuse.ch lists start their comment lines with "#" (after spaces or tabs, as IntelMQ reads them).
    lines = [ln for ln in text.split("\n")[1:]
             if not blank(ln) and not (feed == "urlhaus" and ln.lstrip(" \t").startswith("#"))]
    assert records == len(lines)
    for b in batches:
        assert all(isinstance(x.reason, str) and x.reason for x in b.bad)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.sampled_from(["shadowserver", "urlhaus", "feodotracker", "threatfox",
                                                  "spamhaus-drop", "openphish", "phishtank", "intelmq"]))
def test_fuzz_any_bytes_never_crash(data, feed):
    try:
        batches = parse(feed, data)
    except Invalid as exc:  # a whole document that is not JSON: a clear reason, never a crash
        assert str(exc)
        return
    for b in batches:
        assert LINE in b.frame.columns or b.frame.is_empty()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.dictionaries(st.sampled_from(["source.ip", "time.source", "source.port", "x"]),
                                          st.one_of(st.text(max_size=10), st.integers(), st.none()), max_size=4),
                          st.text(max_size=15)), max_size=10))
def test_fuzz_intelmq_lines(items):
    lines = [json.dumps(i) if isinstance(i, dict) else i.replace("\n", " ") for i in items]
    data = "\n".join(lines).encode()
    batches = parse("intelmq", data)
    try:  # one JSON array is read as an array of events: each item is a record
        whole = json.loads(data)
    except ValueError:
        whole = None
    expected = len(whole) if isinstance(whole, list) and data.lstrip()[:1] == b"[" else \
        len([ln for ln in lines if not blank(ln)])
    assert sum(b.frame.height + len(b.bad) for b in batches) == expected
