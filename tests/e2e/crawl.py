"""Walk the pages a signed-in user can reach by following links, in a real Chromium, and record what
goes wrong on each: console errors, Content-Security-Policy violations, failed or refused requests,
and a page wider than the window. Used by tests/e2e/test_layout_browser.py."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

#: Links that are not pages to look at: downloads, the API, the language switch, assets.
NOT_PAGES = re.compile(r"^/(api|static|taxii2|lang|logout|metrics|healthz)(/|$)|export|\.(pdf|csv|json|xml|stix|zip|"
                       r"png|svg|txt|ics|asc|gpg|eml|bin)$")
#: Query keys that only page or sort a list: one of their values is enough.
PAGING_KEYS = {"before", "after", "cursor", "page", "offset", "sort", "order", "dir"}

#: Records the page's CSP violations from its first byte (init scripts run before the page's own).
CSP_LISTENER = """window.__csp = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' line ' + e.lineNumber));"""
LINKS = """[...document.querySelectorAll('a[href]')].filter(a => !a.hasAttribute('download'))
  .map(a => a.getAttribute('href'))"""
WIDTH = "[document.documentElement.scrollWidth, window.innerWidth]"
#: The widest elements reaching past the window's edge, for a failure message.
WIDER = """(w => {
  const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') { return true; } } return false; };
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > w + 1 && !clipped(e)).slice(0, 3)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' '
      + Math.round(e.getBoundingClientRect().right) + 'px');
})(window.innerWidth)"""


def pattern(path: str, query: str) -> str:
    """The kind of page a link leads to: ids become ``{id}``, and a filtered list is one kind
    whatever its filters (``/incidents/{id}``, ``/events?``); paging keys do not count."""
    shape = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    keys = {k for k, _v in parse_qsl(query, keep_blank_values=True)} - PAGING_KEYS
    return shape + ("?" if keys else "")


def page_link(href: str, base: str) -> str | None:
    """A same-site page link as ``path?query`` (no fragment), or None for anything else."""
    parts = urlsplit(href)
    if parts.scheme and not href.startswith(base):
        return None
    if href.startswith(("mailto:", "tel:", "javascript:", "#")):
        return None
    path = parts.path or "/"
    if not path.startswith("/") or NOT_PAGES.search(path):
        return None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "format" and v != "html" for k, v in pairs):  # a PDF, CSV or STIX rendering of a page
        return None
    query = urlencode(pairs)
    return path + ("?" + query if query else "")


@dataclass
class Visit:
    url: str
    status: int
    html: bool = True
    problems: list[str] = field(default_factory=list)


class Watcher:
    """Listens to one Playwright page: console errors, uncaught exceptions, failed requests and
    answers >= 400 of any resource the page loads."""

    def __init__(self, page, base: str):
        self.page, self.base, self.events = page, base, []
        page.add_init_script(CSP_LISTENER)
        page.on("console", lambda m: m.type == "error" and self.events.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: self.events.append(f"page error: {e}"))
        # ERR_ABORTED is the browser cancelling what it no longer needs (a favicon still loading when
        # the crawl moves on), not a failure of the page; refused, reset and >= 400 answers still count.
        page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
                and self.events.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.events.append(f"HTTP {r.status}: {r.url}"))

    def take(self) -> list[str]:
        out, self.events = self.events, []
        return out

    def visit(self, link: str) -> Visit:
        """Open one page and collect what went wrong while it loaded."""
        self.take()
        try:
            response = self.page.goto(self.base + link, wait_until="load")
        except Exception as exc:  # a download, or a page that never loads
            return Visit(link, 0, False, [f"did not open as a page: {str(exc).splitlines()[0]}"])
        status = response.status if response else 0
        problems = self.take()
        html = bool(response) and "text/html" in (response.headers.get("content-type") or "")
        if html:
            problems += [f"CSP violation: {v}" for v in self.page.evaluate("window.__csp || []")]
        return Visit(link, status, html, problems)

    def links(self) -> list[str]:
        found = (page_link(h, self.base) for h in self.page.evaluate(LINKS))
        return [f for f in found if f]

    def too_wide(self) -> str | None:
        """None when the page fits the window's width, else the widths and the widest elements."""
        scroll, inner = self.page.evaluate(WIDTH)
        if scroll <= inner:
            return None
        return f"{scroll}px wide in a {inner}px window: {self.page.evaluate(WIDER)}"


def crawl(watcher: Watcher, start: str = "/", *, per_pattern: int = 1, limit: int = 150, check=None) -> list[Visit]:
    """Breadth-first over the links from ``start``: each kind of page (see :func:`pattern`) at most
    ``per_pattern`` times, ``limit`` pages in all; ``check(visit)`` runs on each HTML page while it
    is open and may add to ``visit.problems``."""
    seen, counts, visits = {start}, {}, []
    queue = deque([start])
    while queue and len(visits) < limit:
        link = queue.popleft()
        visit = watcher.visit(link)
        visits.append(visit)
        if visit.status >= 400 or visit.status == 0:
            visit.problems.append(f"HTTP {visit.status}")
            continue
        if not visit.html:
            continue
        if check is not None:
            check(visit)
        for found in watcher.links():
            shape = pattern(*(found.split("?", 1) + [""])[:2])
            if found in seen or counts.get(shape, 0) >= per_pattern:
                continue
            seen.add(found)
            counts[shape] = counts.get(shape, 0) + 1
            queue.append(found)
    return visits
