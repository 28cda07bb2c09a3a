"""Cybercrime-assistance requests through the API: contents from the rules file, the status workflow,
need-to-know (assigned coordinators and admins only, every view audited), PI flags and the PDF record."""

from __future__ import annotations

from sqlalchemy import select

from commonwatch.access import services as access
from commonwatch.access.models import AuditEntry
from commonwatch.db import session_scope
from tests.conftest import PASSWORD


def _second_coordinator(app, clock) -> tuple[dict[str, str], int]:
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        user = access.create_user(s, "coord2@test.example", "coordinator", PASSWORD)
        issued = access.create_token(s, user, name="t", now=clock.now())
        return {"Authorization": f"Bearer {issued.secret}"}, user.id


REQUEST = {
    "direction": "incoming", "country": "de", "authority": "BKA Cybercrime Unit", "legal_basis": "preservation_request",
    "kind": "preservation", "subject": "Preserve logs of a C2 server",
    "body": "Contact: 13812345678, mailbox zhang.san@example.cn",
    "contents": {"requesting_authority": "BKA", "offence_summary": "Botnet C2", "necessity": "Logs roll over in 7 days"},
    "concerns": [{"type": "network", "ref": "198.51.100.7"}, {"type": "incident", "ref": "INC-2026-0001"}],
    "deadline": "2026-12-20",
}


def test_request_workflow_need_to_know_and_audit(app, client, world, clock):
    other, other_id = _second_coordinator(app, clock)
    resp = client.post("/api/v1/cooperation/requests", json=REQUEST, headers=world.auth("coordinator"))
    assert resp.status_code == 201, resp.text
    req = resp.json()
    rid = req["id"]
    assert req["ref"].startswith("AR-2026-") and req["country"] == "DE"
    assert req["rules_status"] == "verified"  # Budapest Art. 29 is PRIMARY in the reference
    assert set(req["missing_contents"]) == {"data_and_relation", "custodian_location", "mla_to_follow"}
    assert req["preserve_until"] == "2027-01-24" and req["acknowledge_by"] == "2026-11-27"
    assert req["pi_flagged"] and {f["detector"] for f in req["pi_findings"]} >= {"cn_mobile"}
    assert req["assignees"] == ["coordinator@test.example"]

    # Need-to-know: an unassigned coordinator, an analyst, an auditor, constituents, partners see nothing.
    assert client.get(f"/api/v1/cooperation/requests/{rid}", headers=other).status_code == 404
    assert client.get("/api/v1/cooperation/requests", headers=other).json()["items"] == []
    for who in ("analyst", "auditor", "a", "b", "partner"):
        assert client.get(f"/api/v1/cooperation/requests/{rid}", headers=world.auth(who)).status_code in (403, 404)
        assert client.get("/api/v1/cooperation/requests", headers=world.auth(who)).status_code == 403
    assert client.get(f"/api/v1/cooperation/requests/{rid}", headers=world.auth("admin")).status_code == 200

    # Assigned, the second coordinator sees it.
    assert client.post(f"/api/v1/cooperation/requests/{rid}/assignees", json={"user_id": other_id},
                       headers=world.auth("admin")).status_code == 200
    assert client.get(f"/api/v1/cooperation/requests/{rid}", headers=other).status_code == 200

    # Workflow: a wrong step is refused; declining needs its reason.
    bad = client.post(f"/api/v1/cooperation/requests/{rid}/status", json={"status": "answered"}, headers=other)
    assert bad.status_code == 422 and "cannot become" in bad.text
    for status in ("acknowledged", "under_review", "forwarded"):
        r = client.post(f"/api/v1/cooperation/requests/{rid}/status", json={"status": status}, headers=other)
        assert r.status_code == 200 and r.json()["status"] == status
    no_reason = client.post(f"/api/v1/cooperation/requests/{rid}/status", json={"status": "declined"}, headers=other)
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    done = client.post(f"/api/v1/cooperation/requests/{rid}/status",
                       json={"status": "declined", "ground": "no_link", "reason": "No data held"}, headers=other)
    assert done.json()["decline_reason"] == "[no_link] No data held" and done.json()["answered_at"]
    assert [h["status"] for h in done.json()["history"]] == ["received", "acknowledged", "under_review",
                                                             "forwarded", "declined"]

    # Every view is in the audit log, with who viewed; the request text never is.
    with app.state.sessionmaker() as s:
        views = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "cooperation.request.view")))
        assert {v.actor.split()[1] for v in views} >= {"coord2@test.example", "admin@test.example"}
        texts = " ".join(f"{e.before} {e.after}" for e in s.scalars(select(AuditEntry)))
        assert "13812345678" not in texts

    pdf = client.get(f"/api/v1/cooperation/requests/{rid}/record.pdf", headers=other)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_bad_requests_name_the_field(client, world):
    past = {**REQUEST, "deadline": "2026-01-01"}
    resp = client.post("/api/v1/cooperation/requests", json=past, headers=world.auth("coordinator"))
    assert resp.status_code == 422 and "deadline" in resp.text and "in the past" in resp.text
    for field, value in (("legal_basis", "goodwill"), ("kind", "surveillance"), ("country", "Germany"),
                         ("direction", "sideways")):
        resp = client.post("/api/v1/cooperation/requests", json={**REQUEST, field: value},
                           headers=world.auth("coordinator"))
        assert resp.status_code == 422 and field in resp.text, field
    resp = client.post("/api/v1/cooperation/requests", json={**REQUEST, "contents": {"shoe_size": "42"}},
                       headers=world.auth("coordinator"))
    assert resp.status_code == 422 and "shoe_size" in resp.text
    resp = client.post("/api/v1/cooperation/requests", json={**REQUEST, "assignees": [world.ids["user_a"]]},
                       headers=world.auth("admin"))
    assert resp.status_code == 422 and "user_id" in resp.text
    # Constituents and partners cannot file requests at all.
    assert client.post("/api/v1/cooperation/requests", json=REQUEST, headers=world.auth("a")).status_code == 403


