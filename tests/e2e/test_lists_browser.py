"""In a real browser, in English and in Chinese: sort the incident list by a column, select every
row on the page, change their status in bulk through the confirmation page, and see no console
error (the list's script and styles hold under the Content-Security-Policy)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.db import session_scope
from commonwatch.incidents import services as svc
from commonwatch.incidents.models import Incident
from commonwatch.incidents.rules import load_incident_rules
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
TITLES = ("Delta outage", "Alpha leak", "Charlie phishing")
WORDS = {"en": {"status": "Triaged", "continue": "Continue…"}, "zh-CN": {"status": "已研判", "continue": "继续…"}}


@pytest.fixture
def cases(app, world, clock):
    rules = load_incident_rules(None)
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        a = access.principal_for(s, s.get(User, world.ids["user_a"]))
        return [svc.file_incident(s, a, {"title": t, "affected_system": "CRM", "category": "DS",
                                         "subcategory": "DSLEAK", "effects": "Records offered",
                                         "discovered_at": "2026-11-25T09:30:00+08:00"}, now=clock.now(),
                                  rules=rules).id for t in TITLES]


def _row_titles(page) -> list[str]:
    return page.locator("#incidents-list tbody tr td:nth-child(3)").all_inner_texts()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_sort_select_all_and_change_status_in_bulk(page, live_url, world, cases, app, lang):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_url}/login")
    page.fill("#email", world.users["coordinator"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")
    page.goto(f"{live_url}/lang/{lang}?next=/incidents")
    page.wait_for_url(re.compile(r"/incidents$"))
    assert page.locator(".list-count").get_attribute("data-count") == "3"

    page.click("#incidents-list th[data-sort=title] a")  # a new column sorts descending first
    page.wait_for_url(re.compile(r"sort=title&dir=desc"))
    assert _row_titles(page) == sorted(TITLES, reverse=True)
    assert page.locator("th[data-sort=title]").get_attribute("aria-sort") == "descending"
    page.click("#incidents-list th[data-sort=title] a")  # and the other way round on the second click
    page.wait_for_url(re.compile(r"sort=title&dir=asc"))
    assert _row_titles(page) == sorted(TITLES)
    # The header stays in view while the rows scroll under it.
    assert page.eval_on_selector("#incidents-list thead th", "el => getComputedStyle(el).position") == "sticky"
    # Times fit on one line.
    assert page.eval_on_selector("#incidents-list td.time", "el => getComputedStyle(el).whiteSpace") == "nowrap"

    page.check("th.select input[data-select-all=bulk]")
    boxes = page.locator("input[name=ids][form=bulk]")
    assert boxes.count() == 3 and all(boxes.nth(i).is_checked() for i in range(3))
    assert page.locator("[data-selected-count=bulk]").inner_text().startswith("3")
    page.select_option("#bulk-action", "status:triaged")
    page.click(f"#bulk button:has-text('{WORDS[lang]['continue']}')")
    page.wait_for_url(re.compile(r"/incidents/bulk$"))
    assert page.locator(".bulk-count").get_attribute("data-count") == "3"
    assert "3" in page.locator(".bulk-count").inner_text()
    page.fill("#f-note", "weekly triage")
    page.click("#bulk-do")
    page.wait_for_url(re.compile(r"/incidents$"))
    assert "3" in page.locator(".flash").inner_text()
    statuses = page.locator("#incidents-list tbody td.status").all_inner_texts()
    assert statuses == [WORDS[lang]["status"]] * 3
    with app.state.sessionmaker() as s:
        assert set(s.scalars(select(Incident.status).where(Incident.id.in_(cases)))) == {"triaged"}
    assert errors == []
