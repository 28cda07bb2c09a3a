"""Moving the events table into the Parquet or the ClickHouse store (``commonwatch events migrate-store``).

Events are read from the table in id order, a batch at a time, and stored with their ids
(``append_stored`` of :class:`ParquetEventStore` and of ``ClickHouseEventStore``), so incident
links, ledger entries and warnings, which hold event ids, still resolve. Each batch is one
manifest commit (Parquet) or one insert (ClickHouse): a move killed at any point goes
on from the highest id the store holds, and a batch given twice is stored once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from commonwatch.access.principal import SYSTEM
from commonwatch.events.search import EventFilter
from commonwatch.events.store import COLUMN_TYPES, EventStore
from commonwatch.events.store.parquet import ParquetEventStore

if TYPE_CHECKING:
    from commonwatch.events.store.clickhouse import ClickHouseEventStore

#: Events read from the table and committed to the store at a time.
BATCH_ROWS = 100_000


@dataclass
class MoveResult:
    resumed_after: int = 0  # the highest id the store held when this run began
    moved: int = 0  # events this run stored
    batches: int = 0
    source_total: int = 0
    target_total: int = 0
    #: Each UTC day whose counts differ: (day, events in the table, events in the store).
    day_mismatches: list[tuple[str, int, int]] = field(default_factory=list)
    days: int = 0

    @property
    def matches(self) -> bool:
        return self.source_total == self.target_total and not self.day_mismatches


def per_day(store: EventStore) -> dict[str, int]:
    """Events per UTC day of ``time_source`` in ``store``."""
    return {str(row.key[0]): row.count for row in store.counts(SYSTEM, ["day"])}


def compare_counts(source: EventStore, target: EventStore, result: MoveResult) -> None:
    """Fill in the totals and the days whose counts differ between the two stores."""
    before, after = per_day(source), per_day(target)
    result.source_total, result.target_total = sum(before.values()), sum(after.values())
    result.days = len(before.keys() | after.keys())
    result.day_mismatches = [(day, before.get(day, 0), after.get(day, 0))
                             for day in sorted(before.keys() | after.keys())
                             if before.get(day, 0) != after.get(day, 0)]


def move_events(source: EventStore, target: ParquetEventStore | ClickHouseEventStore, *, batch_rows: int = BATCH_ROWS,
                on_batch: Callable[[MoveResult, int], None] | None = None) -> MoveResult:
    """Copy every event of ``source`` not yet in ``target``, in id order, then compare counts.

    ``on_batch(result, last_id)`` is called after each committed batch (progress output)."""
    result = MoveResult(resumed_after=target.latest_id(SYSTEM, EventFilter()))
    columns = [c for c in COLUMN_TYPES if c != "id"]
    last = result.resumed_after
    while True:
        batch = source.scan(SYSTEM, columns, after_id=last, limit=batch_rows)
        if not batch.height:
            break
        result.moved += target.append_stored(batch)
        result.batches += 1
        last = int(batch["id"].max())
        if on_batch is not None:
            on_batch(result, last)
    compare_counts(source, target, result)
    return result


def events_left_in_table(engine: Any, settings: Any) -> int:
    """Events in the database's ``events`` table past the highest id the configured store holds
    (0 when the table is the store): an installation that kept its events there before the
    columnar store became the default, and has yet to run ``commonwatch events migrate-store``.
    Counted up to :data:`COUNT_CAP`."""
    from commonwatch.events.store import COUNT_CAP, event_store

    if settings.event_store == "sql":
        return 0
    after = event_store(engine, settings=settings).latest_id(SYSTEM, EventFilter())
    return event_store(engine, "sql", settings).scan(SYSTEM, [], after_id=after, limit=COUNT_CAP).height
