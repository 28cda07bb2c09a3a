"""Dashboards, indicator API (JSON and CSV), reports (HTML and PDF): tenancy, empty and long
periods, absent capabilities, bad input."""

from __future__ import annotations

# tests.conftest.START is the frozen clock; the events are put in the days before it
FROM = "2026-10-01"


def test_coordinator_dashboard_in_both_languages(client, filled):
    auth = filled.auth("coordinator")
    page = client.get(f"/reports/dashboard/coordinator?since={FROM}", headers=auth)
    assert page.status_code == 200
    assert page.text.count("<svg") >= 8
    assert "Events by type over time" in page.text
    assert 'id="ind-vulns-by_severity"' in page.text and "not available" in page.text
    zh = client.get(f"/reports/dashboard/coordinator?since={FROM}", headers={**auth, "Accept-Language": "zh-CN"})
    assert zh.status_code == 200 and "按类型统计的事件趋势" in zh.text


def test_indicator_json_csv_and_tenancy(client, filled):
    staff = client.get(f"/api/v1/reports/indicator?key=events.type&since={FROM}", headers=filled.auth("coordinator"))
    assert staff.status_code == 200
    body = staff.json()
    assert body["source"] == "events" and body["columns"] == ["when", "type", "n"]
    total = sum(r["n"] for r in body["rows"])
    a = client.get(f"/api/v1/reports/indicator?key=events.type&since={FROM}", headers=filled.auth("a")).json()
    b = client.get(f"/api/v1/reports/indicator?key=events.type&since={FROM}", headers=filled.auth("b")).json()
    own_a, own_b = sum(r["n"] for r in a["rows"]), sum(r["n"] for r in b["rows"])
    assert 0 < own_a < total and 0 < own_b < total and own_a + own_b < total  # unmatched events are the centre's
    csv = client.get(f"/api/v1/reports/indicator?key=events.type&since={FROM}&format=csv", headers=filled.auth("a"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "# indicator,events.type" in csv.text
    assert sum(int(line.rsplit(",", 1)[1]) for line in csv.text.splitlines()[4:]) == own_a
    # another tenant's organisation answers 404; the coordinator dashboard is not a constituent's
    assert client.get(f"/api/v1/reports/indicator?key=events.type&org={filled.org_b}",
                      headers=filled.auth("a")).status_code == 404
    assert client.get("/reports/dashboard/coordinator", headers=filled.auth("a")).status_code == 404
    assert client.get("/reports/dashboard/constituent", headers=filled.auth("a")).status_code == 200


def test_empty_long_absent_and_bad_periods(client, filled):
    auth = filled.auth("coordinator")
    empty = client.get("/api/v1/reports/indicator?key=events.type&since=2001-01-01&until=2001-01-31", headers=auth)
    assert empty.status_code == 200 and empty.json()["empty"] is True
    page = client.get("/reports/dashboard/coordinator?since=2001-01-01&until=2001-01-31", headers=auth)
    assert page.status_code == 200 and "No data for this period" in page.text
    ten = client.get("/api/v1/reports/indicator?key=events.severity&since=2016-12-01&until=2026-11-30", headers=auth)
    assert ten.status_code == 200 and ten.json()["note"]
    assert sum(r["n"] for r in ten.json()["rows"]) == 3000 or ten.json()["rows"]
    absent = client.get("/api/v1/reports/indicator?key=cooperation.exchanges", headers=auth).json()
    assert absent["absent"] and "cooperation" in absent["absent"].lower()  # the capability by its name
    too_long = client.get("/api/v1/reports/indicator?key=events.type&since=1990-01-01&until=2026-01-01", headers=auth)
    assert too_long.status_code == 422
    bad = client.get("/api/v1/reports/indicator?key=events.type&since=2026-13-01", headers=auth)
    assert bad.status_code == 422 and "since" in bad.text
    assert client.get("/api/v1/reports/indicator?key=nope", headers=auth).status_code == 404
    assert client.get("/api/v1/reports/month/2026-99", headers=auth).status_code == 422


def test_monthly_report_html_and_pdf(client, filled):
    auth = filled.auth("coordinator")
    html = client.get("/reports/report/month/2026-11", headers=auth)
    assert html.status_code == 200 and "Monthly situation report" in html.text and 'id="summary"' in html.text
    assert "against the previous period" in html.text or "new this period" in html.text
    pdf = client.get("/reports/report/month/2026-11?format=pdf", headers=auth)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and len(pdf.content) > 20_000
    data = client.get("/api/v1/reports/month/2026-11", headers=auth).json()
    assert data["previous"]["start"] == "2026-10-01" and data["summary"]
    assert client.get("/reports/report/month/2026-11", headers=filled.auth("a")).status_code in (403, 404)
