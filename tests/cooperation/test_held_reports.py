"""Held reports on the coordinator's pages: the list (the shared list component: filters, sort, count),
a report's page with its reason and its acknowledgements, the raw mail as a download (never rendered),
reading a held report again once the cause is fixed, discarding one with a reason; all audited, in both
languages, and closed to analysts and constituents. And the language an acknowledgement is written in."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from commonwatch.access.models import AuditEntry
from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation
from commonwatch.cooperation.models import InboundReport, PartnerMail, PartnerProfile
from commonwatch.cooperation.reports import Mail, ingest_mails
from commonwatch.db import session_scope
from commonwatch.pipeline.models import IngestRun
from tests.conftest import sign_in
from tests.cooperation.mails import PARTNER_EMAIL, Signer, as_bytes, iodef, mail


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return Signer(tmp_path_factory.mktemp("partner-gpg"), f"CERT Partner <{PARTNER_EMAIL}>")


def _contact(app, clock, org_id: int, email: str = PARTNER_EMAIL, key: str | None = None) -> None:
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        data = {"email": email, "role": "security"}
        if key:
            data["pgp_key"] = key
        registry.add_contact(s, s.get(Organisation, org_id), data, clock.now())


def _ingest(app, clock, raws):
    return ingest_mails(app.state.engine, app.state.sessionmaker, [Mail(r, "api") for r in raws], clock,
                        app.state.settings.data_dir)


def test_held_reports_are_listed_downloadable_released_and_discarded(app, client, world, clock, signer):
    # The partner's contact is registered without its key: its signed report is held (unknown key).
    _contact(app, clock, world.partner)
    signed = signer.sign(mail(iodef(4, ident="DE-2026-7")))
    garbled = as_bytes(mail(json.dumps({"IODEF-Document": {"Incident": [{"ReportTime": "2026-11-24T08:00:00Z"}]}})))
    hostile = as_bytes(mail("<script>alert(1)</script> nothing here", subject="<b>hi</b>"))
    rows = _ingest(app, clock, [signed, garbled, hostile])
    held = {r.status for r in rows}
    assert held == {"held"}
    signed_id, garbled_id, hostile_id = (r.id for r in rows)

    csrf = sign_in(client, world.users["coordinator"])
    page = client.get("/cooperation/reports?status=held")
    assert page.status_code == 200
    assert 'data-count="3"' in page.text and "unknown key" in page.text and "lacks IncidentID" in page.text
    assert "<script>alert(1)" not in page.text and "&lt;b&gt;hi&lt;/b&gt;" in page.text
    assert 'aria-sort="descending"' in page.text  # newest first, by the shared list component
    by_size = client.get("/cooperation/reports?status=held&sort=size&dir=asc")
    assert by_size.status_code == 200 and 'data-sort="size"' in by_size.text
    assert client.get("/cooperation/reports?sort=nope").status_code == 422
    assert 'data-count="1"' in client.get("/cooperation/reports?q=IncidentID").text

    # The report's page: the reason, and the acknowledgement queued for the known partner.
    one = client.get(f"/cooperation/reports/{garbled_id}")
    assert one.status_code == 200 and 'id="held-reason"' in one.text and "IncidentID" in one.text
    assert 'id="report-mails"' in one.text and "acknowledgement" in one.text and "queued" in one.text
    client.get("/lang/zh-CN")
    zh = client.get(f"/cooperation/reports/{garbled_id}")
    assert "已保留" in zh.text and "回执" in zh.text
    assert "合作伙伴报告" in client.get("/cooperation/reports").text
    client.get("/lang/en")

    # The raw mail: a download of an opaque type, never HTML.
    raw = client.get(f"/cooperation/reports/{hostile_id}/raw")
    assert raw.status_code == 200 and raw.content == hostile
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment;")
    assert raw.headers["x-content-type-options"] == "nosniff"

    # Discarding needs a reason.
    bad = client.post(f"/cooperation/reports/{hostile_id}/discard", data={"csrf_token": csrf, "reason": " "})
    assert bad.status_code == 422 and "reason" in bad.text
    ok = client.post(f"/cooperation/reports/{hostile_id}/discard",
                     data={"csrf_token": csrf, "reason": "Spam, not a partner report"}, follow_redirects=False)
    assert ok.status_code == 303
    assert "Spam, not a partner report" in client.get(f"/cooperation/reports/{hostile_id}").text
    again = client.post(f"/cooperation/reports/{hostile_id}/discard", data={"csrf_token": csrf, "reason": "x"})
    assert again.status_code == 422

    # Released before the fix: still held, with the reason given again.
    still = client.post(f"/cooperation/reports/{signed_id}/release", data={"csrf_token": csrf},
                        follow_redirects=False)
    assert still.status_code == 303
    with app.state.sessionmaker() as s:
        assert s.get(InboundReport, signed_id).status == "held"
    # The partner's key added to its contact: released, the events are taken, the partner acknowledged.
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        org = s.get(Organisation, world.partner)
        registry.add_contact(s, org, {"email": "keys@cert-partner.example", "pgp_key": signer.public,
                                      "role": "security"}, clock.now())
    done = client.post(f"/cooperation/reports/{signed_id}/release",
                       data={"csrf_token": csrf, "note": "key received by phone"}, follow_redirects=False)
    assert done.status_code == 303
    with app.state.sessionmaker() as s:
        row = s.get(InboundReport, signed_id)
        assert (row.status, row.signature, row.signer, row.rows) == ("ingested", "good", signer.fingerprint, 4)
        assert row.resolution == "key received by phone" and row.resolved_by
        assert s.scalar(select(func.sum(IngestRun.events_stored))) == 4
        keys = set(s.scalars(select(PartnerMail.dedup_key).where(PartnerMail.inbound_report_id == signed_id)))
        assert keys == {f"ack:{signed_id}"}  # the first one (held: unknown key, so no partner) and only one
        actions = list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("cooperation.report_%"))))
    assert actions.count("cooperation.report_release_failed") == 1
    assert {"cooperation.report_released", "cooperation.report_discarded",
            "cooperation.report_raw_downloaded"} <= set(actions)
    # Releasing it again is refused: it is no longer held.
    assert client.post(f"/cooperation/reports/{signed_id}/release", data={"csrf_token": csrf}).status_code == 422

    # The partner's page shows what was sent to it.
    partner_page = client.get(f"/cooperation/partners/{world.partner}")
    assert 'id="partner-mails"' in partner_page.text and f"/cooperation/reports/{garbled_id}" in partner_page.text

    # Analysts, constituents and partners are shown none of it.
    from fastapi.testclient import TestClient

    for role in ("analyst", "a", "partner"):
        with TestClient(app) as other:
            sign_in(other, world.users[role])
            assert other.get("/cooperation/reports").status_code == 403
            assert other.get(f"/cooperation/reports/{garbled_id}").status_code == 403
            assert other.get(f"/cooperation/reports/{garbled_id}/raw").status_code == 403
            assert 'id="partner-mails"' not in other.get(f"/cooperation/partners/{world.partner}").text


def _ack(app, report_id: int) -> PartnerMail:
    with app.state.sessionmaker() as s:
        return s.scalar(select(PartnerMail).where(PartnerMail.inbound_report_id == report_id))


def test_acknowledgements_go_out_in_the_partners_language(app, client, world, clock):
    """Abroad: English unless the partner's entry names a language; in China: Chinese (rules file)."""
    _contact(app, clock, world.partner)  # DE; the contact's own language defaults to zh-CN, not used
    [de] = _ingest(app, clock, [as_bytes(mail(iodef(1)))])
    assert "Acknowledgement" in _ack(app, de.id).subject and "We received your report" in _ack(app, de.id).body

    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        cn = registry.create_org(s, {"name": "CERT Province", "kind": "partner-cert", "country": "CN"})
        cn_id = cn.id
    _contact(app, clock, cn_id, "soc@cert-province.example")
    [zh] = _ingest(app, clock, [as_bytes(mail(iodef(1, first_ip=20), sender="soc@cert-province.example"))])
    assert "我方已收到" in _ack(app, zh.id).body

    # The coordinator sets the German partner's language to Chinese on its page.
    csrf = sign_in(client, world.users["coordinator"])
    page = client.get(f"/cooperation/partners/{world.partner}")
    assert "English" in page.text and 'name="language"' in page.text
    saved = client.post(f"/cooperation/partners/{world.partner}", data={
        "csrf_token": csrf, "kind": "national", "language": "zh-CN"}, follow_redirects=False)
    assert saved.status_code == 303
    bad = client.post(f"/cooperation/partners/{world.partner}", data={
        "csrf_token": csrf, "kind": "national", "language": "fr"})
    assert bad.status_code == 422
    with app.state.sessionmaker() as s:
        assert s.scalar(select(PartnerProfile.language).where(PartnerProfile.org_id == world.partner)) == "zh-CN"
    [de2] = _ingest(app, clock, [as_bytes(mail(iodef(1, first_ip=40)))])
    assert "我方已收到" in _ack(app, de2.id).body
