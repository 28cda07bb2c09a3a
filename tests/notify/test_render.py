"""The digest's summary: one row per type, its counts, and the events shown inline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pydantic import ValidationError

from commonwatch import i18n
from commonwatch.i18n import _
from commonwatch.notify.config import NotifySettings
from commonwatch.notify.render import CSV_FIELDS, build_digest, summarise
from commonwatch.web.templating import make_environment

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def events(rows: list[tuple[str, str, str, int, int]]) -> pl.DataFrame:
    """(type, severity, ip, minutes after T0, repeats) per event, in the delivery's order."""
    schema = {f: pl.String for f in CSV_FIELDS} | {"time.source": pl.Datetime("us", "UTC"),
                                                   "source.port": pl.Int64, "source.asn": pl.Int64,
                                                   "destination.port": pl.Int64}
    data = {f: [None] * len(rows) for f in CSV_FIELDS}
    data |= {"classification.type": [r[0] for r in rows], "severity": [r[1] for r in rows],
             "source.ip": [r[2] for r in rows], "time.source": [T0 + timedelta(minutes=r[3]) for r in rows],
             "tlp": ["AMBER"] * len(rows), "event.key": [f"k{i}" for i in range(len(rows))]}
    return pl.DataFrame(data, schema=schema).with_columns(
        pl.Series("repeats", [r[4] for r in rows], pl.Int64))


SAMPLE = events([
    ("scanner", "low", "192.0.2.1", 5, 0),
    ("infected-system", "medium", "192.0.2.2", 9, 2),
    ("infected-system", "high", "192.0.2.3", 7, 0),
    ("infected-system", "medium", "192.0.2.2", 1, 1),
    ("infected-system", "high", "192.0.2.4", 7, 0),
    ("scanner", "low", "192.0.2.1", 3, 0),
])


def test_one_row_per_type_worst_first_with_counts_hosts_and_repeats():
    summary = summarise(SAMPLE, 10)
    assert [(r["type"], r["count"], r["hosts"], r["severity"], r["repeats"]) for r in summary] == [
        ("infected-system", 4, 3, "high", 3), ("scanner", 2, 1, "low", 0)]


def test_examples_are_the_worst_then_the_earliest_and_ties_keep_the_delivery_order():
    first = summarise(SAMPLE, 3)[0]["examples"]
    # Both "high" events share a time: the one listed first in the delivery comes first.
    assert [(e["severity"], e["source.ip"]) for e in first] == [
        ("high", "192.0.2.3"), ("high", "192.0.2.4"), ("medium", "192.0.2.2")]
    assert first[2]["time.source"] == T0 + timedelta(minutes=1)
    assert set(first[0]) == set(SAMPLE.columns)


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_no_inline_events_leaves_the_summary_and_points_to_the_attachment(language):
    assert all(r["examples"] == [] for r in summarise(SAMPLE, 0))
    digest = build_digest(make_environment(), delivery_id=7, language=language, events=SAMPLE, centre="CERT",
                          centre_zh="CERT", org_name="Org", org_name_local="", timezone="UTC",
                          base_url="https://cert.example", attach_intelmq=False, inline_per_type=0)
    assert "192.0.2." not in digest.text
    assert digest.text.count("  - ") == 0
    with i18n.use_language(language):
        for n in (4, 2):
            assert _("... and {n} more in the attachment.").format(n=n) in digest.text
    assert digest.count == 6
    assert digest.csv.count(b"\r\n") == 7  # header + every event, whatever is shown inline


def test_a_negative_number_of_inline_events_is_refused():
    with pytest.raises(ValidationError, match="inline_events_per_type"):
        NotifySettings(inline_events_per_type=-1)
