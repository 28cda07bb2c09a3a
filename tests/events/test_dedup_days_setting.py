"""The dedup window has one setting for both stores; the earlier ClickHouse-only name still works."""

from commonwatch.config import Settings


def test_one_window_for_both_stores(monkeypatch, tmp_path):
    monkeypatch.delenv("COMMONWATCH_EVENT_DEDUP_DAYS", raising=False)
    monkeypatch.delenv("COMMONWATCH_CLICKHOUSE_DEDUP_DAYS", raising=False)
    assert Settings(data_dir=tmp_path).event_dedup_days == 7
    monkeypatch.setenv("COMMONWATCH_CLICKHOUSE_DEDUP_DAYS", "2")
    assert Settings(data_dir=tmp_path).event_dedup_days == 2  # an existing configuration keeps its window
    monkeypatch.setenv("COMMONWATCH_EVENT_DEDUP_DAYS", "3")
    assert Settings(data_dir=tmp_path).event_dedup_days == 3  # the current name wins
