"""In a real browser, in English and in Chinese: sort the events list by a column and back, page
on in that order, select events and mark them false positive with one reason through the
confirmation page, and see no console error."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from commonwatch.db import session_scope
from commonwatch.notify.models import EventWarning
from tests.conftest import PASSWORD
from tests.incidents.conftest import insert_events

pytestmark = pytest.mark.browser
WORDS = {"en": {"continue": "Continue…", "reason": "Reason"}, "zh-CN": {"continue": "继续…", "reason": "原因"}}


def _sign_in(page, live_url, email, lang, path):
    page.goto(f"{live_url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")
    page.goto(f"{live_url}/lang/{lang}?next={path}")
    page.wait_for_url(re.compile(re.escape(path) + "$"))


def _watch(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_sort_events_by_source_and_back(page, live_url, world, app, clock, lang):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, world.org_a, 60, clock, start_ip=1)  # 198.51.100.1 .. .60, newest has .1
    errors = _watch(page)
    _sign_in(page, live_url, world.users["coordinator"], lang, "/events")

    def sources() -> list[str]:
        return [t.strip() for t in page.locator("#events-list tbody tr td:nth-child(5) code").all_inner_texts()]

    page.click("#events-list th[data-sort=source] a")
    page.wait_for_url(re.compile(r"sort=source&dir=desc"))
    assert page.locator("th[data-sort=source]").get_attribute("aria-sort") == "descending"
    first = sources()
    assert first[0] == "198.51.100.60" and len(first) == 50
    page.click("#events-list th[data-sort=source] a")
    page.wait_for_url(re.compile(r"sort=source&dir=asc"))
    assert sources()[:3] == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    page.click(".pager a[rel=next]")
    page.wait_for_url(re.compile(r"cursor="))
    assert sources() == [f"198.51.100.{i}" for i in range(51, 61)]
    assert page.locator("th[data-sort=source]").get_attribute("aria-sort") == "ascending"
    assert errors == []


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_select_events_and_mark_them_false_positive(page, live_url, world, app, clock, lang):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        ids = insert_events(s, world.org_a, 3, clock)
        for event_id in ids:
            s.add(EventWarning(org_id=world.org_a, event_id=event_id, obs_key=event_id, time_source=clock.now(),
                               classification_type="infected-system", severity="high", feed_name="demo-feed"))
    errors = _watch(page)
    _sign_in(page, live_url, world.users["a"], lang, "/events")
    page.check("th.select input[data-select-all=bulk]")
    assert page.locator("[data-selected-count=bulk]").inner_text().startswith("3")
    page.select_option("#bulk-action", "false-positive")
    page.click(f"#bulk button:has-text('{WORDS[lang]['continue']}')")
    page.wait_for_url(re.compile(r"/events/bulk$"))
    assert page.locator(".bulk-count").get_attribute("data-count") == "3"
    assert page.locator("label[for=f-comment]").inner_text().startswith(WORDS[lang]["reason"])
    page.fill("#f-comment", "scanner of our own")
    page.click("#bulk-do")
    page.wait_for_url(re.compile(r"/events$"))
    assert "3" in page.locator(".flash").inner_text()
    with app.state.sessionmaker() as s:
        rows = s.execute(select(EventWarning.status, EventWarning.comment)
                         .where(EventWarning.event_id.in_(ids))).all()
    assert {tuple(r) for r in rows} == {("false-positive", "scanner of our own")}
    assert errors == []
