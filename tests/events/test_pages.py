"""The event pages in English and Chinese: search with filters, errors next to the field, keyset
paging, export links that keep the filters, the detail page, the NAV entry and the overview panels."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

from commonwatch.db import session_scope
from commonwatch.net import ip_key
from tests.conftest import START, sign_in
from tests.events.eventdata import event_row, insert_events, stored_ids

ZH = {"Accept-Language": "zh-CN"}


def _links(html: str, rel: str) -> list[str]:
    return [unescape(h) for h in re.findall(rf'<a href="([^"]+)" rel="{rel}"', html)]


def test_search_page_in_both_languages(client, world, events_of):
    events_of(120)
    en = client.get("/events", headers=world.auth("analyst"))
    assert en.status_code == 200
    assert "<h1>Events" in en.text and "120 matching" in en.text and 'href="/events"' in en.text
    assert 'class="tag tlp-amber-strict"' in en.text and 'class="tag critical"' in en.text
    zh = client.get("/events", headers={**world.auth("analyst"), **ZH})
    assert "<h1>事件" in zh.text and "120 条符合" in zh.text and "严重程度" in zh.text and "较早" in zh.text


def test_pages_through_results_keeping_the_filters(client, world, events_of):
    rows = events_of(400)
    headers = world.auth("admin")
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["time_source"], r["id"]), reverse=True)
                if r["classification_type"] == "scanner"]
    seen, url = [], "/events?type=scanner"
    while url:
        html = client.get(url, headers=headers).text
        seen.extend(int(i) for i in re.findall(r'<a href="/events/(\d+)">', html))
        older = _links(html, "next")
        url = older[0] if older else None
        if url:
            assert parse_qs(urlsplit(url).query)["type"] == ["scanner"]
    assert seen == expected
    newer = _links(html, "prev")
    assert newer and "type=scanner" in newer[0]
    back = client.get(newer[0], headers=headers).text
    assert re.findall(r'<a href="/events/(\d+)">', back)


def test_export_links_carry_the_filters_in_utc(client, world, events_of):
    events_of(60)
    html = client.get("/events", params={"from": "2026-11-25T09:30", "severity": "high", "ip": "198.51.100.0/24"},
                      headers=world.auth("admin")).text
    links = [unescape(h) for h in re.findall(r'href="(/api/v1/events/export[^"]+)"', html)]
    assert {parse_qs(urlsplit(h).query)["format"][0] for h in links} == {"csv", "json", "jsonl", "intelmq"}
    query = parse_qs(urlsplit(links[0]).query)
    # 09:30 in the viewer's zone (Asia/Shanghai) is 01:30 UTC; the API gets it with its offset.
    assert query["from"] == ["2026-11-25T01:30:00+00:00"]
    assert query["severity"] == ["high"] and query["ip"] == ["198.51.100.0/24"]
    exported = client.get(links[0], headers=world.auth("admin"))
    assert exported.status_code == 200


def test_bad_filters_show_the_reason_next_to_the_field(client, world):
    resp = client.get("/events", params={"ip": "300.1.1.1", "country": "China"}, headers=world.auth("admin"))
    assert resp.status_code == 422
    assert 'id="err-ip"' in resp.text and "300.1.1.1" in resp.text
    assert 'id="err-country"' in resp.text
    zh = client.get("/events", params={"ip": "300.1.1.1"}, headers={**world.auth("admin"), **ZH})
    assert "不是 IPv4 或 IPv6 地址或网段" in zh.text


def test_detail_page_shows_every_field_extra_the_org_and_neighbours(app, client, world, events_of):
    events_of(50)
    ip = "198.51.100.77"
    rows = [event_row(i, at=START - timedelta(hours=i), org_id=org, key_prefix="same-ip", source_ip=ip,
                      source_ip_bin=ip_key(ip)) for i, org in enumerate((world.org_a, world.org_a, world.org_a_unit,
                                                                        world.org_b))]
    with session_scope(app.state.sessionmaker, actor="test") as s:
        insert_events(s, rows)
        ids = stored_ids(s, rows)
    for r in rows:
        r["id"] = ids[r["event_key"]]
    row, same_ip = rows[0], rows[1:3]
    html = client.get(f"/events/{row['id']}", headers=world.auth("a")).text
    assert f"Event {row['id']}" in html and "<code>source.ip</code>" in html and "<code>event.key</code>" in html
    assert row["event_key"] in html
    assert "<code>extra.tag</code>" in html and "<code>extra.nested</code>" in html
    assert f'href="/organisations/{world.org_a}">Alpha Telecom</a>' in html
    shown = {int(i) for i in re.findall(r'<a href="/events/(\d+)">', html)}
    assert shown == {r["id"] for r in same_ip}
    assert "Bravo" not in html
    zh = client.get(f"/events/{row['id']}", headers={**world.auth("a"), **ZH}).text
    assert f"事件 {row['id']}" in zh and "全部字段" in zh and "附加信息" in zh


def test_detail_of_another_tenants_event_is_not_found(client, world, events_of):
    rows = events_of(40)
    b_row = next(r for r in rows if r["org_id"] == world.org_b and not r["partner_org_id"])
    assert client.get(f"/events/{b_row['id']}", headers=world.auth("a")).status_code == 404
    routed = next(r for r in rows if r["partner_org_id"] == world.partner and r["org_id"] == world.org_a_unit)
    html = client.get(f"/events/{routed['id']}", headers=world.auth("partner")).text
    assert "an organisation you do not see" in html and "Alpha Telecom" not in html


def test_constituent_search_shows_only_its_events_and_orgs(client, world, events_of):
    rows = events_of(80)
    html = client.get("/events", params={"limit": 50}, headers=world.auth("a")).text
    shown = {int(i) for i in re.findall(r'<a href="/events/(\d+)">', html)}
    own = {r["id"] for r in rows if r["org_id"] in (world.org_a, world.org_a_unit)}
    assert shown and shown <= own
    assert "Bravo" not in html and f"{len(own)} matching" in html


def test_nav_entry_and_overview_panels_signed_in(client, world, events_of):
    rows = events_of(90)
    sign_in(client, world.users["a"])
    home = client.get("/").text
    assert '<a href="/events"' in home
    own = [r for r in rows if r["org_id"] in (world.org_a, world.org_a_unit)]
    assert f"Events in the last 24 hours by type ({len(own)} in all)" in home
    assert "Events in the last 24 hours by severity" in home and "/events?from=" in home
    client.get("/lang/zh-CN")
    zh = client.get("/").text
    assert f"最近 24 小时事件（按类型，共 {len(own)} 条）" in zh and ">事件</a>" in zh


def test_the_list_sorts_by_its_columns_and_pages_keep_the_order_and_filters(client, world, events_of):
    rows = events_of(400)
    headers = world.auth("admin")
    ranks = ("info", "low", "medium", "high", "critical")
    html = client.get("/events", headers=headers).text
    assert 'aria-sort="descending" class="sortable time" data-sort="time"' in html
    hrefs = re.findall(r'<a href="([^"]+)">(?:Severity|Type|Feed)<', html)
    assert {parse_qs(urlsplit(unescape(h)).query)["sort"][0] for h in hrefs} == {"severity", "type", "feed"}
    url, seen = "/events?type=scanner&sort=severity&dir=asc", []
    expected = [r["id"] for r in sorted((r for r in rows if r["classification_type"] == "scanner"),
                                        key=lambda r: (ranks.index(r["severity"]), r["id"]))]
    first = client.get(url, headers=headers).text
    assert 'aria-sort="ascending" class="sortable" data-sort="severity"' in first
    assert 'name="sort" value="severity"' in first and 'name="dir" value="asc"' in first  # the filter form keeps it
    while url:
        page = client.get(url, headers=headers).text
        seen.extend(int(i) for i in re.findall(r'<a href="/events/(\d+)">', page))
        nxt = _links(page, "next")
        url = nxt[0] if nxt else None
        if url:
            q = parse_qs(urlsplit(url).query)
            assert q["sort"] == ["severity"] and q["dir"] == ["asc"] and q["type"] == ["scanner"]
    assert seen == expected
    prev = _links(page, "prev")
    assert prev and "sort=severity" in prev[0]
    bad = client.get("/events", params={"sort": "colour", "country": "China"}, headers=headers)
    assert bad.status_code == 422 and "colour" in bad.text and 'id="err-country"' in bad.text
    zh = client.get("/events?sort=type&dir=desc", headers={**headers, **ZH})
    assert zh.status_code == 200 and 'aria-sort="descending" class="sortable" data-sort="type"' in zh.text
