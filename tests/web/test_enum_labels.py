"""Every enumeration value on every page is translated: render each GET page in zh-CN as a
coordinator, a constituent and a partner (with every capability's seeded objects), and fail on a
registered code that reaches the visible text as it is. Every registered code has a Chinese label.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.routing import APIRoute

from commonwatch import capabilities, i18n, labels
from tests.test_tenancy import _fill, tenancy  # noqa: F401  (the fixture: every capability's seeds)

#: Elements whose text is deliberately raw (identifiers, code, machine values shown as such).
#: Routes that send files, not pages (the seeded attachment's blob lives outside the app's data folder).
DOWNLOADS = re.compile(r"/attachments/\{|\.(csv|pdf|json|xml|txt)$|/export|/download")
#: Documents written in both languages on purpose (the reports to authorities carry English beside
#: each Chinese term, "计时中 / running"): they are not zh-CN pages.
BILINGUAL = {"/incidents/{incident_id}/report/initial", "/incidents/{incident_id}/report/summary"}
CJK = re.compile(r"[\u3400-\u9fff]")
RAW_ELEMENTS = {"code", "pre", "script", "style", "kbd", "samp"}
#: Codes that are also the text people expect to read in Chinese pages: proper names and standard
#: marks (TLP labels are printed as the standard writes them; country codes; protocol names).
SHOWN_AS_IS = re.compile(r"^(TLP:.*|[A-Z]{2}|[A-Z]+-\d+|[A-Z0-9]{2,8})$")
#: The seeded free text names things "SECRET-B <word>" ("SECRET-B indicator"): a name, not a code.
SEEDED_NAME = re.compile(r"SECRET-B[\w-]* \w+")


class VisibleText(HTMLParser):
    """The text a reader sees: element text, not attributes, without code/pre blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._raw = 0

    def handle_starttag(self, tag, attrs):
        if tag in RAW_ELEMENTS:
            self._raw += 1

    def handle_endtag(self, tag):
        if tag in RAW_ELEMENTS and self._raw:
            self._raw -= 1

    def handle_data(self, data):
        if not self._raw:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def _page_paths(app) -> list[str]:
    out = []
    mounted = [m.router for _c, m in capabilities.parts("pages")]
    for router in mounted:
        for route in router.routes:
            if (isinstance(route, APIRoute) and "GET" in route.methods and not DOWNLOADS.search(route.path)
                    and route.path not in BILINGUAL):
                out.append(route.path)
    return sorted(set(out))


def _labels_in(language: str) -> dict[tuple[str, str], str]:
    with i18n.use_language(language):
        return {(kind, code): labels.label(code, kind) for kind, values in labels.registry().items() for code in values}


def _checked_codes() -> dict[str, re.Pattern]:
    """Registered codes worth looking for: those whose Chinese label is not the code itself."""
    out = {}
    for (_kind, code), zh in _labels_in("zh-CN").items():
        if SHOWN_AS_IS.match(code) or zh == code:
            continue
        out[code] = re.compile(r"(?<![\w:/.@-])" + re.escape(code) + r"(?![\w:/@-])")
    return out


def untranslated_codes(text: str, patterns: dict[str, re.Pattern]) -> set[str]:
    return {code for code, pattern in patterns.items() if pattern.search(text)}


def test_every_registered_code_has_a_chinese_label():
    english = _labels_in("en")
    missing = [f"{kind}.{code} {english[kind, code]!r} -> {zh!r}" for (kind, code), zh in _labels_in("zh-CN").items()
               if zh == english[kind, code] and not CJK.search(zh) and not SHOWN_AS_IS.match(zh)]
    assert not missing, missing[:40]
    assert len(labels.registry()) >= 20


def test_one_enumeration_name_per_capability():
    """The registry refuses an enumeration two capabilities declare (one would silently win)."""
    owners: dict[str, list[str]] = {}
    for cap, module in capabilities.parts("labels"):
        for name in module.ENUMS:
            owners.setdefault(name, []).append(cap)
    assert all(len(v) == 1 for v in owners.values()), owners


def test_the_checker_finds_a_raw_code():
    patterns = {"window_open": re.compile(r"(?<![\w:/.@-])window_open(?![\w:/@-])")}
    assert untranslated_codes(visible_text("<p>需要处理: window_open</p>"), patterns) == {"window_open"}
    assert not untranslated_codes(visible_text("<p><code>window_open</code> <input value='window_open'></p>"),
                                  patterns)


def _rename_free_text(app) -> None:
    """The test world names its users after their roles ("coordinator user") and its tokens and
    indicator sources "test" (an RSIT class code): free text, not enumeration values, so give them
    names no code is spelt like."""
    from sqlalchemy import update

    from commonwatch.access.models import ApiToken, User
    from commonwatch.db import session_scope
    from commonwatch.intel.models import Indicator, IntelObject

    with session_scope(app.state.sessionmaker, actor="test") as session:
        for user in session.query(User).all():
            user.name = f"Person {user.id}"
        session.execute(update(ApiToken).values(name="Laptop"))
        for model in (Indicator, IntelObject):
            session.execute(update(model).values(source="Partner feed"))


@pytest.mark.parametrize("who", ["coordinator", "b", "partner"])
def test_no_untranslated_enumeration_on_any_zh_cn_page(app, client, world, tenancy, who):  # noqa: F811
    _rename_free_text(app)
    patterns = _checked_codes()
    headers = {**world.auth(who), "Accept-Language": "zh-CN"}
    leaks, rendered = [], 0
    for path in _page_paths(app):
        url = _fill(path, {**tenancy, "org_id": world.org_b})
        if url is None:
            continue
        resp = client.get(url, headers=headers, follow_redirects=False)
        if resp.status_code != 200 or "text/html" not in resp.headers.get("content-type", ""):
            continue
        rendered += 1
        text = SEEDED_NAME.sub(" ", " ".join(visible_text(resp.text).split()))
        for code in sorted(untranslated_codes(text, patterns)):
            at = patterns[code].search(text).start()
            leaks.append(f"{url}: {code!r} in …{text[max(0, at - 50):at + 50]}…")
    assert rendered > 5
    assert not leaks, f"{who}: untranslated enumeration values:\n" + "\n".join(leaks)
