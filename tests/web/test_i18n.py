"""Every English message has its Simplified Chinese translation, with the same placeholders;
the language follows the switch, then the browser."""

import re

import pytest

from commonwatch import i18n
from commonwatch.tools.messages import catalogue_folders, extract

PLACEHOLDER = re.compile(r"{(\w*)[^{}]*}")


def _all_messages() -> dict[str, list]:
    out: dict[str, list] = {}
    for folder in catalogue_folders():
        for msgid, where in extract(folder).items():
            out.setdefault(msgid, []).extend(where)
    return out


def test_every_message_is_translated():
    zh = i18n.translations("zh-CN")
    missing = {m: w[0] for m, w in _all_messages().items() if zh.gettext(m) == m}
    assert not missing, ("untranslated (run `make messages`, then translate each locale/zh_CN.po): "
                         + "; ".join(f"{w[0]}:{w[1]} {m!r}" for m, w in sorted(missing.items())[:40]))


def test_translations_keep_their_placeholders():
    zh = i18n.translations("zh-CN")
    bad = []
    for msgid in _all_messages():
        msgstr = zh.gettext(msgid)
        if sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(msgstr)):
            bad.append((msgid, msgstr))
    assert not bad, bad[:20]


@pytest.mark.parametrize(("header", "expected"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
    ("zh-TW", "zh-CN"),
    ("fr-FR, de;q=0.5", "en"),
    ("en;q=0.1, zh;q=0.9", "zh-CN"),
    ("", "en"),
    ("garbage;;q=x", "en"),
])
def test_accept_language(header, expected):
    assert i18n.negotiate(header) == expected


def test_pages_follow_accept_language_then_the_switch(anon):
    assert "登录" in anon.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    assert "Sign in" in anon.get("/login", headers={"Accept-Language": "en"}).text
    switched = anon.get("/lang/zh-CN?next=/login", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    assert "登录" in anon.get("/login", headers={"Accept-Language": "en"}).text


def test_language_switch_never_redirects_off_site(anon):
    for target in ("https://evil.example/", "//evil.example", "javascript:alert(1)"):
        resp = anon.get("/lang/en", params={"next": target}, follow_redirects=False)
        assert resp.headers["location"] == "/"


def test_one_translation_per_message_across_catalogues():
    """Catalogues are merged at start-up: a message translated two ways would show either."""
    from babel.messages.pofile import read_po

    seen: dict[str, dict[str, list[str]]] = {}
    for path in i18n.catalogue_files():
        with path.open("rb") as fh:
            for m in read_po(fh, locale="zh_CN"):
                if m.id and m.string:
                    seen.setdefault(m.id, {}).setdefault(m.string, []).append(path.parent.parent.name)
    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    assert not clashes, clashes
