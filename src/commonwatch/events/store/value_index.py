"""A per-value index beside each Parquet segment, for :meth:`EventStore.mentions` (correlation).

Segments are sorted by time, so a lookup of one address or domain would read the value columns of
every segment. Beside each segment ``<gen>-<n>.parquet`` lies ``<gen>-<n>.values.parquet``: one row
per value of the correlated columns (:data:`MENTION_COLUMNS`) of each event, as
``(value, family, id, org_id, partner_org_id)``, sorted by value and written in small row groups, so
the row-group statistics (min/max of ``value``) let a lookup of a few values open only the row groups
that can hold them, and tenancy is applied on the index alone.

Exactness:

- The index is written with the segment (append, compaction, rematch rewrites, retention's
  rewrite of held events all go through the one segment writer), under a temporary name, flushed and
  renamed before the manifest that names the segment is committed. A file under its final name is
  whole; a writer killed before the commit leaves files no manifest names, removed by the garbage
  collection with the segment.
- A reader uses the index of a segment only if its file is there; a segment without one (a store
  written before the index existed, or an index set aside) is scanned as before. An index that
  cannot be read makes the reader scan the segments instead. :func:`rebuild_missing` (run by
  compaction) writes the missing ones.
- A segment that leaves the manifest (compaction, retention, rematch) takes its index with it: the
  garbage collection knows an index by its segment's name (:func:`companion`).

Networks (``net`` probes) are answered from the segments' ``source_ip_bin`` as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from commonwatch.events.store import MENTION_COLUMNS, SMALL_PROBE, Probe, mention_pairs

log = logging.getLogger(__name__)

SUFFIX = ".values.parquet"
#: Rows per row group of an index: a few values' lookup reads a few of these.
ROW_GROUP_ROWS = 2048
SCHEMA = pl.Schema({"value": pl.String(), "family": pl.String(), "id": pl.Int64(), "org_id": pl.Int64(),
                    "partner_org_id": pl.Int64()})
EMPTY_PAIRS = pl.DataFrame(schema={"value": pl.String, "id": pl.Int64})


def companion(segment_file: str) -> str:
    """The index file of a segment (same folder, same stem)."""
    return segment_file.removesuffix(".parquet") + SUFFIX


def is_index(name: str) -> bool:
    return name.endswith(SUFFIX)


def build(part: pl.DataFrame) -> pl.DataFrame:
    """The index rows of a segment's events: each non-empty value of each correlated column once per
    event and family, sorted by value."""
    frames = [part.select(pl.col(c).alias("value"), pl.lit(family, pl.String).alias("family"), "id", "org_id",
                          "partner_org_id")
              for family, columns in MENTION_COLUMNS.items() for c in columns if c in part.columns]
    if not frames:
        return pl.DataFrame(schema=SCHEMA)
    out = pl.concat(frames).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    return out.unique(["value", "family", "id"]).sort(["value", "family", "id"]).select(
        [pl.col(c).cast(t) for c, t in SCHEMA.items()])


def write(segment_path: Path, part: pl.DataFrame, written: Callable) -> None:
    """Write the index of the segment at ``segment_path`` (``written``: the store's durable
    temporary-name-then-rename context)."""
    final = segment_path.with_name(companion(segment_path.name))
    try:
        with written(final.with_name(f".{final.name}.tmp"), final) as tmp:
            build(part).write_parquet(tmp, compression="zstd", statistics=True, row_group_size=ROW_GROUP_ROWS)
    except OSError:  # (a full disk) the segment, not yet committed, goes too: no space is held by it
        segment_path.unlink(missing_ok=True)
        raise


def rebuild_missing(location: Path, segments: Iterable[dict[str, Any]], written: Callable) -> int:
    """Write the index of every live segment that has none; returns how many were written."""
    done = 0
    for seg in segments:
        path = location / seg["file"]
        if not (location / companion(seg["file"])).exists() and path.exists():
            write(path, pl.read_parquet(path, columns=[c for c in SCHEMA if c not in ("value", "family")] +
                                        [c for cols in MENTION_COLUMNS.values() for c in cols]), written)
            done += 1
    return done


def mention_pairs_indexed(location: Path, segments: Sequence[dict[str, Any]], visible: pl.Expr,
                          probes: Sequence[Probe], scan: Callable[[list[dict[str, Any]]], pl.LazyFrame]
                          ) -> pl.DataFrame:
    """``(value, id)`` of every event the reader may see (``visible``) mentioning a probe: the exact
    probes from the indexes of the segments that have one, the rest from the segments themselves
    (``scan`` gives a segment list's events), networks from the segments."""
    exact_probes = [p for p in probes if p.family != "net"]
    net_probes = [p for p in probes if p.family == "net"]
    exact = pl.DataFrame({"value": [p.value for p in exact_probes], "family": [p.family for p in exact_probes]},
                         schema={"value": pl.String, "family": pl.String}).unique()
    indexed = [s for s in segments if (location / companion(s["file"])).exists()]
    names = {s["file"] for s in indexed}
    plain = [s for s in segments if s["file"] not in names]
    out: list[pl.DataFrame] = []
    if exact.height and indexed:
        try:
            out.append(_from_indexes([str(location / companion(s["file"])) for s in indexed], visible, exact))
        except (OSError, ValueError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
            # an unreadable index: the segments answer
            log.warning("value index unreadable, scanning the segments", extra={"error": str(exc)})
            plain = list(segments)
    if exact.height and plain:
        out.append(mention_pairs(scan(plain).filter(visible), exact_probes))
    if net_probes:
        out.append(mention_pairs(scan(list(segments)).filter(visible), net_probes))
    if not out:
        return EMPTY_PAIRS
    return pl.concat(out).unique()


def _from_indexes(files: list[str], visible: pl.Expr, exact: pl.DataFrame) -> pl.DataFrame:
    if exact.height <= SMALL_PROBE:  # a page's few values: only the row groups that can hold them
        wanted = sorted({v.encode("utf-8") for v in exact["value"].to_list()})
        parts = [t for t in (_read_groups(f, wanted) for f in files) if t is not None]
        if not parts:
            return EMPTY_PAIRS
        hits = pl.concat([pl.from_arrow(t) for t in parts]).filter(
            pl.col("value").is_in(exact["value"].implode()) & visible)  # type: ignore[arg-type]
        return hits.join(exact, on=["value", "family"], how="semi").select("value", "id")
    lf = pl.scan_parquet(files, schema=SCHEMA).filter(visible)
    return lf.select("value", "family", "id").join(exact.lazy(), on=["value", "family"], how="inner").select(
        "value", "id").collect(engine="streaming")


#: path -> (footer, (low, high) bytes of ``value`` per row group, None where unknown). An index file
#: never changes under its name (names are unique; a rewrite is a new file), so this never goes stale.
_FOOTERS: dict[str, tuple[Any, list[tuple[bytes, bytes] | None]]] = {}
_FOOTERS_MAX = 20_000


def _footer(path: str) -> tuple[Any, list[tuple[bytes, bytes] | None]]:
    import pyarrow.parquet as pq

    held = _FOOTERS.get(path)
    if held is not None:
        return held
    meta = pq.read_metadata(path)
    col = meta.schema.names.index("value")
    bounds: list[tuple[bytes, bytes] | None] = []
    for i in range(meta.num_row_groups):
        st = meta.row_group(i).column(col).statistics
        # The writer may shorten long strings: its low bound is then a prefix, its high one raised
        # past the true value, so [low, high] still holds every value of the group.
        bounds.append((_raw(st.min_raw), _raw(st.max_raw)) if st is not None and st.has_min_max else None)
    if len(_FOOTERS) >= _FOOTERS_MAX:
        _FOOTERS.clear()
    _FOOTERS[path] = (meta, bounds)
    return meta, bounds


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _read_groups(path: str, wanted: list[bytes]) -> Any:
    """The row groups of one index file whose value range holds one of ``wanted`` (sorted), as an
    Arrow table, or None."""
    import bisect

    import pyarrow.parquet as pq

    meta, bounds = _footer(path)
    groups = []
    for i, b in enumerate(bounds):
        if b is None:
            groups.append(i)
            continue
        at = bisect.bisect_left(wanted, b[0])
        if at < len(wanted) and wanted[at] <= b[1]:
            groups.append(i)
    if not groups:
        return None
    return pq.ParquetFile(path, metadata=meta).read_row_groups(groups, columns=list(SCHEMA))
