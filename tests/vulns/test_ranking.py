from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from commonwatch.vulns import ranking


@pytest.mark.parametrize(("cvss", "expected"), [
    ([{"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}], (10.0, "critical")),
    ([{"version": "4.0", "vector": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:N"},
      {"version": "3.1", "vector": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}], (9.9, "critical")),  # v4 first
    ([{"version": "3.1", "vector": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"}], (1.8, "low")),
    ([{"version": "4.0", "vector": "CVSS:4.0/AV:Q"},                                          # refused: next one
      {"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}], (7.5, "high")),
    ([], (None, "unknown")),
])
def test_score(cvss, expected):
    s = ranking.score(cvss)
    assert (s.base, s.severity) == expected


def test_due_dates_from_rules_and_kev():
    rules = ranking.load()
    seen = datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert ranking.due(seen, "critical", None, rules) == date(2026, 12, 16)
    assert ranking.due(seen, "low", None, rules) == date(2027, 5, 30)
    assert ranking.due(seen, "critical", "2026-12-05", rules) == date(2026, 12, 5)   # KEV earlier
    assert ranking.due(seen, "critical", "2027-01-30", rules) == date(2026, 12, 16)


def test_rank_order_kev_cvss_epss_mlps():
    f = pl.DataFrame({"id": [1, 2, 3, 4, 5], "kev": [False, True, False, False, False],
                      "cvss_base": [9.8, 5.0, 9.8, 9.8, None], "epss": [0.1, 0.0, 0.9, 0.1, 0.99],
                      "mlps_level": [2, 1, 1, 4, 5]})
    assert ranking.rank(f)["id"].to_list() == [2, 3, 4, 1, 5]
