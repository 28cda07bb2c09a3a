#!/usr/bin/env python3
"""Benchmark: matching an asset inventory against CVE records with NVD-style configurations.

Generates (by default) 1,000,000 assets over 10,000 organisations and 250,000 records (1-3 cpeMatch
each, version ranges with every kind of end, some exact versions, some trailing-wildcard products),
then measures in the same run:

(a) commonwatch: ``vulns.matching.match`` of all assets against all records, and a daily delta of
    500 new records against all assets (cold: the asset index built inside; warm: reused);
(b) the peer: NISTIR 7696 name matching with the ``cpe`` library (``CPESet2_3.name_match`` on
    WFNs) plus ``packaging`` for the NVD version range, one pair at a time, as a user writes it:
    ``naive`` tries every asset against every criterion; ``indexed`` first looks criteria up by
    vendor+product in a dict (the fair peer). Both run on a sample of products and are scaled by
    the pair counts of the full data. The matches of both sides on the sample are compared.

    .venv/bin/python bench/vulns_match.py                       # the full size
    .venv/bin/python bench/vulns_match.py --assets 100000 --records 25000   # a quick run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
from cpe.cpe2_3_fs import CPE2_3_FS
from cpe.cpe2_3_wfn import CPE2_3_WFN
from cpe.cpeset2_3 import CPESet2_3
from packaging.version import Version

from commonwatch.vulns.matching import criteria_frame, match, prepare_assets

TAIL = ":*:*:*:*:*:*:*"


def generate(n_assets: int, n_records: int, n_orgs: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    n_products = max(50, n_records // 10)
    vendor_of = rng.integers(0, max(10, n_products // 5), n_products)
    names = [f"v{vendor_of[p]}:prod{p}" for p in range(n_products)]
    # assets: popular products more often (Zipf-like), versions major.minor.patch
    weights = 1.0 / np.arange(1, n_products + 1) ** 0.6
    prod = rng.choice(n_products, n_assets, p=weights / weights.sum())
    maj, mnr, pat = rng.integers(1, 4, n_assets), rng.integers(0, 6, n_assets), rng.integers(0, 20, n_assets)
    assets = pl.DataFrame({
        "asset_id": np.arange(1, n_assets + 1), "org_id": rng.integers(1, n_orgs + 1, n_assets),
        "system_id": rng.integers(1, n_orgs * 3 + 1, n_assets), "mlps_level": rng.integers(1, 5, n_assets),
        "prod": prod, "maj": maj, "mnr": mnr, "pat": pat,
    }).with_columns(
        cpe=pl.format("cpe:2.3:a:{}:{}.{}.{}" + TAIL, pl.col("prod").replace_strict(
            list(range(n_products)), names, return_dtype=pl.Utf8), "maj", "mnr", "pat"),
        purl=pl.lit(None, pl.Utf8), version=pl.lit(None, pl.Utf8),
    ).select("asset_id", "org_id", "system_id", "mlps_level", "cpe", "purl", "version")
    # records: 1-3 cpeMatch each
    per = rng.integers(1, 4, n_records)
    rid = np.repeat(np.arange(n_records), per)
    n = rid.size
    rprod = np.repeat(rng.integers(0, n_products, n_records), per)
    kind = rng.random(n)
    lo = [f"{a}.{b}.0" for a, b in zip(rng.integers(1, 4, n), rng.integers(0, 6, n), strict=True)]
    hi_pat = rng.integers(1, 20, n)
    rows = []
    for i in range(n):
        vp = names[rprod[i]]
        k = kind[i]
        base = dict(vuln_id=f"CVE-2025-{rid[i]:06d}", record_key=f"nvd:CVE-2025-{rid[i]:06d}", source="nvd",
                    kind="cpe")
        a, b, _ = lo[i].split(".")
        if k < 0.10:      # an exact version
            rows.append(base | dict(criteria=f"cpe:2.3:a:{vp}:{a}.{b}.{hi_pat[i]}{TAIL}"))
        elif k < 0.11:    # a trailing wildcard on the product, no range
            v, p = vp.split(":")
            rows.append(base | dict(criteria=f"cpe:2.3:a:{v}:{p[:-1]}*:{a}.{b}.{hi_pat[i]}{TAIL}"))
        else:             # a range: start including/excluding, end including/excluding
            rows.append(base | dict(criteria=f"cpe:2.3:a:{vp}:*{TAIL}", lo=lo[i], lo_incl=bool(k < 0.6),
                                    hi=f"{a}.{b}.{hi_pat[i]}", hi_incl=bool(k >= 0.8)))
    return assets, criteria_frame(rows)


# --- the peer -------------------------------------------------------------------------------------

def _wfn(text: str):
    return CPE2_3_WFN(CPE2_3_FS(text).as_wfn())


def peer_match(asset_rows: list[tuple[int, str]], crit_rows: list[dict], indexed: bool):
    """(matches, pairs tried, seconds) -- per pair: cpe.CPESet2_3.name_match, packaging for ranges."""
    t0 = time.perf_counter()
    crits = [(c, _wfn(c["criteria"])) for c in crit_rows]
    by_vp: dict[tuple[str, str], list] = {}
    for c, w in crits:
        parts = c["criteria"].split(":")
        by_vp.setdefault((parts[3], parts[4]), []).append((c, w))
    found, pairs = set(), 0
    for asset_id, cpe_text in asset_rows:
        k = _wfn(cpe_text)
        kset = CPESet2_3()
        kset.append(k)
        version = cpe_text.split(":")[5]
        if indexed:
            parts = cpe_text.split(":")
            cands = list(by_vp.get((parts[3], parts[4]), []))
            cands += [cw for key, cws in by_vp.items() if key[1].endswith("*") and key[0] == parts[3] for cw in cws]
        else:
            cands = crits
        for c, w in cands:
            pairs += 1
            if not kset.name_match(w):
                continue
            if c.get("lo") or c.get("hi"):
                v = Version(version)
                if c.get("lo") and not (v >= Version(c["lo"]) if c["lo_incl"] else v > Version(c["lo"])):
                    continue
                if c.get("hi") and not (v <= Version(c["hi"]) if c["hi_incl"] else v < Version(c["hi"])):
                    continue
            found.add((asset_id, c["vuln_id"]))
    return found, pairs, time.perf_counter() - t0


def candidate_pairs(assets: pl.DataFrame, crits: pl.DataFrame) -> int:
    """Asset x criterion pairs with the same vendor+product (what the indexed peer tries)."""
    a = assets.select(vp=pl.col("cpe").str.split(":").list.slice(3, 2).list.join(":")).group_by("vp").len("na")
    c = crits.select(vp=pl.col("criteria").str.split(":").list.slice(3, 2).list.join(":")).group_by("vp").len("nc")
    return int(a.join(c, on="vp").select((pl.col("na") * pl.col("nc")).sum()).item())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--assets", type=int, default=1_000_000)
    ap.add_argument("--records", type=int, default=250_000)
    ap.add_argument("--orgs", type=int, default=10_000)
    ap.add_argument("--delta", type=int, default=500)
    ap.add_argument("--sample-products", type=int, default=40)
    args = ap.parse_args()

    t = time.perf_counter()
    assets, crits = generate(args.assets, args.records, args.orgs)
    print(f"generated {assets.height:,} assets, {crits['vuln_id'].n_unique():,} records "
          f"({crits.height:,} cpeMatch) in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    full = match(assets, crits)
    t_full = time.perf_counter() - t
    print(f"commonwatch full match: {full.matches.height:,} matches in {t_full:.2f} s")

    delta_ids = crits["vuln_id"].unique().sort().tail(args.delta)
    delta = crits.filter(pl.col("vuln_id").is_in(delta_ids.implode()))
    t = time.perf_counter()
    cold = match(assets, delta)
    t_cold = time.perf_counter() - t
    prep = prepare_assets(assets)
    t = time.perf_counter()
    warm = match(prep, delta)
    t_warm = time.perf_counter() - t
    assert warm.matches.height == cold.matches.height
    print(f"commonwatch delta of {args.delta} records: {cold.matches.height:,} matches in {t_cold:.2f} s "
          f"(asset index built inside), {t_warm:.2f} s (asset index kept)")

    # the peer on a sample of products, scaled by pair counts
    prods = assets.select(vp=pl.col("cpe").str.split(":").list.slice(3, 2).list.join(":"))["vp"]
    rng = np.random.default_rng(11)
    pick = set(rng.choice(prods.unique().sort().to_list(), args.sample_products, replace=False).tolist())
    in_pick = pl.col("cpe").str.split(":").list.slice(3, 2).list.join(":").is_in(list(pick))
    s_assets = assets.filter(in_pick)
    s_vendors = {p.split(":")[0] for p in pick}
    s_crits = crits.filter(pl.col("criteria").str.split(":").list.get(3).is_in(list(s_vendors)))
    asset_rows = list(zip(s_assets["asset_id"].to_list(), s_assets["cpe"].to_list(), strict=True))
    crit_rows = s_crits.to_dicts()
    ours_sample = match(s_assets, s_crits)
    ours = set(zip(ours_sample.matches["asset_id"].to_list(), ours_sample.matches["vuln_id"].to_list(), strict=True))
    peer, pairs_i, t_peer_i = peer_match(asset_rows, crit_rows, indexed=True)
    naive_rows = asset_rows[: max(1, 20_000 // max(1, len(crit_rows)))]
    _, pairs_n, t_peer_n = peer_match(naive_rows, crit_rows, indexed=False)
    diff_missing, diff_extra = peer - ours, ours - peer
    print(f"sample: {len(asset_rows):,} assets x {s_crits.height:,} cpeMatch; peer (indexed) {len(peer):,} matches "
          f"in {t_peer_i:.2f} s over {pairs_i:,} pairs; commonwatch {len(ours):,}")
    print(f"differences on the sample: {len(diff_missing)} only the peer found, {len(diff_extra)} only commonwatch "
          f"found {sorted(diff_missing)[:5]} {sorted(diff_extra)[:5]}")

    full_pairs = candidate_pairs(assets, crits)
    peer_indexed = t_peer_i / max(1, pairs_i) * full_pairs
    peer_naive = t_peer_n / max(1, pairs_n) * assets.height * crits.height
    print(f"peer scaled to the full data: indexed {peer_indexed:,.0f} s ({full_pairs:,} candidate pairs, "
          f"{t_peer_i / max(1, pairs_i) * 1e6:.1f} us/pair); naive {peer_naive:,.0f} s "
          f"({assets.height * crits.height:,} pairs, {t_peer_n / max(1, pairs_n) * 1e6:.1f} us/pair)")
    ratio = peer_indexed / t_full
    print(f"ratio full match vs indexed peer: {ratio:,.0f}x; vs naive peer: {peer_naive / t_full:,.0f}x")
    print(f"RESULT vulns_match ours={t_full:.2f} peer={peer_indexed:.0f} unit=s ratio={ratio:.0f} goal=100 "
          f"delta_cold={t_cold:.2f} delta_warm={t_warm:.2f} delta_goal=5 "
          f"sample_diff={len(diff_missing) + len(diff_extra)}")


if __name__ == "__main__":
    main()