def test_attachment_pi_flagged(client, world):
    rid = client.post("/api/v1/cooperation/requests", json={**REQUEST, "body": "no personal data"},
                      headers=world.auth("admin")).json()["id"]
    resp = client.post(f"/api/v1/cooperation/requests/{rid}/attachments", headers=world.auth("admin"),
                       files={"file": ("subscriber.txt", "身份证号 11010519491231002X\n".encode(), "text/plain")})
    assert resp.status_code == 201 and resp.json()["pi_findings"], resp.text
    got = client.get(f"/api/v1/cooperation/requests/{rid}", headers=world.auth("admin")).json()
    assert got["pi_flagged"] and got["attachments"][0]["filename"] == "subscriber.txt"


def test_counts_by_country_kind_outcome(client, world):
    for country, kind in (("DE", "preservation"), ("DE", "disclosure"), ("FR", "takedown")):
        rid = client.post("/api/v1/cooperation/requests", json={**REQUEST, "country": country, "kind": kind},
                          headers=world.auth("admin")).json()["id"]
        if country == "FR":
            client.post(f"/api/v1/cooperation/requests/{rid}/status", json={"status": "under_review"},
                        headers=world.auth("admin"))
            client.post(f"/api/v1/cooperation/requests/{rid}/status", json={"status": "answered"},
                        headers=world.auth("admin"))
    counts = client.get("/api/v1/cooperation/counts?year=2026", headers=world.auth("admin")).json()
    month = counts["requests"]["2026-11"]
    assert month["total"] == 3 and month["by_country"] == {"DE": 2, "FR": 1}
    assert month["by_outcome"] == {"open": 2, "answered": 1} and month["mean_days_to_answer"] == 0.0
    yearly = client.get("/api/v1/cooperation/counts?period=year", headers=world.auth("admin")).json()
    assert yearly["requests"]["2026"]["by_kind"] == {"preservation": 1, "disclosure": 1, "takedown": 1}
    # The statistics reader (an analyst) gets figures but not the requests it may not read.
    assert client.get("/api/v1/cooperation/counts", headers=world.auth("analyst")).json()["requests"] == {}
    assert client.get("/api/v1/cooperation/counts", headers=world.auth("a")).status_code == 403
