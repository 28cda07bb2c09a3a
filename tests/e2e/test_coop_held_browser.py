"""In a real Chromium, in English and in Chinese: a coordinator finds the partners' reports that could
not be read, sorts them, opens one, sees why it is held and the acknowledgement sent back, saves the
raw mail as a download (it is never shown as a page) and discards it with a reason; at 390 px the
pages do not scroll sideways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commonwatch.constituency import services as registry
from commonwatch.constituency.models import Organisation
from commonwatch.cooperation.reports import Mail, ingest_mails
from commonwatch.db import session_scope
from tests.conftest import PASSWORD
from tests.cooperation.mails import PARTNER_EMAIL, as_bytes, mail

pytestmark = pytest.mark.browser

WORDS = {"en": {"held": "Held", "discarded": "Discarded", "ack": "acknowledgement", "title": "Reports from partners"},
         "zh-CN": {"held": "已保留", "discarded": "已弃置", "ack": "回执", "title": "合作伙伴报告"}}
WIDTH = "[document.documentElement.scrollWidth, window.innerWidth]"


@pytest.fixture
def held(app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        registry.add_contact(s, s.get(Organisation, world.partner), {"email": PARTNER_EMAIL, "role": "security"},
                             clock.now())
    garbled = json.dumps({"IODEF-Document": {"Incident": [{"ReportTime": "2026-11-24T08:00:00Z"}]}})
    rows = ingest_mails(app.state.engine, app.state.sessionmaker, [
        Mail(as_bytes(mail(garbled, subject="Incident batch 7")), "api"),
        Mail(as_bytes(mail("<script>document.title='owned'</script> " + "x" * 4000, subject="big")), "api"),
    ], clock, app.state.settings.data_dir)
    assert {r.status for r in rows} == {"held"}
    return [r.id for r in rows]


def _sign_in(page, url, email):
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_held_reports_in_chromium(live_url, page, world, held, lang):
    words = WORDS[lang]
    _sign_in(page, live_url, world.users["coordinator"])
    page.goto(f"{live_url}/lang/{lang}?next=/cooperation/reports")
    assert words["title"] in page.inner_text("h1")
    assert page.is_visible("#held-notice")
    page.click("#held-notice a")
    page.wait_for_url("**/cooperation/reports?status=held")
    assert page.get_attribute(".list-count", "data-count") == "2"
    assert "lacks IncidentID" in page.inner_text("#reports")
    assert page.title() != "owned"
    # Sort by size, smallest first: the garbled IODEF (small) before the big text.
    page.click("th[data-sort=size] a")
    page.wait_for_load_state()
    if page.get_attribute("th[data-sort=size]", "aria-sort") != "ascending":
        page.click("th[data-sort=size] a")
        page.wait_for_load_state()
    ids = [int(x) for x in page.eval_on_selector_all("#reports tbody tr", "rows => rows.map(r => r.dataset.id)")]
    assert ids == held

    page.click(f"#reports a[href='/cooperation/reports/{held[0]}']")
    page.wait_for_url(f"**/cooperation/reports/{held[0]}")
    assert page.inner_text("#report-status") == words["held"]
    assert "IncidentID" in page.inner_text("#held-reason")
    assert words["ack"] in page.inner_text("#report-mails")
    with page.expect_download() as info:
        page.click("#download-raw")
    download = info.value
    assert download.suggested_filename == f"partner-report-{held[0]}.eml"
    assert b"Incident batch 7" in Path(download.path()).read_bytes()

    page.set_viewport_size({"width": 390, "height": 800})
    scroll, inner = page.evaluate(WIDTH)
    assert scroll <= inner, (scroll, inner)
    page.fill("#discard-form #f-reason", "Duplicate of a report sent by phone")
    page.click("#discard-form button[type=submit]")
    page.wait_for_load_state()
    assert page.inner_text("#report-status") == words["discarded"]
    assert "Duplicate of a report sent by phone" in page.inner_text("#resolution")
    assert not page.is_visible("#discard-form")
    page.goto(f"{live_url}/cooperation/reports?status=held")
    scroll, inner = page.evaluate(WIDTH)
    assert scroll <= inner, (scroll, inner)
    assert page.get_attribute(".list-count", "data-count") == "1"
