"""Every page each role reaches from the overview, in a real Chromium on the demo data: no console
error, no Content-Security-Policy violation, no failed request or HTTP error; no page wider than
the window at 1280 px or at a phone's 390 px, where the header keeps the role and sign-out and the
navigation folds into a menu; the navigation shows what the role can use, one entry current.

One server and one browser for the module; each role's crawl reuses one page."""

from __future__ import annotations

import shutil

import pytest

from commonwatch.clock import FrozenClock
from commonwatch.config import Settings, get_settings
from commonwatch.demo import DEMO_PASSWORD, load_demo
from commonwatch.runtime import Runtime
from tests.conftest import START
from tests.e2e.conftest import CHROMIUM_ARGS, LiveServer
from tests.e2e.crawl import Watcher, crawl

pytestmark = pytest.mark.browser

LIMIT = 200  # pages per role; the crawl must end before it
WIDE, NARROW = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
ROLES = {
    "admin": "admin@centre.example",
    "coordinator": "coordinator@centre.example",
    "constituent": "noc@demo-telecom.example",
    "partner": "liaison@cert-de.example",
}
#: What each role's navigation must and must not offer (paths).
NAV_MUST = {"coordinator": {"/", "/incidents", "/events", "/audit"}, "admin": {"/audit", "/admin/users"},
            "constituent": {"/", "/incidents", "/warnings"}, "partner": {"/shared-incidents", "/tasks"}}
NAV_MUST_NOT = {"partner": {"/datasec", "/crossborder", "/incidents", "/reports", "/cii/systems",
                            "/cii/assets", "/notify", "/audit", "/admin/users"},
                "constituent": {"/audit", "/admin/users", "/cooperation", "/notify"}}


@pytest.fixture(autouse=True)
def _own_event_store():
    """The module's server keeps one event store for all its tests (set up in ``site``)."""
    yield


@pytest.fixture(scope="module")
def site(tmp_path_factory, sqlite_template):
    """The demo on a real server: its URL."""
    root = tmp_path_factory.mktemp("layout")
    db_path = root / "commonwatch.db"
    shutil.copy(sqlite_template, db_path)
    mp = pytest.MonkeyPatch()
    mp.setenv("COMMONWATCH_EVENT_STORE_DIR", str(root / "event-store"))
    # a month of statistics is enough to draw every chart; the full year takes minutes on 2 cores
    from commonwatch.reports import demo as reports_demo

    mp.setattr(reports_demo, "DEMO_EVENTS", 2_000)
    get_settings.cache_clear()
    from commonwatch.app import create_app
    from commonwatch.db import make_engine

    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{db_path}", timezone="Asia/Shanghai",
                        log_format="text")
    clock = FrozenClock(START)
    engine = make_engine(settings.database_url)
    load_demo(Runtime(settings, clock))
    server = LiveServer(create_app(settings, clock=clock, engine=engine))
    url = server.start()
    yield url
    server.stop()
    engine.dispose()
    mp.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def chromium(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def signed_in(chromium, site, email, lang="en"):
    context = chromium.new_context(locale="en-US", timezone_id="Asia/Shanghai", viewport=WIDE)
    page = context.new_page()
    page.set_default_timeout(20_000)
    watcher = Watcher(page, site)
    page.goto(f"{site}/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/")
    page.goto(f"{site}/lang/{lang}?next=/")
    watcher.take()
    return context, page, watcher


def nav_state(page):
    return page.evaluate("""[...document.querySelectorAll('nav.mainnav a')].map(a =>
        [a.getAttribute('href'), a.getAttribute('aria-current')])""")


def layout_check(page, watcher, role):
    """Checks of one open page at both widths; returns a function for :func:`crawl`."""
    def check(visit):
        if (wide := watcher.too_wide()) is not None:
            visit.problems.append(f"at 1280 px: {wide}")
        current = [href for href, cur in nav_state(page) if cur == "page"]
        if len(current) > 1:
            visit.problems.append(f"{len(current)} navigation entries are current: {current}")
        if visit.url.split("?")[0] in {href for href, _c in nav_state(page)} and current != [visit.url.split("?")[0]]:
            visit.problems.append(f"its own navigation entry is not the current one (current: {current})")
        page.set_viewport_size(NARROW)
        if (narrow := watcher.too_wide()) is not None:
            visit.problems.append(f"at 390 px: {narrow}")
        for what, selector in (("the role", ".topbar .role"), ("sign-out", ".topbar form[action='/logout'] button"),
                               ("the menu button", "nav.mainnav .navtoggle")):
            found = page.locator(selector)
            box = found.bounding_box(timeout=1000) if found.count() == 1 and found.is_visible() else None
            if box is None:
                visit.problems.append(f"at 390 px {what} is not visible")
            elif box["x"] < 0 or box["x"] + box["width"] > NARROW["width"]:
                visit.problems.append(f"at 390 px {what} is past the screen's edge")
        page.set_viewport_size(WIDE)
        visit.problems += watcher.take()
    return check


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_of_the_role_is_clean_at_both_widths(chromium, site, role):
    context, page, watcher = signed_in(chromium, site, ROLES[role])
    try:
        visits = crawl(watcher, check=layout_check(page, watcher, role), limit=LIMIT)
    finally:
        context.close()
    bad = [f"{v.url}: {p}" for v in visits for p in v.problems]
    assert len(visits) > (8 if role == "partner" else 25), [v.url for v in visits]
    assert len(visits) < LIMIT, f"the crawl stopped at {LIMIT} pages: raise the bound"
    print(f"{role}: {len(visits)} pages", *(v.url for v in visits), sep="\n  ")
    assert not bad, f"{len(bad)} problems on {len(visits)} pages of the {role}:\n" + "\n".join(bad[:60])


@pytest.mark.parametrize("role", list(ROLES))
def test_the_navigation_fits_the_role(chromium, site, role):
    context, page, _watcher = signed_in(chromium, site, ROLES[role])
    try:
        offered = {href for href, _c in nav_state(page)}
        assert NAV_MUST[role] <= offered, (role, NAV_MUST[role] - offered)
        assert not (NAV_MUST_NOT.get(role, set()) & offered), (role, NAV_MUST_NOT[role] & offered)
        for href in sorted(offered):  # every entry opens, and it alone is current there
            assert page.goto(site + href).status == 200, href
            current = [h for h, cur in nav_state(page) if cur == "page"]
            assert current == [href], (href, current)
        # at a phone's width the menu opens and closes with the shipped script
        page.goto(site + "/")
        page.set_viewport_size(NARROW)
        first = page.locator("nav.mainnav .navitems a").first
        assert not first.is_visible()
        page.click("nav.mainnav .navtoggle")
        assert first.is_visible() and page.get_attribute("nav.mainnav .navtoggle", "aria-expanded") == "true"
        page.click("nav.mainnav .navtoggle")
        assert not first.is_visible()
    finally:
        context.close()


def test_a_page_outside_the_navigation_marks_no_entry(chromium, site):
    context, page, _watcher = signed_in(chromium, site, ROLES["coordinator"])
    try:
        page.goto(site + "/account")
        assert page.locator("nav.mainnav [aria-current]").count() == 0
        page.goto(site + "/cooperation/requests")
        assert [h for h, c in nav_state(page) if c == "page"] == ["/cooperation/requests"]
    finally:
        context.close()
