"""Loading reference files into the store, and the in-memory lookup the pipeline's enrich stage
uses (AS number, AS name and country by address; the most specific range wins, and at equal
specificity MMDB over iptoasn over RIR data)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from commonwatch.access.audit import record
from commonwatch.constituency.index import NO_ORG, IpColumns, _Ranges, flatten_prefixes
from commonwatch.enrichment.models import EnrichmentLoad, EnrichmentRange
from commonwatch.enrichment.readers import read_file
from commonwatch.net import IPV4_MAPPED_PREFIX

PRIORITY = {"rir": 0, "iptoasn": 1, "mmdb": 2}
INSERT_CHUNK = 20_000


@dataclass
class LoadResult:
    kind: str
    ranges: int
    skipped: int
    notes: list[str]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load_file(session: Session, path: Path, kind: str | None = None, now=None) -> LoadResult:
    """Replace the ranges of the file's kind with the file's ranges, in one transaction."""
    kind, ranges = read_file(path, kind)
    session.execute(delete(EnrichmentRange).where(EnrichmentRange.kind == kind))
    rows = ranges.frame.with_columns(pl.lit(kind).alias("kind")).to_dicts()
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(EnrichmentRange), rows[start:start + INSERT_CHUNK])
    load = EnrichmentLoad(kind=kind, file_name=path.name, sha256=_sha256(path), ranges=len(rows),
                          skipped=ranges.skipped)
    if now is not None:
        load.loaded_at = now
    session.add(load)
    session.flush()
    record(session, "enrichment.load", "enrichment_loads", load.id,
           after={"kind": kind, "file": path.name, "sha256": load.sha256, "ranges": len(rows),
                  "skipped": ranges.skipped})
    return LoadResult(kind, len(rows), ranges.skipped, ranges.reasons)


@dataclass
class EnrichmentIndex:
    """Range tables for IPv4 (int64 keys) and IPv6 (Python ints), each row -> attribute row."""

    v4_asn: _Ranges
    v4_cc: _Ranges
    v6_asn: _Ranges
    v6_cc: _Ranges
    asn: np.ndarray
    as_name: pl.Series
    cc: pl.Series

    @property
    def empty(self) -> bool:
        return len(self.asn) == 0


def build_enrichment(frame: pl.DataFrame) -> EnrichmentIndex:
    """An index from a frame with kind, first, last, asn, as_name, cc."""
    n = frame.height
    if n == 0:
        empty = _Ranges(np.array([], np.int64), np.array([], np.int64), np.array([], np.int64))
        return EnrichmentIndex(empty, empty, empty, empty, np.array([], np.int64), pl.Series([], dtype=pl.String),
                               pl.Series([], dtype=pl.String))
    firsts = np.frombuffer(b"".join(frame["first"].to_list()), dtype=np.uint8).reshape(n, 16)
    lasts = np.frombuffer(b"".join(frame["last"].to_list()), dtype=np.uint8).reshape(n, 16)
    is4 = (firsts[:, :12] == np.frombuffer(IPV4_MAPPED_PREFIX, dtype=np.uint8)).all(axis=1)
    prio = frame["kind"].replace_strict(PRIORITY, default=0, return_dtype=pl.Int64).to_numpy()
    asn = frame["asn"].fill_null(-1).to_numpy()
    has_asn = asn >= 0
    has_cc = frame["cc"].is_not_null().to_numpy()
    rows = np.arange(n, dtype=np.int64)

    def v4(mask):
        sel = np.flatnonzero(mask & is4)
        s = firsts[sel, 12:].copy().view(">u4").ravel().astype(np.int64)
        e = lasts[sel, 12:].copy().view(">u4").ravel().astype(np.int64)
        # Paint order: priority, then narrower ranges later so the most specific wins.
        order = prio[sel] * (1 << 33) + ((1 << 32) - (e - s))
        return flatten_prefixes(s, e, order, rows[sel])

    def v6(mask):
        sel = np.flatnonzero(mask & ~is4)
        s = np.array([int.from_bytes(firsts[i].tobytes(), "big") for i in sel], dtype=object)
        e = np.array([int.from_bytes(lasts[i].tobytes(), "big") for i in sel], dtype=object)
        order = np.array([int(prio[i]) * 1000 + int(128 - (int(e[k] - s[k]).bit_length())) for k, i in enumerate(sel)],
                         dtype=np.int64)
        return flatten_prefixes(s, e, order, rows[sel])

    return EnrichmentIndex(v4(has_asn), v4(has_cc), v6(has_asn), v6(has_cc), asn,
                           frame["as_name"].cast(pl.String), frame["cc"].cast(pl.String))


def load_enrichment(session: Session) -> EnrichmentIndex:
    rows = session.execute(select(EnrichmentRange.kind, EnrichmentRange.first, EnrichmentRange.last,
                                  EnrichmentRange.asn, EnrichmentRange.as_name, EnrichmentRange.cc)).all()
    frame = pl.DataFrame([tuple(r) for r in rows], schema={"kind": pl.String, "first": pl.Binary, "last": pl.Binary,
                                                           "asn": pl.Int64, "as_name": pl.String, "cc": pl.String},
                         orient="row")
    return build_enrichment(frame)


def _lookup(r4: _Ranges, r6: _Ranges, ips: IpColumns) -> np.ndarray:
    q = ips.ip4.fill_null(0).to_numpy().astype(np.int64)
    out = np.where(ips.ip4.is_null().to_numpy(), NO_ORG, r4.lookup(q))
    if ips.ip6 and len(r6.starts):
        rows = list(ips.ip6)
        out[rows] = r6.lookup(np.array([ips.ip6[i] for i in rows], dtype=object))
    return out


def enrich(frame: pl.DataFrame, index: EnrichmentIndex, ips: IpColumns) -> pl.DataFrame:
    """Fill ``source.asn``, ``source.as_name`` and ``source.geolocation.cc`` where the feed left
    them empty (what a feed says about its own observation is kept)."""
    if index.empty or frame.is_empty():
        return frame
    a = _lookup(index.v4_asn, index.v6_asn, ips)
    c = _lookup(index.v4_cc, index.v6_cc, ips)
    safe_a, safe_c = np.where(a >= 0, a, 0), np.where(c >= 0, c, 0)
    found_a, found_c = pl.Series(a >= 0), pl.Series(c >= 0)
    asn = pl.select(pl.when(pl.lit(found_a)).then(pl.lit(pl.Series(index.asn[safe_a], dtype=pl.Int64)))
                    .otherwise(None)).to_series()
    name = pl.select(pl.when(pl.lit(found_a)).then(pl.lit(index.as_name.gather(safe_a))).otherwise(None)).to_series()
    cc = pl.select(pl.when(pl.lit(found_c)).then(pl.lit(index.cc.gather(safe_c))).otherwise(None)).to_series()
    updates = []
    for col, value in (("source.asn", asn), ("source.as_name", name), ("source.geolocation.cc", cc)):
        if col in frame.columns:
            updates.append(pl.col(col).fill_null(pl.lit(value)).alias(col))
        else:
            updates.append(pl.lit(value).alias(col))
    return frame.with_columns(updates)
