"""The list helper on real SQLite and PostgreSQL: every sort key both ways, paged forward and back
by keyset, stays in one stable (key, id) order across ties; bad parameters are refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, case, create_engine, select
from sqlalchemy.orm import Session

from commonwatch.errors import Invalid
from commonwatch.web.listing import (
    ListSpec,
    decode_cursor,
    encode_cursor,
    list_page,
    parse_bulk_ids,
    parse_list_query,
)

META = MetaData()
ROWS = Table("listing_probe", META, Column("id", BigInteger, primary_key=True), Column("name", String(20)),
             Column("level", String(10)), Column("seen", DateTime(timezone=True)), Column("n", Integer),
             Column("tenant", Integer))
RANK = case({"low": 1, "medium": 2, "high": 3}, value=ROWS.c.level, else_=0)
SPEC = ListSpec(path="/probe", id_column=ROWS.c.id, default_sort="seen", filters=("q", "tenant"), per_page=7,
                sorts={"seen": ROWS.c.seen, "name": ROWS.c.name, "level": RANK, "n": ROWS.c.n})
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
LEVELS = ("low", "medium", "high")


def _rows() -> list[dict]:
    # Few distinct values per key, so most rows tie with others and only the id tells them apart.
    return [{"id": i, "name": f"name-{i % 4}", "level": LEVELS[i % 3], "seen": T0 + timedelta(minutes=i % 5),
             "n": (i * 7) % 3, "tenant": 1 if i % 6 else 2} for i in range(1, 41)]


@pytest.fixture
def probe(any_db_url):
    engine = create_engine(any_db_url)
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(ROWS.insert(), _rows())
    with Session(engine) as s:
        yield s
    META.drop_all(engine)
    engine.dispose()


def _expected(key: str, descending: bool, rows: list[dict]) -> list[int]:
    value = {"seen": lambda r: r["seen"], "name": lambda r: r["name"], "n": lambda r: r["n"],
             "level": lambda r: LEVELS.index(r["level"]) + 1}[key]
    return [r["id"] for r in sorted(rows, key=lambda r: (value(r), r["id"]), reverse=descending)]


def _walk(session, stmt, params: dict) -> tuple[list[list[int]], list]:
    pages, lists = [], []
    while True:
        lst = list_page(session, stmt, SPEC, parse_list_query(SPEC, params))
        pages.append([r[0] for r in lst.items])
        lists.append(lst)
        if not lst.next_cursor:
            return pages, lists
        params = {**params, "cursor": lst.next_cursor}
        params.pop("before", None)


@pytest.mark.parametrize("key", sorted(SPEC.sorts))
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_every_sort_key_pages_in_one_stable_order_both_ways(probe, key, direction):
    stmt = select(ROWS)
    pages, lists = _walk(probe, stmt, {"sort": key, "dir": direction})
    walked = [i for page in pages for i in page]
    assert walked == _expected(key, direction == "desc", _rows())
    assert [len(p) for p in pages] == [7] * 5 + [5]
    assert all(lst.total == 40 for lst in lists)
    # Back from the last page by the "previous" cursors: the very same pages, in reverse.
    back, lst = [], lists[-1]
    while lst.prev_cursor:
        lst = list_page(probe, stmt, SPEC, parse_list_query(SPEC, {"sort": key, "dir": direction,
                                                                   "before": lst.prev_cursor}))
        back.append([r[0] for r in lst.items])
    assert back == pages[-2::-1]
    assert lst.prev_cursor is None  # the first page again: nothing before it


def test_the_default_order_is_newest_first_and_filters_ride_in_every_link(probe):
    stmt = select(ROWS).where(ROWS.c.tenant == 1)
    params = {"tenant": "1", "q": "x y", "junk": "dropped"}
    lst = list_page(probe, stmt, SPEC, parse_list_query(SPEC, params))
    tenant_rows = [r for r in _rows() if r["tenant"] == 1]
    assert [r[0] for r in lst.items] == _expected("seen", True, tenant_rows)[:7]
    assert lst.total == len(tenant_rows)
    assert lst.self_link == "/probe?q=x+y&tenant=1"
    assert lst.sort_link("seen") == "/probe?q=x+y&tenant=1&sort=seen&dir=asc"  # sorted by it: turn round
    assert lst.sort_link("name") == "/probe?q=x+y&tenant=1&sort=name&dir=desc"
    assert lst.sort_state("seen") == "descending" and lst.sort_state("name") == "none"
    assert lst.next_link.startswith("/probe?q=x+y&tenant=1&cursor=")
    assert lst.prev_link is None and lst.first_link is None
    asc = list_page(probe, stmt, SPEC, parse_list_query(SPEC, {**params, "sort": "name", "dir": "asc"}))
    assert asc.sort_state("name") == "ascending"
    assert "sort=name&dir=asc&cursor=" in asc.next_link
    assert asc.hidden_order == {"sort": "name", "dir": "asc"}


def test_a_selection_of_several_entities_comes_back_as_tuples(probe):
    lst = list_page(probe, select(ROWS.c.id, ROWS.c.name), SPEC, parse_list_query(SPEC, {"sort": "name"}))
    assert lst.items[0] == (lst.items[0][0], lst.items[0][1]) and len(lst.items[0]) == 2


def test_an_empty_list_has_no_links(probe):
    lst = list_page(probe, select(ROWS).where(ROWS.c.tenant == 99), SPEC, parse_list_query(SPEC, {}))
    assert lst.items == [] and lst.total == 0 and lst.next_link is None and lst.prev_link is None


def test_bad_parameters_are_refused_by_name():
    with pytest.raises(Invalid) as exc:
        parse_list_query(SPEC, {"sort": "password", "dir": "sideways", "cursor": "not-a-cursor"})
    assert set(exc.value.by_field()) == {"sort", "dir", "cursor"}
    with pytest.raises(Invalid) as exc:
        parse_list_query(SPEC, {"cursor": encode_cursor(1, 2), "before": encode_cursor(1, 2)})
    assert set(exc.value.by_field()) == {"before"}


@pytest.mark.parametrize("value", [T0, "name-3", 7, 2.5, "混合 text"])
def test_cursors_round_trip(value):
    assert decode_cursor(encode_cursor(value, 42)) == (value, 42)


@pytest.mark.parametrize("token", ["", "e30", encode_cursor("x", 1)[:-3] + "!!!", "WyJ0Iiwibm8iLDFd"])
def test_forged_cursors_are_refused(token):
    with pytest.raises(Invalid):
        decode_cursor(token)


def test_bulk_ids_are_checked():
    assert parse_bulk_ids(["3", "1", "3"]) == [3, 1]
    for bad in ([], ["1", "x"], ["0"], ["-4"], [str(i) for i in range(1, 502)]):
        with pytest.raises(Invalid) as exc:
            parse_bulk_ids(bad)
        assert "ids" in exc.value.by_field()
