"""Fidelity against other people's data (issue 14, items 1-7): IntelMQ events as IntelMQ writes
them, abuse.ch/Spamhaus/PhishTank files placed field by field as IntelMQ's parsers place them, and
the Shadowserver report types of Shadowserver's published schema. Every sample is written here in
the real format, with documentation addresses."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from commonwatch.events.schema import INTELMQ_FIELDS
from commonwatch.feeds.base import LINE, Source
from commonwatch.feeds.generic import load_mapping
from commonwatch.feeds.registry import get_parser
from commonwatch.feeds.shadowserver import load_schema, report_from_name, update_schema
from commonwatch.pipeline.demo import samples_dir
from commonwatch.pipeline.stages import parse_time_series, strip_control_chars

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def parse(feed: str, data: bytes, name: str = "input", data_dir=None):
    src = Source(name, io.BufferedReader(io.BytesIO(data)), NOW)
    return list(get_parser(feed, data_dir).parse(src))


def one_frame(batches) -> pl.DataFrame:
    return pl.concat([b.frame for b in batches], how="diagonal")


# IntelMQ events as its file output bot writes them (one per line) and as its API/JSON exports
# write them (one array); ``time.source`` is optional in IntelMQ's harmonisation.
EVENT_WITH_SOURCE_TIME = {
    "__type": "Event", "feed.accuracy": 100.0, "feed.name": "Demo Sinkhole", "feed.provider": "Demo CERT",
    "time.source": "2026-11-24T08:00:00+00:00", "time.observation": "2026-11-24T09:00:00+00:00",
    "source.ip": "198.51.100.20", "source.port": 4431, "classification.taxonomy": "malicious-code",
    "classification.type": "infected-system", "malware.name": "qakbot",
    "event_description.text": "Connection to a sinkholed C2 domain", "source.geolocation.city": "Hangzhou",
    "extra.seen_by": "sensor-3", "raw": "c2lua2hvbGU=",
}
EVENT_WITHOUT_SOURCE_TIME = {
    "__type": "Event", "feed.name": "Demo Scanner", "time.observation": "2026-11-24T09:30:00+00:00",
    "source.ip": "198.51.100.21", "classification.taxonomy": "vulnerable",
    "classification.type": "vulnerable-system", "classification.identifier": "open-redis", "raw": "cmVkaXM=",
}


def test_intelmq_event_without_time_source_is_dated_by_time_observation():
    lines = "\n".join(json.dumps(e) for e in (EVENT_WITH_SOURCE_TIME, EVENT_WITHOUT_SOURCE_TIME)) + "\n"
    [batch] = parse("intelmq", lines.encode())
    assert batch.frame["time.source"].to_list() == ["2026-11-24T08:00:00+00:00", "2026-11-24T09:30:00+00:00"]
    assert batch.notes == ["1 event(s) without time.source: their time.observation was used"]


def test_intelmq_json_array_reads_like_json_lines_and_drops_type():
    events = [EVENT_WITH_SOURCE_TIME, EVENT_WITHOUT_SOURCE_TIME]
    from_array = one_frame(parse("intelmq", json.dumps(events, indent=2).encode()))
    from_lines = one_frame(parse("intelmq", "\n".join(json.dumps(e) for e in events).encode()))
    assert from_array.height == 2 and from_array[LINE].to_list() == [1, 2]
    assert sorted(from_array.columns) == sorted(from_lines.columns)
    assert not any("__type" in c for c in from_array.columns) and "raw" not in from_array.columns
    assert from_array["event_description.text"][0] == "Connection to a sinkholed C2 domain"
    assert from_array["time.source"][1] == "2026-11-24T09:30:00+00:00"
    [batch] = parse("intelmq", b'\xef\xbb\xbf [' + json.dumps(EVENT_WITH_SOURCE_TIME).encode() + b', 7]')
    assert batch.frame.height == 1 and [(b.line, b.reason) for b in batch.bad] == [(2, "a JSON object was expected")]
    # A broken first line that opens with "[" is JSON lines after all: read line by line.
    broken = parse("intelmq", b'[{"source.ip": \n' + json.dumps(EVENT_WITH_SOURCE_TIME).encode() + b"\n")
    assert [b.line for x in broken for b in x.bad] == [1] and sum(x.frame.height for x in broken) == 1


# Feodo Tracker's JSON blocklist (https://feodotracker.abuse.ch/downloads/ipblocklist.json).
FEODO = [
    {"ip_address": "203.0.113.44", "port": 443, "status": "offline", "hostname": "static-44.demo-isp.example",
     "as_number": 64501, "as_name": "DEMO-ISP", "country": "CN", "first_seen": None, "last_online": "2026-11-20",
     "malware": "Emotet"},
    {"ip_address": "203.0.113.45", "port": 8080, "status": "online", "hostname": None, "as_number": 64501,
     "as_name": "DEMO-ISP", "country": "CN", "first_seen": "2026-11-23 17:12:05", "last_online": "2026-11-24",
     "malware": "QakBot"},
]


def test_feodotracker_without_first_seen_is_dated_by_last_online_and_hostname_is_reverse_dns():
    [batch] = parse("feodotracker", json.dumps(FEODO).encode())
    f = batch.frame
    assert f["time.source"].to_list() == ["2026-11-20", "2026-11-23 17:12:05"]
    assert f["source.reverse_dns"][0] == "static-44.demo-isp.example" and "source.fqdn" not in f.columns
    assert batch.notes == ["1 entr(y/ies) without first_seen: dated by last_online"]


OFFSET_FORMS = [
    "2026-11-24T08:10:00+08", "2026-11-24T08:10:00+0800", "2026-11-24T08:10:00+08:00", "2026-11-24 08:10:00+08",
    "2026-11-24 08:10:00 +0800", "2026-11-24T00:10:00+00", "2026-11-24 00:10:00 +00", "2026-11-24T00:10:00Z",
    "2026-11-24 00:10:00 UTC", "2026-11-24 00:10:00 GMT", "20261124T081000+0800", "20261124T001000Z",
    "2026-11-24T08:10+08:00", "2026-11-23T19:10:00-05", "2026-11-23T19:10:00-0500", "2026-11-23T19:10:00\u221205:00",
    "2026-11-24T08:10:00,000+08", "2026-11-24T00:10:00.000000Z", "2026-11-24 08:10:00.0+08",
]


@pytest.mark.parametrize("text", OFFSET_FORMS)
def test_every_iso_8601_offset_form_is_read(text):
    assert parse_time_series(pl.Series([text])).to_list() == [datetime(2026, 11, 24, 0, 10, tzinfo=UTC)]


def test_a_column_mixing_every_form_is_read_whatever_comes_first():
    forms = list(OFFSET_FORMS)
    for values in (forms, forms[::-1], ["2026-11-24 00:10:00"] * 300 + forms):
        got = parse_time_series(pl.Series(values)).to_list()
        assert set(got) == {datetime(2026, 11, 24, 0, 10, tzinfo=UTC)}, values


def test_dates_without_offsets_are_read_as_before():
    got = parse_time_series(pl.Series(["2026-11-24 00:10:00", "2026-11-24", "1795566600", "not a time"])).to_list()
    assert got == [datetime(2026, 11, 24, 0, 10, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC),
                   datetime(2026, 11, 25, 0, 30, tzinfo=UTC), None]


# --- generic mapping files ------------------------------------------------------------------------------

def test_generic_mapping_takes_every_intelmq_harmonisation_field(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("name: demo-defacements\ncomment: '#'\ncolumns:\n" +
                       "".join(f"  c{i}: {name}\n" for i, name in enumerate(sorted(INTELMQ_FIELDS))))
    load_mapping(mapping)  # no field of IntelMQ's harmonisation is refused


GENERIC_CSV = (
    "  # Demo defacement list, exported 2026-11-24\n"
    "\t# columns: when,ip,page,what\n"
    "when,ip,page,what,ticket\n"
    "   \n"
    "2026-11-24 03:00:00,198.51.100.30,www.demo-gov.example/index.html,defaced front page,RT-1\n"
    "\t \t\n"
    "  # a comment inside the data\n"
    "2026-11-24 03:05:00,198.51.100.31,https://portal.demo-gov.example/,defaced portal,RT-2\n"
)


def test_generic_mapping_event_description_comments_and_url_scheme(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("name: demo-defacements\ncomment: '#'\ncolumns:\n  when: time.source\n  ip: source.ip\n"
                       "  page: source.url\n  what: event_description.text\n  ticket: rtir_id\n")
    [batch] = parse(f"generic:{mapping}", GENERIC_CSV.encode())
    f = batch.frame
    assert not batch.bad and f.height == 2 and f[LINE].to_list() == [5, 8]
    assert f["source.url"].to_list() == ["http://www.demo-gov.example/index.html", "https://portal.demo-gov.example/"]
    assert f["event_description.text"][0] == "defaced front page" and f["rtir_id"][1] == "RT-2"


# --- field placement as IntelMQ's parsers -------------------------------------------------------------

def test_smb_scan_carries_tcp():
    data = (samples_dir() / "2026-11-24-scan_smb-asn-region-geo.csv").read_text()
    header, *rows = data.splitlines()
    cols = header.split(",")
    keep = [i for i, c in enumerate(cols) if c != '"protocol"']  # a report without the protocol column
    text = "\n".join(",".join(line.split(",")[i] for i in keep) for line in [header, *rows[:2]]) + "\n"
    [batch] = parse("shadowserver", text.encode(), "2026-11-24-scan_smb-asn-region-geo.csv")
    assert batch.frame["protocol.transport"].to_list() == ["tcp", "tcp"]


SPAMHAUS_EDROP = (
    "; Spamhaus EDROP List 2026/11/24 - (c) 2026 The Spamhaus Project SLU\n"
    "; https://www.spamhaus.org/drop/edrop.txt\n"
    "; Last-Modified: Tue, 24 Nov 2026 11:30:00 GMT\n"
    "; Expires: Wed, 25 Nov 2026 11:30:00 GMT\n"
    "198.18.32.0/20 ; SBL600101\n"
)


def test_spamhaus_lists_are_dated_by_their_last_modified_line():
    [d] = parse("spamhaus-drop", (samples_dir() / "spamhaus-drop.txt").read_bytes())
    assert d.frame["time.source"].unique().to_list() == ["2026-11-24T06:00:00+00:00"] and not d.notes
    [e] = parse("spamhaus-edrop", SPAMHAUS_EDROP.encode())
    assert e.frame["time.source"].to_list() == ["2026-11-24T11:30:00+00:00"]
    undated = "\n".join(line for line in SPAMHAUS_EDROP.splitlines() if "Last-Modified" not in line)
    u = parse("spamhaus-edrop", undated.encode())
    assert one_frame(u)["time.source"].to_list() == [NOW.isoformat()]
    assert [n for b in u for n in b.notes] == ["the list gives no date of its own: dated by the fetch"]


def test_spamhaus_json_lines_are_dated_by_their_metadata_record():
    # drop_v4.json: one record per block, then a metadata record with the list's Unix time.
    text = ('{"cidr":"198.18.32.0/20","sblid":"SBL600101","rir":"apnic"}\n'
            '{"cidr":"203.0.113.0/24","sblid":"SBL600102","rir":"apnic"}\n'
            '{"type":"metadata","timestamp":1795519800,"size":118,"records":2,'
            '"copyright":"(c) 2026 The Spamhaus Project SLU","terms":"https://www.spamhaus.org/drop/terms/"}\n')
    [b] = parse("spamhaus-drop", text.encode())
    assert b.frame["time.source"].to_list() == ["1795519800", "1795519800"] and not b.notes
    assert "extra.type" not in b.frame.columns and "extra.timestamp" not in b.frame.columns
    assert parse_time_series(b.frame["time.source"])[0] == datetime(2026, 11, 24, 11, 30, tzinfo=UTC)


def test_phishtank_details_give_network_and_asn():
    [batch] = parse("phishtank", (samples_dir() / "phishtank.json").read_bytes())
    row = batch.frame.row(0, named=True)
    assert (row["source.ip"], row["source.network"], row["source.asn"], row["source.geolocation.cc"]) == \
        ("192.0.2.30", "192.0.2.0/24", "64496", "CN")
    assert row["event_description.target"] == "Microsoft"
    assert row["event_description.url"] == "http://www.phishtank.com/phish_detail.php?phish_id=8800003"


# --- control characters ---------------------------------------------------------------------------------

def test_control_characters_are_stripped_columnar():
    frame = pl.DataFrame({"source.fqdn": ["demo\x00.example", "ok.example", "tab\there.example"],
                          "extra.banner": ["SSH-2.0\x00\x07\r\nline two\tend", None, "clean"],
                          "raw.line": [1, 2, 3]})
    out, found = strip_control_chars(frame)
    assert out["source.fqdn"].to_list() == ["demo.example", "ok.example", "tabhere.example"]
    assert out["extra.banner"].to_list() == ["SSH-2.0\r\nline two\tend", None, "clean"]
    assert found == {"source.fqdn": 2, "extra.banner": 1}


# --- Shadowserver's published report types ------------------------------------------------------------

REPORTS = {
    # Shadowserver's published CSV columns, in their order, and one row of our own.
    "scan_rsync": ('"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","naics",'
                   '"hostname_source","sector","module","motd","has_password"\n'
                   '"2026-11-24 01:02:03","198.51.100.40","tcp",873,,"rsync",64500,"CN","BEIJING","BEIJING",'
                   '517311,,"Communications","backup","welcome",false\n', "accessible-rsync", "extra.module"),
    "scan_adb": ('"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","naics",'
                 '"hostname_source","sector","name","model","device","features"\n'
                 '"2026-11-24 01:02:03","198.51.100.41","tcp",5555,,"adb",64500,"CN","BEIJING","BEIJING",0,,,'
                 '"demo_tv","DTV-1","demotv","shell_v2"\n', "accessible-adb", "extra.model"),
    "scan_ldap_tcp": ('"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","naics",'
                      '"hostname_source","sector","dns_host_name","is_synchronized"\n'
                      '"2026-11-24 01:02:03","198.51.100.42","tcp",389,,"ldap-tcp",64500,"CN","BEIJING",'
                      '"BEIJING",0,,,"dc1.corp.demo.example","TRUE"\n', "open-ldap", "source.local_hostname"),
    "scan_cisco_smart_install": ('"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city",'
                                 '"naics","hostname_source","sector"\n'
                                 '"2026-11-24 01:02:03","198.51.100.43","tcp",4786,,"cisco-smart-install",64500,'
                                 '"CN","BEIJING","BEIJING",0,,\n', "accessible-cisco-smart-install", "extra.tag"),
}


@pytest.mark.parametrize("report", sorted(REPORTS))
def test_published_shadowserver_reports_have_their_own_mapping(report):
    text, identifier, field = REPORTS[report]
    [batch] = parse("shadowserver", text.encode(), f"2026-11-24-{report}-asn-region-geo.csv")
    row = batch.frame.row(0, named=True)
    assert not batch.notes and not batch.bad  # no generic fallback
    assert row["classification.identifier"] == identifier and row["source.ip"].startswith("198.51.100.")
    assert row[field] is not None and row["feed.name"] == f"shadowserver-{report}"


def test_cisco_smart_install_files_by_their_old_name_find_the_report():
    assert report_from_name("2026-11-24-cisco_smart_install-asn-geo.csv", load_schema()) == "scan_cisco_smart_install"


def test_update_schema_into_a_file_keeping_existing_reports(tmp_path):
    target = tmp_path / "shipped.json"
    target.write_text(json.dumps({"scan_http": {
        "feed_name": "Accessible-HTTP", "file_name": "scan_http",
        "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"], ["source.ip", "ip"]],
        "optional_fields": [["extra.", "server"]], "constant_fields": {"classification.identifier": "ours"}}}))
    published = tmp_path / "published.json"
    published.write_text(json.dumps({
        "_meta": {"date_created": "2026-11-20T10:00:00Z", "change_log": ["Added scan_demo."]},
        "scan_http": {"feed_name": "Accessible-HTTP", "file_name": "scan_http",
                      "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"],
                                          ["source.ip", "ip", "validate_ip"]],
                      "optional_fields": [], "constant_fields": {"classification.identifier": "theirs"}},
        "event_demo": {"feed_name": "Demo-Event", "file_name": "event4_demo",
                       "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"],
                                           ["source.ip", "src_ip", "validate_ip"], ["not_in_idf", "severity"]],
                       "optional_fields": [["severity", "severity", "validate_to_none"]],
                       "constant_fields": {"classification.identifier": "demo"}}}))
    path, added, changed = update_schema(published, tmp_path / "data", target=target, keep_existing=True)
    assert path == target and added == ["event4_demo"] and changed == []
    written = json.loads(target.read_text())
    assert written["scan_http"]["constant_fields"] == {"classification.identifier": "ours"}
    assert written["_meta"]["source_meta"]["change_log"] == ["Added scan_demo."]
    assert not (tmp_path / "data" / "feeds").exists()  # the operator's copy is untouched
    _path, _added, changed = update_schema(published, tmp_path / "data", target=target)
    assert changed == ["scan_http"]


# --- every report type of Shadowserver's published schema (issue 14, item 7) ------------------------------

PUBLISHED_REPORTS = Path(__file__).parent / "data" / "shadowserver-published-reports.txt"


def published_report_names() -> list[str]:
    lines = PUBLISHED_REPORTS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_shipped_schema_covers_every_published_report_type():
    names = published_report_names()
    assert len(names) == 170
    shipped = load_schema()
    assert [n for n in names if n not in shipped] == []
    assert "scan_afs" in shipped  # commonwatch's own: the published schema has no AFS report


def test_every_shipped_report_has_a_classification_the_taxonomy_knows():
    from commonwatch.rules import load_rules

    known = {t["type"] for t in load_rules("taxonomy.yaml")["types"]}
    reports = load_schema()
    for name, report in reports.items():
        assert report.constants.get("classification.type") in known, name
        assert report.constants.get("classification.identifier"), name
        # commonwatch's own placement: no IntelMQ-only names, no classification from a column
        assert not any(f.startswith(("extra.source.", "extra.destination.", "classification.")) or f == "severity"
                       for f in report.mapping.values()), name


def _row_for(columns: list[str]) -> str:
    sample = {"timestamp": "2026-11-24 01:02:03", "ip": "198.51.100.50", "src_ip": "198.51.100.51",
              "port": "443", "src_port": "51000", "asn": "64500", "src_asn": "64500", "geo": "CN", "src_geo": "CN",
              "protocol": "tcp", "dst_ip": "203.0.113.9", "dst_port": "80"}
    return ",".join(f'"{sample.get(c, "x-" + c)}"' for c in columns)


#: Shadowserver's published CSV columns (in their order) for the reports the issue names and a sample
#: of the others, with the classification and one field each must fill by its own mapping.
NAMED_AND_SAMPLED = {
    "scan_afs": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,"
                 "sector", "vulnerable-system", "accessible-afs", "source.port"),
    "scan_adb": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,"
                 "sector,name,model,device,features", "vulnerable-system", "accessible-adb", "extra.features"),
    "scan_rsync": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,"
                   "sector,module,motd,has_password", "vulnerable-system", "accessible-rsync", "extra.motd"),
    "scan_ldap_tcp": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,"
                      "sector,device_vendor,dns_host_name,is_synchronized,jarm", "vulnerable-system", "open-ldap",
                      "source.local_hostname"),
    "scan_cisco_smart_install": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,"
                                 "hostname_source,sector", "vulnerable-system", "accessible-cisco-smart-install",
                                 "protocol.transport"),
    "scan_memcached": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,"
                       "sector,version,pid,pointer_size,uptime,time,curr_connections,total_connections,"
                       "response_size,amplification", "vulnerable-system", "open-memcached", "extra.amplification"),
    "scan_elasticsearch": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,"
                           "hostname_source,sector,version,ok,name,cluster_name,http_code,build_hash",
                           "vulnerable-system", "open-elasticsearch", "extra.cluster_name"),
    "scan6_ssh": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,"
                  "sector,serverid_software,banner,hassh", "vulnerable-system", "open-ssh", "extra.hassh"),
    "event6_sinkhole": ("timestamp,protocol,src_ip,src_port,src_asn,src_geo,src_region,src_city,src_hostname,"
                        "src_naics,src_sector,device_vendor,severity,dst_ip,dst_port,dst_asn,dst_geo,public_source,"
                        "infection,family,tag", "infected-system", "sinkhole", "malware.name"),
    "compromised_iot": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,"
                        "hostname_source,sector,device_vendor,family,status,detail,account",
                        "system-compromise", "compromised-iot", "source.account"),
    "population_http_proxy": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,"
                              "hostname_source,sector,http,http_code,via,server", "vulnerable-system",
                              "accessible-http-proxy", "extra.via"),
    "scan_exchange": ("timestamp,severity,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,"
                      "sector,version,servername,url", "vulnerable-system", "vulnerable-exchange-server",
                      "extra.servername"),
}


@pytest.mark.parametrize("report", sorted(NAMED_AND_SAMPLED))
def test_named_and_sampled_reports_parse_with_their_own_mapping(report):
    header, kind, identifier, field = NAMED_AND_SAMPLED[report]
    columns = header.split(",")
    text = header + "\n" + _row_for(columns) + "\n"
    [batch] = parse("shadowserver", text.encode(), f"2026-11-24-{report}-asn-region-geo.csv")
    row = batch.frame.row(0, named=True)
    assert not batch.notes and not batch.bad  # not the generic fallback, nothing missing
    assert row["feed.name"] == f"shadowserver-{report}"
    assert (row["classification.type"], row["classification.identifier"]) == (kind, identifier)
    assert row[field] is not None and row["time.source"] is not None
    assert not (set(columns) - set(load_schema()[report].mapping))  # every column named by the mapping
    assert row.get("extra.severity") is not None or "severity" not in columns


def test_the_old_cisco_smart_install_file_name_reads_with_the_scan_mapping():
    header = "timestamp,ip,protocol,port,hostname,tag,asn,geo,region,city,naics,hostname_source,sector"
    text = header + "\n" + _row_for(header.split(",")) + "\n"
    [batch] = parse("shadowserver", text.encode(), "2026-11-24-cisco_smart_install-asn-geo.csv")
    assert not batch.notes and batch.frame["classification.identifier"][0] == "accessible-cisco-smart-install"


#: A small schema in Shadowserver's published format, written for this test: validators as third
#: elements, IntelMQ-only extra names, Shadowserver's severity, a classification from a column, a
#: column named twice, an http_url path, a report without a classification and an "other" exposure.
PUBLISHED_SAMPLE = {
    "_meta": {"change_log": ["Added scan_quokka."], "date_created": "2026-11-30T10:00:00Z"},
    "scan_quokka": {
        "constant_fields": {"classification.taxonomy": "other", "classification.type": "other",
                            "classification.identifier": "open-quokka", "protocol.application": "quokka"},
        "feed_name": "Open-Quokka", "file_name": "scan_quokka",
        "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"], ["source.ip", "ip", "validate_ip"],
                            ["source.port", "port", "convert_int"]],
        "optional_fields": [["source.network", "ip", "validate_network"], ["severity", "severity", "validate_to_none"],
                            ["extra.source.naics", "naics", "invalidate_zero"], ["extra.", "quokka_mood"],
                            ["product.vulnerabilities", "cve", "validate_to_none"],
                            ["classification.identifier", "tag", "validate_to_none"]],
        "url": "https://www.shadowserver.org/what-we-do/network-reporting/"},
    "event_quokka_sinkhole_http": {
        "constant_fields": {"classification.taxonomy": "malicious-code", "classification.type": "infected-system"},
        "feed_name": "Quokka-Sinkhole-HTTP", "file_name": "event4_quokka_sinkhole_http",
        "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"], ["source.ip", "src_ip"]],
        "optional_fields": [["classification.identifier", "infection", "validate_to_none"],
                            ["malware.name", "infection", "validate_to_none"],
                            ["destination.url", "http_url", "convert_http_host_and_url", True]]},
    "scan_exchange": {"constant_fields": {"protocol.application": "exchange"}, "feed_name": "Vulnerable-Exchange",
                      "file_name": "scan_exchange",
                      "required_fields": [["time.source", "timestamp", "add_UTC_to_timestamp"], ["source.ip", "ip"]],
                      "optional_fields": [["classification.type", "tag", "scan_exchange_type"]]},
}


def test_update_schema_writes_the_published_format_as_commonwatch_maps_reports(tmp_path, settings, engine, clock):
    from typer.testing import CliRunner

    from commonwatch.cli import app
    from commonwatch.runtime import Runtime, set_runtime

    published = tmp_path / "intelmq.json"
    published.write_text(json.dumps(PUBLISHED_SAMPLE))
    target = tmp_path / "shipped.json"
    set_runtime(Runtime(settings, clock))
    try:
        result = CliRunner().invoke(app, ["feeds", "update-schema", str(published), "--own-mapping",
                                          "--output", str(target)])
        assert result.exit_code == 0, result.output
        assert "2 new report type(s)" in result.output and "1 changed: scan_exchange" in result.output
        written = json.loads(target.read_text())
        quokka = written["scan_quokka"]
        assert quokka["required_fields"] == [["time.source", "timestamp", "add_UTC_to_timestamp"],
                                             ["source.ip", "ip"], ["source.port", "port"]]
        assert quokka["optional_fields"] == [["extra.", "severity"], ["extra.", "naics"], ["extra.", "quokka_mood"],
                                             ["product.vulnerabilities", "cve"], ["extra.", "tag"]]
        assert quokka["constant_fields"] == {"classification.identifier": "open-quokka",
                                             "classification.taxonomy": "vulnerable",
                                             "classification.type": "vulnerable-system",
                                             "protocol.application": "quokka"}
        sinkhole = written["event4_quokka_sinkhole_http"]
        assert sinkhole["optional_fields"] == [["malware.name", "infection"], ["extra.", "http_url"]]
        assert sinkhole["constant_fields"]["classification.identifier"] == "quokka-sinkhole-http"
        assert written["scan_exchange"]["constant_fields"]["classification.type"] == "vulnerable-system"
        # The written file is read back as it was written (a round trip changes nothing).
        again = CliRunner().invoke(app, ["feeds", "update-schema", str(target), "--own-mapping",
                                         "--output", str(target)])
        assert again.exit_code == 0 and "0 new report type(s); 0 changed" in again.output, again.output
        assert json.loads(target.read_text()) == written
    finally:
        set_runtime(None)
    installed = update_schema(target, tmp_path / "data")[0]
    assert installed.is_file()
    csv = ('"timestamp","ip","port","severity","naics","quokka_mood","cve","tag"\n'
           '"2026-11-24 01:00:00","198.51.100.7",9,"high",0,"sleepy","CVE-2026-0001","quokka"\n')
    [batch] = parse("shadowserver", csv.encode(), "2026-11-24-scan_quokka-asn-geo.csv", data_dir=tmp_path / "data")
    row = batch.frame.row(0, named=True)
    assert not batch.notes and row["classification.type"] == "vulnerable-system"
    assert (row["extra.severity"], row["extra.naics"], row["extra.tag"]) == ("high", "0", "quokka")
