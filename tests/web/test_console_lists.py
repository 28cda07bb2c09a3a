"""The users, data assets and assessments lists through the shared list component, on SQLite and
PostgreSQL: every sort key both ways walks one stable (key, id) order by keyset, filters ride in
every link, counts, tenancy (a constituent lists only its own organisation's rows), and bad
parameters are refused by name."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

import pytest

from commonwatch.config import Settings
from commonwatch.datasec.models import DataAsset, TransferAssessment
from commonwatch.db import make_engine, session_scope


@pytest.fixture
def settings(tmp_path, any_db_url) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=any_db_url, timezone="Asia/Shanghai", log_format="text")


@pytest.fixture
def engine(any_db_url):
    eng = make_engine(any_db_url)
    yield eng
    eng.dispose()


def _ids(html: str, table: str) -> list[int]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', body)]


def _walk(client, headers, url: str, table: str) -> list[int]:
    seen = []
    while url:
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.text[:300]
        seen += _ids(page.text, table)
        nxt = re.findall(r'<a href="([^"]+)" rel="next"', page.text)
        url = unescape(nxt[0]) if nxt else None
    return seen


def _seed(app, world, clock, n=60):
    levels = ("core", "important", "general", "")
    with session_scope(app.state.sessionmaker, actor="test") as s:
        for i in range(n):
            org = world.org_a if i % 2 else world.org_b
            s.add(DataAsset(org_id=org, name=f"asset-{i % 7}", system="CRM", suggested_level=levels[i % 4],
                            grade_level=levels[(i + 1) % 4], leaves_country=bool(i % 3)))
            s.add(TransferAssessment(org_id=org, title=f"transfer-{i % 5}", transfer_date=date(2026, 1, 1)
                                     + timedelta(days=i % 9), year=2026, mechanism=("contract", "certification")[i % 2],
                                     rule_id="r", recipient="Partner GmbH",
                                     result={"rule": {"citation": {"en": "Art. 4", "zh": "第四条"}}}))
    with app.state.sessionmaker() as s:
        assets = [(a.id, a.org_id, a.name, a.suggested_level, a.grade_level, a.leaves_country)
                  for a in s.query(DataAsset)]
        transfers = [(t.id, t.org_id, t.title, t.transfer_date.isoformat(), t.mechanism) for t in s.query(TransferAssessment)]
    return assets, transfers


RANK = {"core": 3, "important": 2, "general": 1, "": 0}


def test_data_assets_and_assessments_sort_page_count_and_keep_tenancy(client, app, world, clock):
    assets, transfers = _seed(app, world, clock)
    staff = world.auth("coordinator")
    keys = {"name": lambda a: a[2], "org": lambda a: a[1], "suggested": lambda a: RANK[a[3]],
            "confirmed": lambda a: RANK[a[4]], "leaves": lambda a: int(a[5])}
    for key, fn in keys.items():
        for direction in ("asc", "desc"):
            want = [a[0] for a in sorted(assets, key=lambda a, f=fn: (f(a), a[0]), reverse=direction == "desc")]
            assert _walk(client, staff, f"/datasec?sort={key}&dir={direction}", "assets-list") == want, key
    page = client.get("/datasec", headers=staff).text
    assert 'data-count="60"' in page and 'action="/filters"' in page
    mine = [a[0] for a in sorted((a for a in assets if a[1] == world.org_a), key=lambda a: (a[2], a[0]))]
    assert _walk(client, world.auth("a"), "/datasec", "assets-list") == mine
    filtered = _walk(client, staff, f"/datasec?org_id={world.org_b}&q=asset-3", "assets-list")
    assert filtered == [a[0] for a in sorted((a for a in assets if a[1] == world.org_b and a[2] == "asset-3"),
                                             key=lambda a: (a[2], a[0]))]
    tkeys = {"date": lambda t: t[3], "title": lambda t: t[2], "org": lambda t: t[1], "mechanism": lambda t: t[4]}
    for key, fn in tkeys.items():
        for direction in ("asc", "desc"):
            want = [t[0] for t in sorted(transfers, key=lambda t, f=fn: (f(t), t[0]), reverse=direction == "desc")]
            assert _walk(client, staff, f"/crossborder?sort={key}&dir={direction}", "assessments-list") == want, key
    mine_t = {t[0] for t in transfers if t[1] == world.org_a}
    assert set(_walk(client, world.auth("a"), "/crossborder", "assessments-list")) == mine_t
    bad = client.get("/crossborder?sort=colour&org_id=x", headers=staff)
    assert bad.status_code == 422 and "colour" in bad.text


def test_the_users_list_sorts_filters_and_pages(client, app, world):
    from commonwatch.access.models import User

    headers = world.auth("admin")
    with app.state.sessionmaker() as s:
        users = [(u.id, u.email, u.name, u.role, u.active) for u in s.query(User)]
    order = ("admin", "coordinator", "analyst", "constituent", "partner", "auditor")
    for key, fn in {"email": lambda u: u[1], "name": lambda u: u[2], "role": lambda u: order.index(u[3]) + 1,
                    "active": lambda u: int(u[4])}.items():
        for direction in ("asc", "desc"):
            want = [u[0] for u in sorted(users, key=lambda u, f=fn: (f(u), u[0]), reverse=direction == "desc")]
            assert _walk(client, headers, f"/admin/users?sort={key}&dir={direction}", "users-list") == want, key
    constituents = _walk(client, headers, "/admin/users?role=constituent", "users-list")
    assert constituents == [u[0] for u in sorted((u for u in users if u[3] == "constituent"), key=lambda u: (u[1], u[0]))]
    page = client.get("/admin/users", headers=headers).text
    assert f'data-count="{len(users)}"' in page
    bad = client.get("/admin/users?role=king&sort=shoe", headers=headers)
    assert bad.status_code == 422 and "shoe" in bad.text
    assert client.get("/admin/users", headers=world.auth("a")).status_code == 403
