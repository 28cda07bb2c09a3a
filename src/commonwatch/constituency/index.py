"""The vectorised constituency matcher: IP address -> organisation (longest prefix), then AS
number, then domain suffix; a host abroad is routed to the partner CERT registered for its country.

The index is built once from the registry (or from arrays, for tests and benchmarks) and answers a
whole batch at once: IPv4 lookups are one ``numpy.searchsorted`` over disjoint ranges (nested
prefixes are flattened so the most specific one owns each range), ASN lookups another, domain
suffixes a handful of Polars joins. IPv6 uses the same ranges on Python integers; feeds carry few
IPv6 hosts, so that path favours simplicity.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import polars as pl
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.constituency.models import Domain, Network, Organisation, OrgAsn, OrgKind
from commonwatch.net import IPV4_MAPPED_PREFIX

NO_ORG = -1
_V4_RE = r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"  # noqa: E501


# --- addresses as columns ------------------------------------------------------------------------------

@dataclass
class IpColumns:
    """Parsed addresses of a column: ``ip4`` (UInt32, null unless IPv4), ``ip6`` (row -> Python int,
    for the IPv6 rows only), ``key`` (16-byte ``net.ip_key``), ``text`` (canonical spelling)
    and ``valid`` (False where a value was given but is not an address)."""

    ip4: pl.Series
    ip6: dict[int, int]
    key: pl.Series
    text: pl.Series
    valid: pl.Series


def _v6_parse(value: str) -> tuple[str, int, bool] | None:
    try:
        ip = ipaddress.ip_address(value.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        v4 = ip.ipv4_mapped
        return str(v4), int(v4), True
    return str(ip), int(ip), ip.version == 4


def parse_ips(values: pl.Series) -> IpColumns:
    """Parse a string column of addresses (IPv4 vectorised; the rare others one unique value at a time)."""
    text = values.cast(pl.String).str.strip_chars()
    parts = text.str.extract_groups(_V4_RE)
    octets = [parts.struct.field(str(i)).cast(pl.UInt32) for i in range(1, 5)]
    ip4 = (octets[0] * (1 << 24) + octets[1] * (1 << 16) + octets[2] * (1 << 8) + octets[3]).alias("ip4")
    ip6: dict[int, int] = {}
    canonical = text
    other_mask = ip4.is_null() & text.is_not_null() & (text != "")
    valid = ~other_mask
    if other_mask.any():
        idx = np.flatnonzero(other_mask.to_numpy())
        uniq = {v: _v6_parse(v) for v in set(text.gather(idx).to_list())}
        ip4_np = ip4.to_numpy().astype(np.float64)  # nullable -> float for patching, back below
        valid_np = valid.to_numpy().copy()
        canon = text.to_list()
        for i in idx:
            parsed = uniq[canon[i]]
            if parsed is None:
                continue
            canon[i], number, is4 = parsed
            valid_np[i] = True
            if is4:
                ip4_np[i] = number
            else:
                ip6[int(i)] = number
        ip4 = pl.Series("ip4", ip4_np, dtype=pl.Float64, nan_to_null=True).cast(pl.UInt32)
        valid = pl.Series("valid", valid_np)
        canonical = pl.Series("text", canon, dtype=pl.String)
    canonical = pl.select(pl.when(pl.lit(valid)).then(pl.lit(canonical)).otherwise(None)).to_series()
    return IpColumns(ip4, ip6, _keys(ip4, ip6), canonical.alias("text"), valid)


def ip4_keys(ip4: pl.Series) -> pl.Series:
    """16-byte keys of a UInt32 column of IPv4 addresses (null stays null)."""
    return _keys(ip4, {})


def _keys(ip4: pl.Series, ip6: dict[int, int]) -> pl.Series:
    n = ip4.len()
    arr = np.zeros((n, 16), dtype=np.uint8)
    arr[:, 10:12] = 255
    v4 = ip4.fill_null(0).to_numpy().astype(">u4")
    arr[:, 12:16] = v4.view(np.uint8).reshape(n, 4)
    present = ip4.is_not_null().to_numpy().copy()
    for i, number in ip6.items():
        arr[i] = np.frombuffer(number.to_bytes(16, "big"), dtype=np.uint8)
        present[i] = True
    keys = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(arr.tobytes())])
    series = pl.Series("key", pl.from_arrow(keys).cast(pl.Binary))
    return pl.select(pl.when(pl.lit(pl.Series(present))).then(pl.lit(series)).otherwise(None)).to_series()


# --- the index -------------------------------------------------------------------------------------------

MIXED = -2
#: Above this many IPv4 ranges a direct table of /24 blocks answers most lookups with one gather.
TABLE_MIN_RANGES = 4096


@dataclass
class _Ranges:
    starts: np.ndarray
    ends: np.ndarray
    orgs: np.ndarray
    #: For IPv4 only: owner of each /24 block when one range (or none) covers all of it, else MIXED.
    table: np.ndarray | None = None

    def _search(self, q: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.starts, q, side="right") - 1
        ok = i >= 0
        i = np.where(ok, i, 0)
        hit = ok & (q <= self.ends[i])
        return np.where(hit, self.orgs[i], NO_ORG)

    def lookup(self, q: np.ndarray) -> np.ndarray:
        if len(self.starts) == 0 or len(q) == 0:
            return np.full(len(q), NO_ORG, dtype=np.int64)
        if self.table is None:
            return self._search(q)
        out = self.table[q >> 8].astype(np.int64)
        mixed = np.flatnonzero(out == MIXED)
        if len(mixed):
            out[mixed] = self._search(q[mixed])
        return out

    def with_table(self) -> _Ranges:
        """Add the /24 table (64 MB) when there are enough ranges for it to pay."""
        if len(self.starts) < TABLE_MIN_RANGES:
            return self
        table = np.empty(1 << 24, dtype=np.int32)
        step = 1 << 20  # a million blocks at a time keeps the temporaries small
        last = len(self.starts) - 1
        for first in range(0, 1 << 24, step):
            lo = np.arange(first, first + step, dtype=np.int64) << 8
            hi = lo + 255
            cover = np.searchsorted(self.starts, lo, side="right") - 1
            safe = np.where(cover >= 0, cover, 0)
            covers_start = (cover >= 0) & (self.ends[safe] >= lo)
            whole = covers_start & (self.ends[safe] >= hi)
            nxt = np.minimum(np.searchsorted(self.starts, lo, side="left"), last)
            starts_inside = (self.starts[nxt] <= hi) & (self.starts[nxt] > lo)
            part = np.where(whole, self.orgs[safe], NO_ORG)
            part = np.where((~whole & (covers_start | starts_inside)) | (whole & starts_inside), MIXED, part)
            table[first:first + step] = part
        return _Ranges(self.starts, self.ends, self.orgs, table)


def flatten_prefixes(starts: np.ndarray, ends: np.ndarray, lengths: np.ndarray, orgs: np.ndarray) -> _Ranges:
    """Nested prefixes -> disjoint ranges owned by the most specific prefix (ties: lowest org id).

    The elementary boundaries of all prefixes are painted shortest prefix first, so longer ones
    overwrite; each length is one vectorised pass.
    """
    if len(starts) == 0:
        empty = np.array([], dtype=starts.dtype)
        return _Ranges(empty, empty, np.array([], dtype=np.int64))
    bounds = np.unique(np.concatenate([starts, ends + 1]))
    owner = np.full(len(bounds), NO_ORG, dtype=np.int64)
    for length in np.unique(lengths):
        sel = np.flatnonzero(lengths == length)
        sel = sel[np.argsort(-orgs[sel], kind="stable")]  # lowest org id painted last wins
        lo = np.searchsorted(bounds, starts[sel])
        hi = np.searchsorted(bounds, ends[sel] + 1)
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            continue
        offsets = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        idx = np.arange(total) + offsets
        owner[idx] = np.repeat(orgs[sel], counts)
    seg_starts, seg_ends, seg_orgs = bounds[:-1], bounds[1:] - 1, owner[:-1]
    keep = seg_orgs != NO_ORG
    return _Ranges(seg_starts[keep], seg_ends[keep], seg_orgs[keep])


@dataclass
class ConstituencyIndex:
    v4: _Ranges
    v6: _Ranges
    asn_keys: np.ndarray
    asn_orgs: np.ndarray
    domains: dict[str, int]
    org_sector: dict[int, str]
    cii_orgs: set[int]
    #: country code -> the partner CERT that receives events about hosts in that country
    partners: dict[str, int]
    #: the constituency's own countries (those of its non-partner organisations)
    home: set[str] = field(default_factory=set)

    @property
    def max_labels(self) -> int:
        return max((d.count(".") + 1 for d in self.domains), default=0)

    @cached_property
    def org_columns(self) -> tuple[pl.Series, pl.Series, pl.Series]:
        """Organisation ids, their sectors and the CII operators' ids as Series, built once: from
        the dicts, every batch paid for 100,000 Python values (an index is not changed once built)."""
        keys = list(self.org_sector)
        return (pl.Series(keys, dtype=pl.Int64), pl.Series([self.org_sector[k] for k in keys], dtype=pl.String),
                pl.Series(sorted(self.cii_orgs), dtype=pl.Int64))


def build_index(networks: list[tuple[bytes, bytes, int, int]], asns: list[tuple[int, int]],
                domains: list[tuple[str, int]], orgs: list[tuple[int, str, str, str]]) -> ConstituencyIndex:
    """An index from plain rows: networks (first key, last key, prefix length, org), (asn, org),
    (domain, org), organisations (id, kind, sector, country)."""
    v4_rows = [(f, last, p, o) for f, last, p, o in networks if f[:12] == IPV4_MAPPED_PREFIX]
    v6_rows = [(f, last, p, o) for f, last, p, o in networks if f[:12] != IPV4_MAPPED_PREFIX]
    v4 = _v4_ranges(v4_rows)
    v6 = flatten_prefixes(np.array([int.from_bytes(f, "big") for f, *_ in v6_rows], dtype=object),
                          np.array([int.from_bytes(x[1], "big") for x in v6_rows], dtype=object),
                          np.array([p for _f, _l, p, _o in v6_rows], dtype=np.int64),
                          np.array([o for *_x, o in v6_rows], dtype=np.int64))
    asn_sorted = sorted(asns, key=lambda r: (r[0], r[1]))
    first: dict[int, int] = {}
    for asn, org in asn_sorted:
        first.setdefault(int(asn), int(org))
    return ConstituencyIndex(
        v4=v4, v6=v6,
        asn_keys=np.array(list(first), dtype=np.int64), asn_orgs=np.array(list(first.values()), dtype=np.int64),
        domains=_domain_owners(domains),
        org_sector={oid: sector for oid, _k, sector, _c in orgs},
        cii_orgs={oid for oid, kind, _s, _c in orgs if kind == OrgKind.CII_OPERATOR},
        partners=_partners(orgs),
        home={c for _o, kind, _s, c in orgs if kind != OrgKind.PARTNER_CERT and c},
    )


def build_index_from_arrays(starts: np.ndarray, ends: np.ndarray, lengths: np.ndarray, orgs: np.ndarray,
                            org_rows: list[tuple[int, str, str, str]], asns: list[tuple[int, int]] = (),
                            domains: list[tuple[str, int]] = ()) -> ConstituencyIndex:
    """An IPv4-only index straight from arrays (uint32 starts/ends), for large synthetic registries."""
    empty = _Ranges(np.array([], dtype=object), np.array([], dtype=object), np.array([], dtype=np.int64))
    idx = build_index([], list(asns), list(domains), org_rows)
    idx.v4 = flatten_prefixes(starts.astype(np.int64), ends.astype(np.int64), lengths,
                              orgs.astype(np.int64)).with_table()
    idx.v6 = empty
    return idx


def _v4_ranges(rows) -> _Ranges:
    if not rows:
        return flatten_prefixes(np.array([], np.int64), np.array([], np.int64), np.array([], np.int64),
                                np.array([], np.int64))
    firsts = np.frombuffer(b"".join(r[0] for r in rows), dtype=np.uint8).reshape(-1, 16)[:, 12:]
    lasts = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint8).reshape(-1, 16)[:, 12:]
    starts = firsts.copy().view(">u4").ravel().astype(np.int64)
    ends = lasts.copy().view(">u4").ravel().astype(np.int64)
    return flatten_prefixes(starts, ends, np.array([r[2] for r in rows], dtype=np.int64),
                            np.array([r[3] for r in rows], dtype=np.int64)).with_table()


def _domain_owners(domains) -> dict[str, int]:
    owners: dict[str, int] = {}
    for name, org in sorted(domains, key=lambda r: (r[0], r[1])):
        owners.setdefault(name.lower().rstrip("."), int(org))
    return owners


def _partners(orgs) -> dict[str, int]:
    out: dict[str, int] = {}
    for oid, kind, _s, country in sorted(orgs):
        if kind == OrgKind.PARTNER_CERT and country:
            out.setdefault(country.upper(), oid)
    return out


def _network_rows(session: Session) -> list[tuple[bytes, bytes, int, int]]:
    rows: list[tuple[bytes, bytes, int, int]] = []
    result = session.execute(select(Network.first, Network.last, Network.prefixlen, Network.org_id)
                             .execution_options(yield_per=100_000))
    for part in result.partitions():
        rows.extend((bytes(f), bytes(la), p, o) for f, la, p, o in part)
    return rows


def load_index(session: Session) -> ConstituencyIndex:
    """The index of the whole registry (the matcher acts for the centre, across tenants)."""
    nets = _network_rows(session)
    asns = session.execute(select(OrgAsn.asn, OrgAsn.org_id)).all()
    doms = session.execute(select(Domain.name, Domain.org_id)).all()
    orgs = session.execute(select(Organisation.id, Organisation.kind, Organisation.sector,
                                  Organisation.country)).all()
    return build_index(nets, [tuple(r) for r in asns], [tuple(r) for r in doms],
                       [tuple(r) for r in orgs])


# --- matching ---------------------------------------------------------------------------------------------

def lookup_ips(index: ConstituencyIndex, ip4: pl.Series, ip6: dict[int, int] | None = None) -> np.ndarray:
    """Org id (or -1) by longest prefix for each address."""
    q = ip4.fill_null(0).to_numpy().astype(np.int64)
    out = index.v4.lookup(q)
    out = np.where(ip4.is_null().to_numpy(), NO_ORG, out)
    if ip6 and len(index.v6.starts):
        rows = list(ip6)
        out[rows] = index.v6.lookup(np.array([ip6[i] for i in rows], dtype=object))
    return out


def lookup_domains(index: ConstituencyIndex, fqdn: pl.Series) -> np.ndarray:
    """Org id (or -1) of the longest registered domain that is the name or a parent of it."""
    n = fqdn.len()
    if not index.domains or n == 0:
        return np.full(n, NO_ORG, dtype=np.int64)
    names = fqdn.str.to_lowercase().str.strip_chars_end(".")
    labels = names.str.split(".")
    keys, vals = list(index.domains), list(index.domains.values())
    result = pl.Series("org", [None] * n, dtype=pl.Int64)
    for k in range(1, index.max_labels + 1):
        suffix = pl.select(pl.when(pl.lit(labels).list.len() >= k)
                           .then(pl.lit(labels).list.slice(-k, k).list.join(".")).otherwise(None)).to_series()
        found = suffix.replace_strict(keys, vals, default=None, return_dtype=pl.Int64)
        result = found.fill_null(result)  # a longer suffix (later k) wins
    return result.fill_null(NO_ORG).to_numpy()


def match_constituents(batch: pl.DataFrame, index: ConstituencyIndex, ip4: pl.Series | None = None,
                       ip6: dict[int, int] | None = None) -> pl.DataFrame:
    """Add ``constituent.org_id``, ``constituent.partner_org_id``, ``constituent.sector`` and
    ``constituent.cii`` to a batch with ``source.ip`` (or given parsed ``ip4``/``ip6``),
    ``source.asn``, ``source.fqdn`` and ``source.geolocation.cc``. Order: IP longest prefix,
    then ASN, then domain suffix."""
    n = batch.height
    if ip4 is None:
        cols = parse_ips(batch["source.ip"]) if "source.ip" in batch.columns else None
        ip4 = cols.ip4 if cols else pl.Series("ip4", [None] * n, dtype=pl.UInt32)
        ip6 = cols.ip6 if cols else None
    org = lookup_ips(index, ip4, ip6)
    if "source.asn" in batch.columns and len(index.asn_keys):
        asn = batch["source.asn"].cast(pl.Int64, strict=False)
        q = asn.fill_null(-1).to_numpy()
        i = np.clip(np.searchsorted(index.asn_keys, q), 0, len(index.asn_keys) - 1)
        by_asn = np.where(index.asn_keys[i] == q, index.asn_orgs[i], NO_ORG)
        org = np.where(org == NO_ORG, by_asn, org)
    if "source.fqdn" in batch.columns and index.domains:
        by_domain = lookup_domains(index, batch["source.fqdn"])
        org = np.where(org == NO_ORG, by_domain, org)
    org_s = pl.Series("constituent.org_id", org, dtype=pl.Int64)
    org_s = pl.select(pl.when(pl.lit(org_s) == NO_ORG).then(None).otherwise(pl.lit(org_s))).to_series()
    sector_keys, sectors, cii = index.org_columns
    out = batch.with_columns(org_s.alias("constituent.org_id"))
    out = out.with_columns(
        pl.col("constituent.org_id").replace_strict(sector_keys, sectors, default=None, return_dtype=pl.String)
        .alias("constituent.sector") if sector_keys.len() else pl.lit(None, pl.String).alias("constituent.sector"),
        pl.col("constituent.org_id").is_in(cii.implode()).fill_null(False).alias("constituent.cii"),
    )
    if "source.geolocation.cc" in out.columns and index.partners:
        cc = pl.col("source.geolocation.cc").str.to_uppercase()
        keys = list(index.partners)
        abroad = ~cc.is_in(sorted(index.home)) if index.home else pl.lit(True)
        partner = (pl.when(abroad & cc.is_in(keys))
                   .then(cc.replace_strict(keys, [index.partners[k] for k in keys], default=None,
                                           return_dtype=pl.Int64))
                   .otherwise(None))
        out = out.with_columns(partner.alias("constituent.partner_org_id"))
    else:
        out = out.with_columns(pl.lit(None, pl.Int64).alias("constituent.partner_org_id"))
    return out
