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

Key files. Hashing every stored key again at a process's first write cost 2.8 s of CPU at 10M keys,
so beside each segment ``<gen>-<n>.parquet`` lies ``<gen>-<n>.keys`` (:func:`companion`): the
segment's fingerprints, sorted, written with the segment (under a temporary name, flushed, renamed
before the manifest names the segment) and never changed. A file is trusted only if its header
matches: the magic, the hash's identity (the Polars version and the fingerprints of fixed probe
strings as this process computes them, so a Polars upgrade or a hash that differs between machines
makes the file stale), the segment's row count, the body's length and its CRC-32. Otherwise
(missing, truncated, corrupt, stale) it is rebuilt from the segment's keys (:func:`load_run`).
The index holds only the days a batch's dedup window needs (``covers``), so its size is the
window's, not the store's.
"""

from __future__ import annotations

import functools
import logging
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

log = logging.getLogger(__name__)

SEEDS = (0x636F_6D6D_6F6E, 0x7761_7463_6821)
#: Sorted runs of new keys kept beside the main arrays before they are merged into them.
MAX_RUNS = 8

Run = tuple[np.ndarray, np.ndarray]  # (first hash, sorted; second hash)
#: Days held (ISO dates, inclusive), or None: every day.
Span = tuple[str, str] | None

SUFFIX = ".keys"
MAGIC = b"CWKEYS01"
#: Strings whose fingerprints, recorded in each key file, identify the hash function.
PROBES = ("commonwatch", "0123456789abcdef0123456789abcdef")
#: magic, row count, body CRC-32, Polars version (32 bytes), the probes' fingerprints; then the
#: first hashes, then the second hashes (little-endian uint64).
HEADER = struct.Struct(f"<8sQI4x32s{2 * len(PROBES)}Q")


def fingerprints(keys: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two 64-bit hashes of each key."""
    keys = keys.cast(pl.String)
    return keys.hash(seed=SEEDS[0]).to_numpy(), keys.hash(seed=SEEDS[1]).to_numpy()


