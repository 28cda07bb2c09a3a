"""The Parquet writer's key set (fingerprints in sorted arrays) against a plain Python set."""

from __future__ import annotations

import numpy as np
import polars as pl

from commonwatch.events.store import key_index
from commonwatch.events.store.key_index import KeyIndex


def test_membership_matches_a_set_across_many_extends_and_merges():
    keys = pl.Series([f"k{i:05d}" for i in range(20_000)])
    index = KeyIndex.of([keys[:500], keys[500:1500]])
    stored = set(keys[:1500].to_list())
    for seed in range(3 * key_index.MAX_RUNS):  # several merges of the pending runs
        asked = keys.sample(1500, seed=seed)
        found = index.contains(asked)
        assert found.tolist() == [k in stored for k in asked.to_list()]
        new = asked.filter(~pl.Series(found)).unique()
        index = index.extended(new)
        stored |= set(new.to_list())
        assert len(index) == len(stored)
    assert not index.contains(pl.Series(["never stored", ""])).any()


def test_equal_first_hashes_are_told_apart_by_the_second():
    # Keys whose first hash is the same (a 64-bit collision, forced here): only the one stored is found.
    hi = np.array([5, 7, 7, 7, 9], dtype=np.uint64)
    lo = np.array([1, 2, 3, 4, 5], dtype=np.uint64)
    run = (hi, lo)
    asked_hi = np.array([7, 7, 7, 7, 8], dtype=np.uint64)
    asked_lo = np.array([2, 4, 3, 6, 2], dtype=np.uint64)
    assert key_index._found(run, asked_hi, asked_lo).tolist() == [True, True, True, False, False]


def test_an_empty_index_holds_nothing():
    assert KeyIndex.of([]).contains(pl.Series(["a"])).tolist() == [False]
    assert len(KeyIndex().extended(pl.Series(["a", "b"]))) == 2


def test_every_segment_s_keys_are_held():
    index = KeyIndex.of([pl.Series(["a", "b"]), pl.Series(["c"])])
    assert index.contains(pl.Series(["a", "b", "c", "d"])).tolist() == [True, True, True, False]


def test_an_index_holds_the_days_it_covers():
    index = KeyIndex.of([pl.Series(["a"])], ("2026-11-10", "2026-11-20"))
    assert index.holds(("2026-11-10", "2026-11-20")) and index.holds(("2026-11-12", "2026-11-13"))
    assert not index.holds(("2026-11-09", "2026-11-12")) and not index.holds(("2026-11-19", "2026-11-21"))
    assert not index.holds(None)  # every day
    assert KeyIndex.of([]).holds(None)
    assert index.extended(pl.Series(["b"])).covers == index.covers
