"""Correlation: a value's page and the "seen in" lines, within the reader's tenancy and TLP, with
the common-value cap of rules/correlation.yaml."""

from __future__ import annotations

import pytest

from commonwatch.access import services as access
from commonwatch.access.models import User
from commonwatch.db import session_scope
from commonwatch.errors import Invalid
from commonwatch.intel import correlation
from tests.conftest import sign_in
from tests.intel.correlation_data import DOMAIN, VALUE, arrange


@pytest.fixture
def seen(app, world, clock):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        s.info["clock"] = clock
        return arrange(s, world, clock)


def _principal(session, world, who):
    return access.principal_for(session, session.get(User, world.ids[f"user_{who}"]))


def test_counts_and_lists_stay_within_the_readers_tenancy_and_tlp(app, world, seen):
    subject = correlation.subject_of(VALUE)
    with app.state.sessionmaker() as s:
        a = correlation.correlate(s, _principal(s, world, "a"), subject, common_events=1000)
        b = correlation.correlate(s, _principal(s, world, "b"), subject, common_events=1000)
        staff = correlation.correlate(s, _principal(s, world, "coordinator"), subject, common_events=1000)
    # A: its five events (one names the value as destination only), its incident, its task, the GREEN indicator.
    assert a.events == 5 and sorted(a.event_ids) == sorted(seen.a_events)
    assert [i.id for i in a.incidents] == [seen.incident_a]
    assert [i.name for i in a.indicators] == ["Shared C2 green"]  # never B's TLP:RED indicator
    assert [t.title for t in a.tasks] == [f"Block {VALUE} at the edge"]
    assert a.line() == "seen in 1 incident, 1 indicator, 5 events"
    # B: its own three events and incident; none of A's.
    assert b.events == 3 and sorted(b.event_ids) == sorted(seen.b_events)
    assert [i.id for i in b.incidents] == [seen.incident_b]
    assert "SECRET-B red indicator" in [i.name for i in b.indicators]  # B authored it
    assert all("Block" not in t.title for t in b.tasks)
    # The centre: every tenant's events and incidents, but a RED indicator only for its named recipients.
    assert staff.events == 8 and {i.id for i in staff.incidents} == {seen.incident_a, seen.incident_b}
    assert "SECRET-B red indicator" not in [i.name for i in staff.indicators]


def test_the_page_shows_only_what_the_reader_may_see(client, world, seen):
    sign_in(client, world.users["a"])
    page = client.get("/correlate", params={"value": VALUE})
    assert page.status_code == 200
    assert "seen in 1 incident, 1 indicator, 5 events" in page.text
    assert "Shared C2 green" in page.text and "Alpha sees the C2" in page.text
    assert "SECRET-B" not in page.text
    domain = client.get("/correlate", params={"value": DOMAIN.upper()})  # normalised: lower case
    assert "seen in 1 incident, 0 indicators, 1 event" in domain.text and "SECRET-B" not in domain.text
    # The lines beside an event, an indicator and an incident, linked to the value's page.
    for path in (f"/events/{seen.a_events[0]}", f"/intel/indicators/{seen.indicator_green}",
                 f"/incidents/{seen.incident_a}"):
        text = client.get(path).text
        assert f'href="/correlate?value={VALUE}"' in text, path
        assert "seen in 1 incident, 1 indicator, 5 events" in text, path
        assert "SECRET-B" not in text, path


def test_a_network_finds_the_addresses_inside_it(client, world, seen):
    sign_in(client, world.users["a"])
    page = client.get("/correlate", params={"value": "198.51.100.0/24"})
    assert "seen in 1 incident, 1 indicator, 5 events" in page.text and "SECRET-B" not in page.text


def test_a_common_value_is_counted_not_listed(app, client, world, seen):
    rules = app.state.settings.data_dir / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    shipped = correlation.rules_path("correlation.yaml", None).read_text(encoding="utf-8")
    (rules / "correlation.yaml").write_text(shipped.replace("value: 1000", "value: 4"), encoding="utf-8")
    sign_in(client, world.users["coordinator"])
    page = client.get("/correlate", params={"value": VALUE})
    assert 'id="common"' in page.text and 'id="events"' not in page.text
    assert "seen in 2 incidents, 1 indicator, 8 events (common value)" in page.text  # incidents still found
    (rules / "correlation.yaml").write_text(shipped.replace("value: 1000", "value: many"), encoding="utf-8")
    with pytest.raises(Invalid) as err:
        correlation.correlation_settings(app.state.settings.data_dir)
    assert "common_events.value" in str(err.value)


def test_bad_values_are_refused_naming_the_field(client, world):
    sign_in(client, world.users["a"])
    bad = client.get("/correlate", params={"value": "not a value at all!"})
    assert bad.status_code == 422 and 'id="err-value"' in bad.text
    assert client.get("/correlate").status_code == 200  # the empty form


def test_chinese_page(client, world, seen):
    sign_in(client, world.users["a"])
    page = client.get(f"/lang/zh-CN?next=/correlate?value={VALUE}")
    assert "关联" in page.text and "见于 1 起网络安全事件、1 个指标、5 条事件" in page.text and "SECRET-B" not in page.text
