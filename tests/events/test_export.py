"""Exports: streamed CSV (formula cells neutralised), JSON, JSON lines and IntelMQ JSON lines that
IntelMQ itself reads back to the same events; the size limit; one audit record per export."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from importlib import resources

import pytest
from fastapi.testclient import TestClient
from intelmq.lib.message import MessageFactory
from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.db import session_scope
from commonwatch.events import export, search
from commonwatch.events.schema import BY_NAME, FIELDS
from commonwatch.events.store import StreamState
from commonwatch.net import ip_key
from tests.events.eventdata import event_row, insert_events

INTELMQ_HARMONISATION = json.loads((resources.files("intelmq") / "etc" / "harmonization.conf").read_text())


def _export(client, headers, **params):
    resp = client.get("/api/v1/events/export", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp


def _exports(app) -> list[AuditEntry]:
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "export")
                              .order_by(AuditEntry.seq)))


def test_csv_export_of_10000_events_is_streamed_complete_and_audited(app, client, world, events_of):
    rows = events_of(10_000)
    with client.stream("GET", "/api/v1/events/export", params={"format": "csv"},
                       headers=world.auth("analyst")) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/csv")
        assert resp.headers["content-disposition"].startswith('attachment; filename="events-')
        chunks = list(resp.iter_raw())
    assert len(chunks) >= 5  # sent in pieces as it is read, not built whole
    table = list(csv.reader(io.StringIO(b"".join(chunks).decode("utf-8"))))
    assert tuple(table[0]) == export.CSV_HEADER
    ids = [int(r[0]) for r in table[1:]]
    assert len(ids) == 10_000 and set(ids) == {r["id"] for r in rows}
    by_id = {r["id"]: r for r in rows}
    col = {name: i for i, name in enumerate(table[0])}
    for line in table[1:50]:
        row = by_id[int(line[0])]
        assert line[col["source.ip"]] == row["source_ip"]
        assert line[col["time.source"]] == row["time_source"].isoformat()
        assert json.loads(line[col["extra"]]) == row["extra"]
        assert line[col["constituent.cii"]] == ("true" if row["constituent_cii"] else "false")
    [entry] = _exports(app)
    assert entry.entity == "events" and entry.actor.startswith(f"user:{world.ids['user_analyst']} ")
    assert json.loads(entry.after) == {"format": "csv", "filter": {}, "rows": 10_000}


def test_csv_cells_that_would_run_as_formulas_are_neutralised(app, client, world):
    row = event_row(1, at=datetime.fromisoformat("2026-11-25T01:00:00+00:00"), org_id=world.org_a,
                    feed_name="=HYPERLINK(\"http://evil.example\")", feed_provider="+cmd|' /C calc'!A0",
                    classification_identifier="-2+3", source_as_name="@SUM(A1)", source_fqdn="\tbad.example",
                    extra={"x": "=1"})
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [row])
    text = _export(client, world.auth("a"), format="csv").text
    [line] = list(csv.DictReader(io.StringIO(text)))
    assert line["feed.name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert line["feed.provider"] == "'+cmd|' /C calc'!A0"
    assert line["classification.identifier"] == "'-2+3"
    assert line["source.as_name"] == "'@SUM(A1)"
    assert line["source.fqdn"] == "'\tbad.example"
    assert not any(v.startswith(("=", "+", "-", "@")) for v in line.values())


def test_csv_cells_come_back_exactly_as_stored_through_a_csv_reader(app, client, world):
    """The CSV is rendered column by column: quotes, separators, line breaks inside a cell, empty
    text, fractional seconds and non-ASCII text must read back as Python's csv module wrote them."""
    tricky = {"feed_name": 'say "hi", then\r\nleave', "feed_provider": "", "source_as_name": "中国电信,骨干网",
              "source_fqdn": "cr\ronly.example", "malware_name": "lf\nonly", "source_url": " lead and trail "}
    at = datetime.fromisoformat("2026-11-25T01:00:00.000120+00:00")
    rows = [event_row(1, at=at, org_id=world.org_a, **tricky),
            event_row(2, at=datetime.fromisoformat("2026-11-25T00:00:00+00:00"), org_id=world.org_a)]
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows)
    text = _export(client, world.auth("a"), format="csv").text
    assert text.endswith("\r\n") and not text.endswith("\r\n\r\n")
    first, second = list(csv.DictReader(io.StringIO(text, newline="")))
    for field, column in (("feed.name", "feed_name"), ("source.as_name", "source_as_name"),
                          ("source.fqdn", "source_fqdn"), ("malware.name", "malware_name"),
                          ("source.url", "source_url")):
        assert first[field] == tricky[column]
    assert first["feed.provider"] == ""
    assert first["time.source"] == "2026-11-25T01:00:00.000120+00:00"
    assert second["time.source"] == "2026-11-25T00:00:00+00:00"
    assert json.loads(first["extra"]) == rows[0]["extra"]


