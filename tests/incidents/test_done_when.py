"""The issue's "done when", on the demo data through the pages: an operator files an incident that
grades to 较大 with a 4-hour clock, the coordinator assigns it and sends a coordination task to a
second organisation, that organisation answers it in its portal, and the summary report comes out as
a bilingual PDF."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from commonwatch.demo import DEMO_PASSWORD, load_demo
from commonwatch.runtime import Runtime
from tests.conftest import csrf_of, sign_in


def _client(app, email):
    c = TestClient(app)
    c.__enter__()
    sign_in(c, email, DEMO_PASSWORD)
    return c, csrf_of(c)


def test_demo_scenario_end_to_end(app, settings, clock):
    rt = Runtime(settings, clock)
    load_demo(rt)
    load_demo(rt)  # idempotent

    operator, token = _client(app, "noc@demo-telecom.example")
    resp = operator.post("/incidents", data={
        "csrf_token": token, "title": "Billing portal leak", "affected_system": "Billing portal",
        "discovered_at": "2026-11-25T09:40", "category": "DS", "subcategory": "DSLEAK",
        "effects": "1.5 M customer records exposed", "impact.pi_persons_leaked": "1500000", "impact_present": "1",
    }, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:1000]
    case_url = resp.headers["location"]
    case_id = int(case_url.rsplit("/", 1)[1])
    page = operator.get(case_url).text
    assert "较大" in page and "一般" not in page.split("id=\"level\"")[1][:200]
    due = re.search(r'id="clock-first_report".*?data-deadline="([^"]+)"', page, re.S).group(1)
    assert due == "2026-11-25T05:40:00+00:00"  # 09:40 Beijing + 4 hours, stored in UTC
    assert "2026-11-25 13:40 CST" in page

    coordinator, ctoken = _client(app, "coordinator@centre.example")
    listing = coordinator.get("/incidents").text
    assert "Billing portal leak" in listing
    staff = re.search(r'<option value="(\d+)"[^>]*>Demo Coordinator</option>', coordinator.get(case_url).text)
    assert coordinator.post(f"{case_url}/assign", data={"csrf_token": ctoken, "owner_id": staff.group(1)},
                            follow_redirects=False).status_code == 303
    bank_id = re.search(r'<option value="(\d+)"[^>]*>Demo Commercial Bank</option>',
                        coordinator.get(case_url).text).group(1)
    sent = coordinator.post(f"{case_url}/tasks", data={
        "csrf_token": ctoken, "org_id": bank_id, "title": "Watch for account takeovers",
        "body": "Customers' phone numbers leaked", "due_at": "2026-11-26T18:00"}, follow_redirects=False)
    assert sent.status_code == 303

    bank, btoken = _client(app, "security@demobank.example")
    tasks = bank.get("/tasks").text
    task_id = re.search(r'href="/tasks/(\d+)">Watch for account takeovers', tasks).group(1)
    assert "Billing portal leak" not in bank.get(f"/tasks/{task_id}").text  # the task, not the operator's case
    assert bank.get(case_url).status_code == 404
    answered = bank.post(f"/tasks/{task_id}", data={"csrf_token": btoken, "status": "done",
                                                    "response": "No takeover seen; monitoring raised"},
                         follow_redirects=False)
    assert answered.status_code == 303
    assert "No takeover seen" in coordinator.get(case_url).text

    for to in ("in_progress", "resolved"):
        assert coordinator.post(f"{case_url}/status", data={"csrf_token": ctoken, "status": to},
                                follow_redirects=False).status_code == 303
    edit = operator.post(f"{case_url}/edit", data={
        "csrf_token": token, "title": "Billing portal leak", "affected_system": "Billing portal",
        "discovered_at": "2026-11-25T09:40", "category": "DS", "subcategory": "DSLEAK",
        "effects": "1.5 M customer records exposed", "impact.pi_persons_leaked": "1500000", "impact_present": "1",
        "involves_cii": "no", "summary_cause": "Unpatched CMS plugin", "summary_lessons": "Patch within 72 hours",
    }, follow_redirects=False)
    assert edit.status_code == 303, edit.text[:2000]
    pdf = coordinator.get(f"{case_url}/report/summary.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"NotoSansSC" in pdf.content
    html = operator.get(f"{case_url}/report/summary").text
    assert "网络安全事件总结报告 / Cybersecurity incident summary report" in html
    assert "Unpatched CMS plugin" in html and "六、经验教训" in html and "6. Lessons learned" in html
    for c in (operator, coordinator, bank):
        c.__exit__(None, None, None)
    assert case_id > 5  # the demo's own incidents came first
