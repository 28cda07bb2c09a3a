"""Observation keys: a stable 64-bit hash of *what* was seen *where*, computed for a whole batch
at once with NumPy over the Arrow string buffer (no Python loop per event).

Two events are the same observation when they agree on classification type and identifier,
host (IP, name, URL), port and malware family, whatever their time or feed. The hash is defined
here (a polynomial hash over the UTF-8 bytes), not borrowed from a library whose hash may change
between versions, because the keys are stored.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

OBSERVATION_COLUMNS = ("classification_type", "classification_identifier", "source_ip", "source_port",
                       "source_fqdn", "source_url", "malware_name")
_BASE = np.uint64(1_099_511_628_211)  # FNV-1a 64-bit prime: odd, so multiplication is a bijection mod 2^64
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _power_table(n: int) -> np.ndarray:
    out = np.empty(max(n, 1), dtype=np.uint64)
    out[0] = 1
    with np.errstate(over="ignore"):
        for i in range(1, n):  # once per distinct string length, not per event
            out[i] = out[i - 1] * _BASE
    return out


def hash_strings(values: pl.Series) -> np.ndarray:
    """A 64-bit hash of each string (nulls hash as empty strings), as uint64."""
    arr = values.cast(pl.String).fill_null("").to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks else pa.array([], pa.large_string())
    arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    _validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset: arr.offset + n + 1]
    lengths = np.diff(offsets)
    total = int(offsets[-1] - offsets[0])
    data = (np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]: offsets[-1]].astype(np.uint64)
            if total else np.zeros(0, np.uint64))
    # Position of every byte inside its own string, then sum(byte+1 * BASE^pos) per string.
    starts = offsets[:-1] - offsets[0]
    positions = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    powers = _power_table(int(lengths.max()) if n else 1)
    with np.errstate(over="ignore"):
        terms = (data + np.uint64(1)) * powers[positions]
        sums = np.zeros(n, dtype=np.uint64)
        nonempty = lengths > 0
        if total:
            sums[nonempty] = np.add.reduceat(terms, starts[nonempty])
        # Fold in the length so strings that differ only by trailing NULs still differ.
        return (sums ^ (lengths.astype(np.uint64) * _MIX)) * _BASE


def observation_keys(frame: pl.DataFrame) -> pl.Series:
    """The observation key of every row, as signed 64-bit integers (how the database stores them)."""
    parts = [pl.col(c).cast(pl.String).fill_null("") for c in OBSERVATION_COLUMNS]
    joined = frame.select(pl.concat_str(parts, separator="\x1f").alias("k"))["k"]
    return pl.Series("obs_key", hash_strings(joined).view(np.int64))
