"""The seam holds: no module outside ``events/store/`` (and the migrations) imports the events
table's model or writes SQL against the table, so another store can stand behind the interface."""

from __future__ import annotations

import re
from pathlib import Path

import commonwatch

SRC = Path(commonwatch.__file__).parent
_IMPORT = re.compile(r"from commonwatch\.events\.models import [^\n]*\bEvent\b|"
                     r"from commonwatch\.events\.models import \(", re.MULTILINE)
_SQL = re.compile(r"\b(FROM|INTO|JOIN|UPDATE)\s+events\b")


def _outside_the_store() -> list[Path]:
    return [p for p in SRC.rglob("*.py")
            if not p.is_relative_to(SRC / "events" / "store") and not p.is_relative_to(SRC / "migrations")]


def test_no_module_outside_the_store_names_the_events_table():
    offenders = [str(p.relative_to(SRC)) for p in _outside_the_store()
                 if _IMPORT.search(p.read_text()) or _SQL.search(p.read_text())]
    assert offenders == []


def test_the_check_would_see_an_offender():
    assert _IMPORT.search("from commonwatch.events.models import Event\n")
    assert _SQL.search('sql = "SELECT id FROM events WHERE id > ?"')
    assert not _SQL.search("events = store.scan(...)  # read the events from the store")
