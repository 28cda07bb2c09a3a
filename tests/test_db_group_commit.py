"""``db.GroupCommit`` (TAXII POSTs use it): writers queued while one of them holds the turn are done
together in one batch, each gets its own result back, and a work that fails in a batch fails only
its own writer — the others are run again alone and succeed.

Not in the Makefile's CLOCK_SUITES: it touches no real clock, and it waits on threads."""

from __future__ import annotations

import threading
import time

import pytest

from commonwatch.db import GroupCommit


def _queued(gc: GroupCommit, n: int) -> None:
    """Wait until ``n`` writers are queued behind the one holding the turn."""
    while len(gc._queue) < n:
        time.sleep(0.005)


def test_writers_queued_behind_the_turn_share_one_batch_and_get_their_own_results():
    batches: list[list[str]] = []
    gate = threading.Event()

    def run_batch(works: list[str]) -> list[str]:
        if works == ["first"]:
            gate.wait()  # holds the turn until the others are queued
        batches.append(list(works))
        return [w.upper() for w in works]

    gc = GroupCommit(run_batch)
    results: dict[str, str] = {}

    def writer(name: str) -> None:
        results[name] = gc.submit(name)

    first = threading.Thread(target=writer, args=("first",))
    first.start()
    while not gc._turn.locked():
        time.sleep(0.005)
    others = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(5)]
    for t in others:
        t.start()
    _queued(gc, 5)
    gate.set()
    for t in [first, *others]:
        t.join()
    assert batches[0] == ["first"]
    assert len(batches) == 2 and sorted(batches[1]) == [f"w{i}" for i in range(5)]  # one batch, one commit
    assert results == {"first": "FIRST", **{f"w{i}": f"W{i}" for i in range(5)}}


def test_a_failing_work_fails_only_its_own_writer():
    gate = threading.Event()
    calls: list[list[str]] = []

    def run_batch(works: list[str]) -> list[str]:
        if works == ["first"]:
            gate.wait()
        calls.append(list(works))
        if "bad" in works:
            raise RuntimeError("disk full")
        return [w.upper() for w in works]

    gc = GroupCommit(run_batch)
    results: dict[str, object] = {}

    def writer(name: str) -> None:
        try:
            results[name] = gc.submit(name)
        except RuntimeError as exc:
            results[name] = exc

    first = threading.Thread(target=writer, args=("first",))
    first.start()
    while not gc._turn.locked():
        time.sleep(0.005)
    others = [threading.Thread(target=writer, args=(n,)) for n in ("a", "bad", "b")]
    for t in others:
        t.start()
    _queued(gc, 3)
    gate.set()
    for t in [first, *others]:
        t.join()
    assert results["first"] == "FIRST" and results["a"] == "A" and results["b"] == "B"
    assert isinstance(results["bad"], RuntimeError)
    assert sorted(calls[1]) == ["a", "b", "bad"] and sorted(map(tuple, calls[2:])) == [("a",), ("b",), ("bad",)]


def test_one_writer_alone_is_a_batch_of_one():
    gc = GroupCommit(lambda works: [len(works)])
    assert gc.submit("x") == 1
    with pytest.raises(ZeroDivisionError):
        GroupCommit(lambda works: [1 / 0]).submit("y")
