"""The indicator list sorts by its columns and revokes or re-marks many indicators at once: each
gets a new STIX version, the act is one audit record, a constituent has no such act."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from commonwatch.access.models import AuditEntry
from commonwatch.intel.models import Indicator, IntelObject
from tests.conftest import sign_in

VALUES = ("b.example", "a.example", "c.example")


def _create(client, csrf) -> None:
    for i, value in enumerate(VALUES):
        resp = client.post("/intel/indicators", data={"csrf_token": csrf, "value": value, "tlp": "AMBER",
                                                      "confidence": str(10 * (i + 1)),
                                                      "valid_from": "2026-11-25 09:00"}, follow_redirects=False)
        assert resp.status_code == 303, resp.text[:500]


def _ids(app) -> dict[str, int]:
    with app.state.sessionmaker() as s:
        return dict(s.execute(select(Indicator.value, Indicator.id)).all())


def _audits(app, action):
    with app.state.sessionmaker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_sort_then_revoke_and_re_mark_in_bulk(client, app, world):
    csrf = sign_in(client, world.users["analyst"])
    _create(client, csrf)
    ids = _ids(app)
    page = client.get("/intel?sort=value&dir=asc")
    assert [int(i) for i in re.findall(r'<tr data-id="(\d+)"', page.text)] == [ids[v] for v in sorted(VALUES)]
    by_confidence = client.get("/intel?sort=confidence&dir=desc")
    assert [int(i) for i in re.findall(r'<tr data-id="(\d+)"', by_confidence.text)] == \
        [ids["c.example"], ids["a.example"], ids["b.example"]]
    assert 'data-count="3"' in page.text
    chosen = [ids["a.example"], ids["b.example"]]
    confirm = client.post("/intel/indicators/bulk", data={"csrf_token": csrf, "action": "tlp:GREEN",
                                                          "ids": [*chosen, 777_777]})
    assert confirm.status_code == 200 and 'class="bulk-count" data-count="2"' in confirm.text
    assert "777777: " in confirm.text
    with app.state.sessionmaker() as s:
        versions = s.scalar(select(func.count()).select_from(IntelObject))
    done = client.post("/intel/indicators/bulk", data={"csrf_token": csrf, "action": "tlp:GREEN", "confirm": "1",
                                                       "ids": chosen}, follow_redirects=False)
    assert done.status_code == 303
    with app.state.sessionmaker() as s:
        tlps = dict(s.execute(select(Indicator.value, Indicator.tlp)).all())
        assert s.scalar(select(func.count()).select_from(IntelObject)) == versions + 2  # one new version each
    assert tlps == {"a.example": "GREEN", "b.example": "GREEN", "c.example": "AMBER"}
    assert len(_audits(app, "intel.bulk_tlp")) == 1
    again = client.post("/intel/indicators/bulk", data={"csrf_token": csrf, "action": "revoke", "confirm": "1",
                                                        "ids": chosen}, follow_redirects=False)
    assert again.status_code == 303
    with app.state.sessionmaker() as s:
        revoked = dict(s.execute(select(Indicator.value, Indicator.revoked)).all())
    assert revoked == {"a.example": True, "b.example": True, "c.example": False}
    confirm = client.post("/intel/indicators/bulk", data={"csrf_token": csrf, "action": "revoke", "ids": chosen})
    assert 'data-count="0"' in confirm.text and "already revoked" in confirm.text
    assert len(_audits(app, "intel.bulk_revoke")) == 1
    assert client.post("/intel/indicators/bulk", data={"csrf_token": csrf, "action": "tlp:PURPLE",
                                                       "ids": chosen}).status_code == 422


def test_a_constituent_cannot_revoke(client, app, world):
    csrf = sign_in(client, world.users["analyst"])
    _create(client, csrf)
    token = sign_in(client, world.users["a"])
    assert 'name="ids"' not in client.get("/intel").text
    resp = client.post("/intel/indicators/bulk", data={"csrf_token": token, "action": "revoke", "confirm": "1",
                                                       "ids": list(_ids(app).values())})
    assert resp.status_code == 403
    assert _audits(app, "intel.bulk_revoke") == []
