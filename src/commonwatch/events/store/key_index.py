"""The Parquet store writer's set of stored event keys: 128-bit fingerprints in sorted NumPy arrays.

The writer must know, for every batch, which of its ``event_key`` values are stored already. Held as
a frame of key strings, 10M keys took ~760 MB, and every batch's anti-join built a hash table over
all of them again (~1.3 s of CPU per batch at 10M keys): the ingest slowed as the store grew. Here
each key is two 64-bit hashes (Polars' ``hash`` with two seeds; the index lives only in the writing
process's memory, so the hash need not be stable across versions), kept sorted by the first: 16
bytes a key, and a batch is looked up with a binary search, costing the batch's size
times log of the store's.

Exactness: two different keys share both hashes with a chance of about n² / 2¹²⁹ (10⁻²⁵ at 10M
keys), far below the chance, which the store accepts already, that two observations' BLAKE2b-128
keys collide.

New keys are added as small sorted runs (``pending``) and merged into the main arrays once there
are :data:`MAX_RUNS` of them (by insertion: one copy of the arrays, no sort), so a batch does not
copy the whole index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

SEEDS = (0x636F_6D6D_6F6E, 0x7761_7463_6821)
#: Sorted runs of new keys kept beside the main arrays before they are merged into them.
MAX_RUNS = 8

Run = tuple[np.ndarray, np.ndarray]  # (first hash, sorted; second hash)


def fingerprints(keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two 64-bit hashes of each key."""
    keys = keys.cast(pl.String)
    return keys.hash(seed=SEEDS[0]).to_numpy(), keys.hash(seed=SEEDS[1]).to_numpy()


def sorted_prints(keys: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fingerprints of ``keys`` sorted by the first hash, and the order that sorted them: a batch
    looked up in several indexes (the ClickHouse writer holds one a day) is hashed and sorted once,
    then asked of each with :meth:`KeyIndex.holds`."""
    qhi, qlo = fingerprints(keys)
    order = np.argsort(qhi)
    return qhi[order], qlo[order], order


def _sorted_run(hi: np.ndarray, lo: np.ndarray) -> Run:
    order = np.argsort(hi, kind="stable")
    return hi[order], lo[order]


def _found(run: Run, qhi: np.ndarray, qlo: np.ndarray) -> np.ndarray:
    """Which queried fingerprints ``run`` holds; ``qhi`` sorted (a sorted search walks the
    arrays forward, far fewer cache misses than random probes)."""
    hi, lo = run
    out = np.zeros(len(qhi), dtype=bool)
    if not len(hi):
        return out
    left = np.searchsorted(hi, qhi, "left")
    inside = left < len(hi)
    hit = np.zeros(len(qhi), dtype=bool)
    hit[inside] = hi[left[inside]] == qhi[inside]
    out[hit] = lo[left[hit]] == qlo[hit]
    # Equal first hashes beside the first one: as rare as a 64-bit collision.
    more = hit & (left + 1 < len(hi))
    more[more] = hi[left[more] + 1] == qhi[more]
    for i in np.flatnonzero(more & ~out):
        right = int(np.searchsorted(hi, qhi[i], "right"))
        out[i] = bool((lo[left[i]:right] == qlo[i]).any())
    return out


def _merged(runs: list[Run]) -> Run:
    hi = np.concatenate([r[0] for r in runs])
    order = np.argsort(hi, kind="stable")  # sorted runs: the stable sort (timsort) merges them
    return hi[order], np.concatenate([r[1] for r in runs])[order]


def _inserted(main: Run, new: Run) -> Run:
    """``new`` (sorted, small) put into ``main`` (sorted, large) in place of a re-sort: one copy."""
    at = np.searchsorted(main[0], new[0]) + np.arange(len(new[0]))  # their places in the result
    rest = np.ones(len(main[0]) + len(new[0]), dtype=bool)
    rest[at] = False
    out = []
    for old, add in zip(main, new, strict=True):
        column = np.empty(len(rest), dtype=old.dtype)
        column[at] = add
        column[rest] = old
        out.append(column)
    return out[0], out[1]


@dataclass(frozen=True)
class KeyIndex:
    """Stored event keys, as fingerprints. Immutable: :meth:`extended` returns a new index, so one
    a reader holds never changes."""

    main: Run = field(default_factory=lambda: (np.empty(0, np.uint64), np.empty(0, np.uint64)))
    pending: tuple[Run, ...] = ()

    @classmethod
    def of(cls, parts: Iterable[pl.Series], size: int) -> KeyIndex:
        """The index of ``size`` keys given a segment's keys at a time (so the key strings of the
        whole store are never in memory at once, nor more than one copy of the arrays beside
        them while they are sorted)."""
        hi, lo = np.empty(size, np.uint64), np.empty(size, np.uint64)
        at = 0
        for keys in parts:
            h, low = _sorted_run(*fingerprints(keys))
            if at + len(h) > len(hi):  # more keys than announced (a manifest's count is wrong): grow
                hi, lo = (np.concatenate([a, np.empty(at + len(h) - len(a), np.uint64)]) for a in (hi, lo))
            hi[at:at + len(h)], lo[at:at + len(h)] = h, low
            at += len(h)
        hi, lo = hi[:at], lo[:at]
        order = np.argsort(hi, kind="stable")  # sorted runs, one a segment: timsort merges them
        hi = hi[order]
        lo = lo[order]
        return cls((hi, lo))

    def __len__(self) -> int:
        return len(self.main[0]) + sum(len(r[0]) for r in self.pending)

    def contains(self, keys: pl.Series) -> np.ndarray:
        """For each of ``keys``, whether it is stored (a boolean array)."""
        qhi, qlo = fingerprints(keys)
        order = np.argsort(qhi)
        qhi, qlo = qhi[order], qlo[order]
        found = _found(self.main, qhi, qlo)
        for run in self.pending:
            found |= _found(run, qhi, qlo)
        out = np.empty(len(found), dtype=bool)
        out[order] = found
        return out

    def holds(self, qhi: np.ndarray, qlo: np.ndarray) -> np.ndarray:
        """For query fingerprints sorted by the first hash (as :func:`sorted_prints` gives them),
        whether each is stored, in that sorted order."""
        found = _found(self.main, qhi, qlo)
        for run in self.pending:
            found |= _found(run, qhi, qlo)
        return found

    def extended(self, new: pl.Series) -> KeyIndex:
        """This index with the keys ``new``, none of them in it yet."""
        if not len(new):
            return self
        runs = (*self.pending, _sorted_run(*fingerprints(new)))
        if len(runs) < MAX_RUNS:
            return KeyIndex(self.main, runs)
        return KeyIndex(_inserted(self.main, _merged(list(runs))))
