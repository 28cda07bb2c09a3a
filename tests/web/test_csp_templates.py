"""The pages' Content-Security-Policy (``style-src 'self'; script-src 'self'``) forbids inline styles,
inline scripts and ``on*=`` handlers: no template of any capability may contain one. The browser
crawl (tests/e2e/test_layout_browser.py) checks what the pages actually send."""

from __future__ import annotations

import re
from pathlib import Path

import commonwatch

SRC = Path(commonwatch.__file__).resolve().parent
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
TAG = re.compile(r"<([a-zA-Z][\w:-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
#: Templates that are never served under the policy, with why.
STANDALONE = {
    "reports/templates/report_file.html": "a self-contained report file written by `commonwatch reports`, "
                                          "opened from disk or mail, so its style travels inside it",
}
ATTR_NAME = re.compile(r"(?:^|\s)([a-zA-Z_:][\w:.-]*)\s*(?==|\s|$)")


def csp_problems(text: str) -> list[str]:
    """What in a template's text the policy would refuse: each as ``line N: reason``."""
    # Jinja expressions become blanks of the same length, so line numbers stay right and a
    # `{% if %}style="..."{% endif %}` still shows its attribute.
    bare = JINJA.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    problems = []
    for m in TAG.finditer(bare):
        name, attrs = m.group(1).lower(), m.group(2)
        line = bare.count("\n", 0, m.start()) + 1
        # attribute values are blanked so that words inside them are not taken for attributes
        names = {a.lower() for a in ATTR_NAME.findall(re.sub(r"\"[^\"]*\"|'[^']*'", " ", attrs))}
        if "style" in names:
            problems.append(f"line {line}: inline style= on <{name}>")
        problems += [f"line {line}: inline handler {a}= on <{name}>" for a in sorted(names)
                     if a.startswith("on") and len(a) > 2]
        if name == "script" and "src" not in names:
            problems.append(f"line {line}: inline <script> (give it a src in the capability's static folder)")
        if name == "style":
            problems.append(f"line {line}: inline <style> element (use the capability's static CSS)")
    return problems


def _templates() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.html")
                  if "templates" in p.parts and str(p.relative_to(SRC)) not in STANDALONE)


def test_no_template_breaks_the_content_security_policy():
    templates = _templates()
    assert len(templates) > 50  # every capability's templates are found
    found = [f"{p.relative_to(SRC)} {problem}" for p in templates for problem in csp_problems(p.read_text("utf-8"))]
    assert not found, "\n".join(found)


def test_standalone_templates_are_not_pages():
    """A template kept out of the scan must not be rendered by any page."""
    for name in STANDALONE:
        short = name.replace("/templates/", "/")
        for module in SRC.rglob("pages.py"):
            assert short not in module.read_text("utf-8"), f"{module.relative_to(SRC)} renders {short}"


def test_the_scanner_finds_each_kind():
    bad = """<div>
<label style="display:inline-block">x</label>
<a href="#" onclick="go()">go</a> <button {% if a > b %}onmouseover='x'{% endif %}>b</button>
<script>alert(1)</script><script src="/static/web/commonwatch.js" defer></script>
<style>p{}</style> <p title="style=red onclick=x">fine</p> <input name="online" value="on">
</div>"""
    assert csp_problems(bad) == [
        "line 2: inline style= on <label>",
        "line 3: inline handler onclick= on <a>",
        "line 3: inline handler onmouseover= on <button>",
        "line 4: inline <script> (give it a src in the capability's static folder)",
        "line 5: inline <style> element (use the capability's static CSS)",
    ]