def sorted_prints(keys: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fingerprints of ``keys`` sorted by the first hash, and the order that sorted them: a batch
    looked up in several indexes (the ClickHouse writer holds one a day) is hashed and sorted once,
    then asked of each with :meth:`KeyIndex.stored`."""
    qhi, qlo = fingerprints(keys)
    order = np.argsort(qhi)
    return qhi[order], qlo[order], order


def sorted_run(hi: np.ndarray, lo: np.ndarray) -> Run:
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
    #: The days whose stored keys are all held (None: every day).
    covers: Span = None

    @classmethod
    def of_runs(cls, runs: Iterable[Run], covers: Span = None) -> KeyIndex:
        """The index of the keys in ``runs`` (each sorted, one a segment), merged into one."""
        runs = list(runs)
        return cls(_merged(runs) if runs else cls().main, covers=covers)

    @classmethod
    def of(cls, parts: Iterable[pl.Series], covers: Span = None) -> KeyIndex:
        """The index of the keys given a segment's keys at a time."""
        return cls.of_runs((sorted_run(*fingerprints(keys)) for keys in parts), covers)

    def holds(self, span: Span) -> bool:
        """Whether every stored key of the days of ``span`` is in this index."""
        if self.covers is None:
            return True
        return span is not None and self.covers[0] <= span[0] and span[1] <= self.covers[1]

    def __len__(self) -> int:
        return len(self.main[0]) + sum(len(r[0]) for r in self.pending)

    def contains(self, keys: pl.Series) -> np.ndarray:
        """For each of ``keys``, whether it is stored (a boolean array)."""
        return self.contains_fingerprints(*fingerprints(keys))

    def contains_fingerprints(self, qhi: np.ndarray, qlo: np.ndarray) -> np.ndarray:
        """For each key given by its fingerprints, whether it is stored."""
        order = np.argsort(qhi)
        qhi, qlo = qhi[order], qlo[order]
        found = _found(self.main, qhi, qlo)
        for run in self.pending:
            found |= _found(run, qhi, qlo)
        out = np.empty(len(found), dtype=bool)
        out[order] = found
        return out

    def stored(self, qhi: np.ndarray, qlo: np.ndarray) -> np.ndarray:
        """For query fingerprints sorted by the first hash (as :func:`sorted_prints` gives them),
        whether each is stored, in that sorted order."""
        found = _found(self.main, qhi, qlo)
        for run in self.pending:
            found |= _found(run, qhi, qlo)
        return found

    def extended(self, new: pl.Series) -> KeyIndex:
        """This index with the keys ``new``, none of them in it yet."""
        return self.extended_fingerprints(*fingerprints(new))

    def extended_fingerprints(self, hi: np.ndarray, lo: np.ndarray) -> KeyIndex:
        """This index with the keys of fingerprints ``hi``, ``lo``, none of them in it yet."""
        if not len(hi):
            return self
        runs = (*self.pending, sorted_run(hi, lo))
        if len(runs) < MAX_RUNS:
            return KeyIndex(self.main, runs, self.covers)
        return KeyIndex(_inserted(self.main, _merged(list(runs))), covers=self.covers)


# --- key files ------------------------------------------------------------------------------------------

def companion(segment_file: str) -> str:
    """The key file of a segment (same folder, same stem)."""
    return segment_file.removesuffix(".parquet") + SUFFIX


@functools.cache
def identity() -> tuple[bytes, tuple[int, ...]]:
    """The hash function as this process has it: the Polars version and the probes' fingerprints."""
    hi, lo = fingerprints(pl.Series(PROBES))
    probes = tuple(int(v) for pair in zip(hi, lo, strict=True) for v in pair)
    return pl.__version__.encode()[:32].ljust(32, b"\0"), probes


def encoded(run: Run) -> bytes:
    """A key file's bytes for a sorted run."""
    body = run[0].astype("<u8").tobytes() + run[1].astype("<u8").tobytes()
    version, probes = identity()
    return HEADER.pack(MAGIC, len(run[0]), zlib.crc32(body), version, *probes) + body


def decoded(raw: bytes, rows: int) -> Run | None:
    """The run a key file holds, or None if it is not whole, not of this hash function or not of
    ``rows`` keys."""
    if len(raw) < HEADER.size:
        return None
    magic, count, crc, version, *probes = HEADER.unpack_from(raw)
    if magic != MAGIC or (version, tuple(probes)) != identity() or count != rows \
            or len(raw) != HEADER.size + 16 * count:
        return None
    body = memoryview(raw)[HEADER.size:]
    if zlib.crc32(body) != crc:
        return None
    hi = np.frombuffer(body, dtype="<u8", count=count).astype(np.uint64, copy=False)
    lo = np.frombuffer(body, dtype="<u8", count=count, offset=8 * count).astype(np.uint64, copy=False)
    return hi, lo


def write(segment_path: Path, run: Run, written: Callable) -> None:
    """Write the key file of the segment at ``segment_path`` (``written``: the store's durable
    temporary-name-then-rename context)."""
    final = segment_path.with_name(companion(segment_path.name))
    with written(final.with_name(f".{final.name}.tmp"), final) as tmp:
        tmp.write_bytes(encoded(run))


def load_run(segment_path: Path, rows: int, written: Callable) -> Run:
    """The sorted fingerprints of a segment's keys: from its key file if that is whole and current,
    else from the segment, writing the key file again."""
    path = segment_path.with_name(companion(segment_path.name))
    try:
        run = decoded(path.read_bytes(), rows)
    except FileNotFoundError:
        run, why = None, "missing"
    else:
        why = "not whole or stale"
    if run is not None:
        return run
    log.info("key file of %s %s: rebuilt from the segment", segment_path.name, why)
    run = sorted_run(*fingerprints(pl.read_parquet(segment_path, columns=["event_key"])["event_key"]))
    try:
        write(segment_path, run, written)
    except OSError as exc:  # (a read-only folder) the run is still right; the next process tries again
        log.warning("key file of %s not written: %s", segment_path.name, exc)
    return run
