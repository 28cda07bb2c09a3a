"""The organisation list is the list component: sorted by its columns both ways (A to Z first),
a count, filters kept in the sort links, a constituent sees only its own."""

from __future__ import annotations

import re

from tests.conftest import sign_in


def _names(html: str) -> list[str]:
    return re.findall(r'<tr data-id="\d+">\s*<td><a href="/organisations/\d+">([^<]+)</a>', html)


def test_sort_both_ways_count_and_tenancy(client, world):
    sign_in(client, world.users["coordinator"])
    page = client.get("/organisations")
    assert page.status_code == 200
    names = _names(page.text)
    assert names == sorted(names) and len(names) == 4 and 'data-count="4"' in page.text
    down = client.get("/organisations?sort=name&dir=desc")
    assert _names(down.text) == names[::-1]
    by_country = _names(client.get("/organisations?sort=country&dir=desc").text)
    assert by_country[0] == "CERT Partner DE"  # DE after CN, descending
    kept = client.get("/organisations?kind=cii-operator&sort=name&dir=asc").text
    assert _names(kept) == ["Bravo Grid SECRET-B"] and "kind=cii-operator&amp;sort=name&amp;dir=desc" in kept
    assert client.get("/organisations?sort=notes").status_code == 422
    sign_in(client, world.users["a"])
    assert "SECRET-B" not in client.get("/organisations?sort=name&dir=desc").text