def test_json_array_and_lines_hold_the_filtered_events(client, world, events_of):
    rows = events_of(900)
    expected = {r["id"] for r in rows if r["severity"] in ("high", "critical")
                and r["org_id"] in (world.org_a, world.org_a_unit)}
    array = _export(client, world.auth("a"), format="json", min_severity="high").json()
    assert {e["id"] for e in array} == expected
    assert all(e["severity"] in ("high", "critical") for e in array)
    lines = _export(client, world.auth("a"), format="jsonl", min_severity="high").text.splitlines()
    assert [json.loads(x) for x in lines] == array
    assert set(array[0]) == {"id", *(f.name for f in FIELDS)}
    empty = _export(client, world.auth("a"), format="json", type="no-such-type")
    assert empty.json() == []


def _from_intelmq(line: dict) -> dict:
    """Read an IntelMQ line back into event columns, as a commonwatch importer would."""
    out: dict = {}
    extra: dict = {}
    for key, value in line.items():
        if key.startswith(export.OWN_PREFIX):
            out[BY_NAME[key.removeprefix(export.OWN_PREFIX)].column] = value
        elif key.startswith("extra."):
            extra[key.removeprefix("extra.")] = value
        elif key != "tlp":  # the exact TLP 2.0 label travels in extra.commonwatch.tlp
            out[BY_NAME[key].column] = value
    out["extra"] = extra or None
    return out


def test_intelmq_lines_parse_back_in_intelmq_to_the_same_events(client, world, events_of):
    rows = events_of(10_000)
    text = _export(client, world.auth("admin"), format="intelmq").text
    lines = text.splitlines()
    assert len(lines) == 10_000
    by_id = {r["id"]: r for r in rows}
    exported_ids = {r["event_key"]: r["id"] for r in rows}
    tlps = {}
    for raw in lines:
        line = json.loads(raw)
        # IntelMQ's own Event accepts every key and value unchanged (no sanitising needed).
        event = MessageFactory.unserialize(raw, harmonization=INTELMQ_HARMONISATION, default_type="Event")
        assert event.to_dict() == line
        assert all(k in INTELMQ_HARMONISATION["event"] or k.startswith("extra.") for k in line)
        back = _from_intelmq(line)
        row = by_id[exported_ids[back["event_key"]]]
        for f in FIELDS:
            want = row[f.column]
            want = None if want == "" else want
            got = back.get(f.column)
            if isinstance(want, datetime):
                got = datetime.fromisoformat(got)
            assert got == want, (f.name, got, want)
        assert "+" in line["time.source"] or line["time.source"].endswith("Z")
        tlps[row["tlp"]] = line["tlp"]
    assert tlps == {"CLEAR": "WHITE", "GREEN": "GREEN", "AMBER": "AMBER", "AMBER+STRICT": "RED", "RED": "RED"}


def test_ipv6_and_sparse_events_export_to_valid_intelmq(app, client, world):
    at = datetime.fromisoformat("2026-11-25T01:00:00.123456+00:00")
    sparse = event_row(3, at=at, org_id=None, source_ip="2001:db8::1", source_ip_bin=ip_key("2001:db8::1"),
                       source_port=None, source_asn=None, source_as_name=None, source_cc=None, source_fqdn=None,
                       protocol_transport=None, protocol_application=None, classification_identifier=None,
                       extra=None, constituent_sector=None, feed_provider="", gbt_category=None)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [sparse])
    [raw] = _export(client, world.auth("admin"), format="intelmq", ip="2001:db8::1").text.splitlines()
    line = json.loads(raw)
    assert MessageFactory.unserialize(raw, harmonization=INTELMQ_HARMONISATION,
                                      default_type="Event").to_dict() == line
    assert line["source.ip"] == "2001:db8::1" and "source.port" not in line and "feed.provider" not in line
    assert line["time.source"] == "2026-11-25T01:00:00.123456+00:00"


