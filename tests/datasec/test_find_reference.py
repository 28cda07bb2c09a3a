"""``detectors.find`` against a slow reference: the detector-by-detector implementation it replaced
(one small query per step, each card detector redoing the card arithmetic). Both must give the same
rows, on a varied corpus and under every kind of header. The reference's sorts were not stable, so
the order of one detector's several matches within one row was unspecified there: the rows are
compared as sorted sets, and the new order is checked to be the order of the text."""

from __future__ import annotations

import random
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from commonwatch.datasec import detectors as det_mod
from commonwatch.datasec import synthetic as syn
from commonwatch.datasec.detectors import (
    CONTEXT_GAP,
    FOUND_SCHEMA,
    ScanContext,
    build_detectors,
    empty_found,
    find,
    header_is_negative_context,
    header_signal,
    identifier_rules,
    luhn_valid,
    negative_context_regex,
)

TODAY = date(2026, 11, 25)


# --- the reference: ``find`` and the validators of Polars expressions as they were before ------------

def _ref_card_numbers(df: pl.DataFrame) -> pl.Series:
    return df["value"].str.replace_all(r"[ \-]", "")


def _ref_unionpay(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    number = _ref_card_numbers(df)
    ranged = number.str.starts_with("62") & number.str.len_bytes().is_between(16, 19)
    return df.with_columns(pl.Series("valid", ranged.to_numpy() & luhn_valid(number)))


def _ref_unionpay_unchecked(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    number = _ref_card_numbers(df)
    ranged = number.str.starts_with("62") & number.str.len_bytes().is_between(16, 19)
    return df.with_columns(pl.Series("valid", ranged.to_numpy() & ~luhn_valid(number)))


def _ref_payment_card(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    number = _ref_card_numbers(df)
    n = number.str.len_bytes()
    p2 = number.str.slice(0, 2).cast(pl.Int64, strict=False)
    p3 = number.str.slice(0, 3).cast(pl.Int64, strict=False)
    p4 = number.str.slice(0, 4).cast(pl.Int64, strict=False)
    visa = number.str.starts_with("4") & n.is_in([13, 16, 19])
    master = (p2.is_between(51, 55) | p4.is_between(2221, 2720)) & n.eq(16)
    amex = p2.is_in([34, 37]) & n.eq(15)
    jcb = p4.is_between(3528, 3589) & n.is_between(16, 19)
    discover = (p4.eq(6011) | p3.is_between(644, 649) | p2.eq(65)) & n.is_between(16, 19)
    diners = (p3.is_between(300, 305) | p2.is_in([36, 38, 39])) & n.is_in([14, 16])
    brand = (visa | master | amex | jcb | discover | diners).fill_null(False) & ~number.str.starts_with("62")
    return df.with_columns(pl.Series("valid", brand.to_numpy() & luhn_valid(number)))


def _ref_mobile(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    number = df["value"].str.replace_all(r"[^0-9]", "").str.slice(-11)
    ok = number.str.len_bytes().eq(11) & number.str.slice(0, 3).is_in(ctx.mobile_prefixes)
    return df.with_columns(pl.Series("valid", ok.fill_null(False)))


def _ref_landline(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    area = df["value"].str.extract(r"^\(?(0\d{2,3})", 1)
    local = df["value"].str.replace(r"^\(?0\d{2,3}\)?", "").str.replace_all(r"[^0-9]", "")
    three = area.str.len_bytes().eq(3) & area.str.contains(r"^0(?:10|2\d)$") & local.str.len_bytes().eq(8)
    four = (area.str.len_bytes().eq(4) & area.str.contains(r"^0[3-9]\d\d$")
            & local.str.len_bytes().is_between(7, 8))
    return df.with_columns(pl.Series("valid", (three | four).fill_null(False)))


def _ref_email(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    local = df["value"].str.split("@").list.first()
    ok = ~local.str.starts_with(".") & ~local.str.ends_with(".") & ~df["value"].str.contains(r"\.\.")
    return df.with_columns(pl.Series("valid", ok.fill_null(False)))


def _ref_ipv4(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    parts = df["value"].str.split(".")
    four = parts.list.len().eq(4)
    octets = parts.list.eval(pl.element().cast(pl.Int64, strict=False))
    in_range = octets.list.max().le(255) & octets.list.min().ge(0)
    no_leading_zero = ~df["value"].str.contains(r"(?:^|\.)0\d")
    return df.with_columns(pl.Series("valid", (four & in_range & no_leading_zero).fill_null(False)))


def _ref_ipv6(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    v = df["value"]
    doubles = v.str.count_matches("::")
    colons = v.str.count_matches(":")
    groups = v.str.count_matches(r"[0-9A-Fa-f]{1,4}")
    ok = (
        ~v.str.contains(":::")
        & ~v.str.contains(r"^:[^:]") & ~v.str.contains(r"[^:]:$")
        & (((doubles == 0) & (colons == 7) & (groups == 8)) | ((doubles == 1) & (colons <= 7) & (groups <= 7)))
        & v.str.contains(r"[0-9A-Fa-f]")
    )
    return df.with_columns(pl.Series("valid", ok.fill_null(False)))


def _ref_gps(df: pl.DataFrame, ctx: ScanContext) -> pl.DataFrame:
    nums = df["value"].str.extract_all(r"-?\d{1,3}\.\d+").list.eval(pl.element().cast(pl.Float64))
    n = nums.list.len()
    lat, lon = nums.list.first(), nums.list.last()
    pair = n.eq(2) & lat.abs().le(90) & lon.abs().le(180)
    single = n.eq(1) & lat.abs().le(180)  # a latitude or longitude column, found only by its header
    return df.with_columns(pl.Series("valid", (pair | single).fill_null(False)))


REFERENCE_VALIDATORS = {"cn_bank_card": _ref_unionpay, "cn_bank_card_unchecked": _ref_unionpay_unchecked,
                        "payment_card": _ref_payment_card, "cn_mobile": _ref_mobile, "cn_landline": _ref_landline,
                        "email": _ref_email, "ipv4": _ref_ipv4, "ipv6": _ref_ipv6, "gps": _ref_gps}


def _ref_candidates(matches: pl.Series, negative_prefix: str | None) -> pl.DataFrame:
    frame = pl.DataFrame({"row": pl.int_range(0, matches.len(), dtype=pl.UInt32, eager=True), "value": matches})
    frame = frame.filter(pl.col("value").list.len() > 0)
    if frame.height == 0:
        return pl.DataFrame(schema={"row": pl.UInt32, "value": pl.String, "negated": pl.Boolean})
    frame = frame.explode("value").drop_nulls("value")
    if negative_prefix is None:
        return frame.with_columns(pl.lit(False).alias("negated"))
    return frame.with_columns(pl.col("value").str.contains(negative_prefix).alias("negated"),
                              pl.col("value").str.replace(negative_prefix, "").alias("value"))


def reference_find(values: pl.Series, header: str, ctx: ScanContext, detectors) -> pl.DataFrame:
    table = ctx.table
    values = values.cast(pl.String)
    signals = {det.name: header_signal(header, det.name, table) for det in detectors}
    patterns = {det.name: det.full_pattern(signals[det.name] > 0) for det in detectors}
    negative = table["negative_context"]["applies_to"]
    neg_prefix = f"(?:{negative_context_regex(table)}){CONTEXT_GAP}"
    groups: dict[str, list[str]] = {}
    guarded: set[str] = set()
    for det in detectors:
        members = groups.setdefault(det.group or det.name, [])
        if patterns[det.name] not in members:
            members.append(patterns[det.name])
        if det.name in negative:
            guarded.add(det.group or det.name)
    names = list(groups)

    def group_regex(g: str) -> str:
        alternation = "|".join(f"(?:{p})" for p in groups[g])
        return f"(?:{neg_prefix})?(?:{alternation})" if g in guarded else alternation

    extracted = pl.LazyFrame({"v": values}).select(
        [pl.col("v").str.extract_all(group_regex(g)).alias(f"g{i}") for i, g in enumerate(names)]).collect()
    candidates: dict[str, pl.DataFrame] = {}
    frames = []
    for order, det in enumerate(detectors):
        spec = table["detectors"][det.name]
        signal = signals[det.name]
        group = det.group or det.name
        if group not in candidates:
            candidates[group] = _ref_candidates(extracted[f"g{names.index(group)}"],
                                                f"^{neg_prefix}" if group in guarded else None)
        found = candidates[group]
        if len(groups[group]) > 1 and found.height:
            found = found.filter(pl.col("value").str.contains(f"^(?:{patterns[det.name]})$"))
        if found.height == 0:
            continue
        if det.context:
            ctx_re = f"^(?:{det.context}){CONTEXT_GAP}"
            found = found.with_columns(pl.col("value").str.contains(ctx_re).alias("context"),
                                       pl.col("value").str.replace(ctx_re, "").alias("value"))
        else:
            found = found.with_columns(pl.lit(False).alias("context"))
        validate = REFERENCE_VALIDATORS.get(det.name, det.validate)
        checked = validate(found, ctx).filter(pl.col("valid"))
        if checked.height == 0:
            continue
        if "minor" not in checked.columns:
            checked = checked.with_columns(pl.lit(False).alias("minor"))
        base = float(spec["confidence"])
        boost = float(table["header_boost"]) if signal > 0 else (-float(table["header_penalty"]) if signal < 0 else 0)
        conf = (pl.lit(base + boost) + pl.when(pl.col("context")).then(float(table["context_boost"])).otherwise(0.0))
        if spec.get("header_required") and signal <= 0:
            conf = pl.when(pl.col("context")).then(conf).otherwise(0.0)
        if det.name in negative:
            if header_is_negative_context(header, det.name, table):
                conf = pl.lit(0.0)
            else:
                conf = pl.when(pl.col("negated")).then(0.0).otherwise(conf)
        checked = checked.with_columns(conf.clip(0.0, 0.99).alias("confidence"), pl.lit(det.name).alias("detector"),
                                       pl.lit(signal).alias("_signal"), pl.lit(order).alias("_order"))
        checked = checked.filter(pl.col("confidence") >= float(table["min_confidence"]))
        frames.append(checked.select([*FOUND_SCHEMA, "_signal", "_order"]))
    if not frames:
        return empty_found()
    found = pl.concat(frames)
    found = found.sort(["row", "_signal", "_order"], descending=[False, True, False])
    found = found.unique(subset=["row", "value"], keep="first", maintain_order=True)
    return found.sort(["_order", "row"]).select(list(FOUND_SCHEMA)).cast(FOUND_SCHEMA)  # type: ignore[arg-type]


# --- a varied corpus ---------------------------------------------------------------------------------

def _values_of_every_kind(rng: random.Random) -> list[str]:
    """Identifiers bare, in groups, with context and negative-context words, near misses, noise and
    lines carrying several identifiers that overlap in shape."""
    gens = [g for g, _en, _zh in syn.ENTITIES.values()]
    misses = list(syn.NEAR_MISSES.values())
    words = ["卡号", "银行卡", "card", "护照", "passport", "回乡证", "通行证", "permit", "台胞证", "居住证",
             "residence permit", "IMEI", "imei", "串号", "订单号", "单号", "invoice", "tracking no", "发票号",
             "tel", "电话", ""]
    out: list[str] = []
    for line, _e, _v in syn.labelled_lines(rng, 4000):
        out.append(line)
    for _ in range(3000):
        parts = []
        for _ in range(rng.randrange(1, 5)):
            value = rng.choice(gens)(rng) if rng.random() < 0.7 else rng.choice(misses)(rng)
            if rng.random() < 0.3 and value.isdigit() and len(value) == 18:
                value = f"{value[:6]} {value[6:14]} {value[14:]}"
            elif rng.random() < 0.2 and value.isdigit() and len(value) >= 16:
                value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
            sep = rng.choice(["", " ", "：", ": ", "-", "，"])
            parts.append(f"{rng.choice(words)}{sep}{value}")
        out.append(rng.choice([" ", "，", ";", "\t", " / "]).join(parts))
    out += [syn.noise_line(rng) for _ in range(2000)]
    out += ["", "   ", "0", "+86 138 0013 8000", "(010)8888-6666", "0755 2345678", "H12345678(01)", "M1234567801",
            "12345678（02）", "P.1234567", "S12345678", "1412345678", "22.543099,114.057868", "22.543099",
            "京A·12345", "粤BD12345", "北京市朝阳区建国路88号", "fe80::1", "::1", "1::", "a.b@c.example.com",
            ".a@example.com", "a..b@example.com", "256.1.1.1", "01.2.3.4", "GB82 WEST 1234 5698 7654 32",
            "830000199001010012 810000198506120024", "621122627289523892",
            "6222021234567890121", "4111 1111 1111 1111", "3782 822463 10005", "台胞证 12345678", "台胞证：12345678(01)",
            "护照 P.1234567", "passport 1412345678", "订单号：621122627289523892", None]
    return out


@pytest.fixture(scope="module")
def table():
    return identifier_rules()


@pytest.fixture(scope="module")
def corpus() -> pl.Series:
    return pl.Series(_values_of_every_kind(random.Random(2026_12_06)), dtype=pl.String)


def _headers(table) -> list[str]:
    """No header, one header word of every detector, a negative header and a negative-context one."""
    out = ["", "comment", "备注"]
    for spec in table["detectors"].values():
        out.extend(spec["headers"][:1])
    out.extend(table["negative_headers"][:2])
    out.extend(table["negative_context"]["words"][:2])
    out.append("订单联系电话")
    return list(dict.fromkeys(out))


def test_find_gives_the_reference_results_on_a_varied_corpus(table, corpus):
    ctx = ScanContext(TODAY, table)
    detectors = build_detectors(table)
    headers = _headers(table)
    assert len(headers) > 20
    compared = 0
    for header in headers:
        expected = reference_find(corpus, header, ctx, detectors)
        got = find(corpus, header, ctx, detectors)
        assert_frame_equal(got.sort(pl.all()), expected.sort(pl.all()))
        compared += expected.height
    assert compared > 50_000  # the corpus really exercises the detectors


def test_find_gives_the_reference_results_on_small_and_empty_columns(table):
    ctx = ScanContext(TODAY, table)
    detectors = build_detectors(table)
    for values in ([], [None], [""], ["no identifiers here"], ["13800138000"], ["card 6200000000000005"],
                   ["订单号 13800138000"]):
        column = pl.Series(values, dtype=pl.String)
        assert_frame_equal(find(column, "", ctx, detectors).sort(pl.all()),
                           reference_find(column, "", ctx, detectors).sort(pl.all()))


def test_every_detector_finds_something_in_the_corpus(table, corpus):
    """Guards the comparison above: a corpus that missed a detector would compare nothing for it."""
    found = set(find(corpus, "", ScanContext(TODAY, table), build_detectors(table))["detector"].unique())
    assert set(det_mod.DETECTOR_NAMES) - found == set()


def test_several_matches_of_one_detector_in_a_row_keep_the_text_order(table):
    ids = [syn.resident_id(random.Random(seed)) for seed in range(6)]
    column = pl.Series([" ".join(ids), " / ".join(reversed(ids))])
    found = find(column, "", ScanContext(TODAY, table), build_detectors(table))
    assert found.filter(pl.col("row") == 0)["value"].to_list() == ids
    assert found.filter(pl.col("row") == 1)["value"].to_list() == ids[::-1]