def test_export_limit_refuses_a_too_large_selection_before_any_byte(app, settings, engine, clock, world,
                                                                     events_of):
    from commonwatch.app import create_app

    events_of(150)
    small = create_app(settings.model_copy(update={"events_export_max_rows": 100}), clock=clock, engine=engine)
    with TestClient(small) as c:
        resp = c.get("/api/v1/events/export", params={"format": "csv"}, headers=world.auth("admin"))
        assert resp.status_code == 422
        assert "100" in resp.json()["detail"][0]["msg"]
        assert _exports(app) == []  # a refused export is not an export
        ok = c.get("/api/v1/events/export", params={"format": "csv", "org": str(world.org_a)},
                   headers=world.auth("admin"))
        assert ok.status_code == 200 and len(ok.text.splitlines()) == 1 + 38
        assert int(ok.headers["x-event-count"]) == 38
    [entry] = _exports(app)
    assert json.loads(entry.after)["filter"] == {"org": str(world.org_a)}


def test_a_constituents_export_holds_only_its_own_events(client, world, events_of):
    rows = events_of(400)
    exported = [json.loads(x)["extra.commonwatch.event.key"]
                for x in _export(client, world.auth("a"), format="intelmq").text.splitlines()]
    own = {r["event_key"] for r in rows if r["org_id"] in (world.org_a, world.org_a_unit)}
    assert set(exported) == own and len(exported) == len(own)
    partner = _export(client, world.auth("partner"), format="json").json()
    assert {e["id"] for e in partner} == {r["id"] for r in rows if r["partner_org_id"] == world.partner}


def test_unknown_format_is_refused(client, world):
    resp = client.get("/api/v1/events/export", params={"format": "xlsx"}, headers=world.auth("admin"))
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["query", "format"]


def test_stream_reads_in_batches_and_stops_at_the_frozen_selection(app, world, events_of):
    from commonwatch.access.principal import Principal, Role

    rows = events_of(5000)
    admin = Principal(1, "admin@test.example", Role.ADMIN)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        prepared = export.prepare(s, app.state.engine, admin, search.EventFilter(), "jsonl", max_rows=10_000)
    late = event_row(99_999, at=rows[0]["time_source"], org_id=None, key_prefix="late")
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [late])  # stored after the export was recorded: not part of it
    state = StreamState()
    chunks = list(prepared.stream(state))
    # Reads of at most 2000 rows (a columnar store also cuts at day boundaries), never the whole selection.
    assert state.batches >= 3 and state.rows == 5000
    keys = [json.loads(x)["event.key"] for c in chunks for x in c.splitlines()]
    assert len(keys) == 5000 and late["event_key"] not in keys


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_an_empty_selection_exports_cleanly(client, world, fmt):
    resp = _export(client, world.auth("admin"), format=fmt)
    if fmt == "csv":
        assert resp.text.splitlines() == [",".join(export.CSV_HEADER)]
    elif fmt == "json":
        assert resp.json() == []
    else:
        assert resp.text == ""


def test_harmonisation_fields_kept_in_extra_go_back_to_their_names_in_intelmq(app, client, world):
    # A Shadowserver report's region and city have no column: the store keeps them in extra under
    # their harmonisation names. IntelMQ must get them as its own fields, and no empty values.
    row = event_row(5, at=datetime.fromisoformat("2026-11-25T02:00:00+00:00"), org_id=world.org_a,
                    extra={"source.geolocation.region": "Zhejiang", "source.geolocation.city": None,
                           "malware.hash.sha256": "a" * 64, "tag": "http", "naics": "", "source.not_a_field": "x"})
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, [row])
    [raw] = _export(client, world.auth("admin"), format="intelmq").text.splitlines()
    line = json.loads(raw)
    assert line["source.geolocation.region"] == "Zhejiang"
    assert line["malware.hash.sha256"] == "a" * 64
    assert line["extra.tag"] == "http" and line["extra.source.not_a_field"] == "x"
    assert not {"source.geolocation.city", "extra.source.geolocation.city", "extra.naics",
                "extra.source.geolocation.region"} & set(line)
    assert MessageFactory.unserialize(raw, harmonization=INTELMQ_HARMONISATION,
                                      default_type="Event").to_dict() == line
