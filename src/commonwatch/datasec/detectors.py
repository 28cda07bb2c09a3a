"""Personal-information detectors, vectorised over a column of text.

Each detector is a regular expression that finds candidates (run by Polars over the whole column)
and a validator that checks them columnwise: check digits are computed with NumPy on a matrix of
digits (one row per candidate), never with a Python loop per value. What changes over time
(mobile number segments, plate provinces, header words, categories) comes from
``rules/pi_identifiers.yaml``.

:func:`find` returns every valid match with its row and confidence; full values stay inside the
returned frame, and callers keep only masked samples (:func:`mask`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from commonwatch.rules import RulesError, load_rules

#: Candidates as validators get them: in memory, or a lazy query (validators of Polars expressions
#: only keep it lazy, so that all of them run in the query that scores the matches).
Frame = pl.DataFrame | pl.LazyFrame
B = "(?-u:\\b)"  # an ASCII word boundary: Chinese text next to a number still counts as a boundary
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
_USCC_VALUE = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_VALUE[ord(_c)] = _i
#: IBAN length by country (ISO 13616 registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


# --- columnwise arithmetic ------------------------------------------------------------------------

def char_matrix(values: pl.Series, width: int) -> np.ndarray:
    """An (n, width) uint8 matrix of the ASCII codes of ``values``, all of byte length ``width``."""
    if values.len() == 0:
        return np.zeros((0, width), dtype=np.uint8)
    joined = values.str.join("").item()
    return np.frombuffer(joined.encode("ascii", "replace"), dtype=np.uint8).reshape(-1, width)


def luhn_valid(values: pl.Series) -> np.ndarray:
    """Luhn check of digit strings (any mix of lengths), grouped by length, computed with NumPy."""
    out = np.zeros(values.len(), dtype=bool)
    if values.len() == 0:
        return out
    lengths = values.str.len_bytes().to_numpy()
    for width in np.unique(lengths):
        idx = np.nonzero(lengths == width)[0]
        digits = char_matrix(values.gather(idx), int(width)).astype(np.int64) - 48
        if digits.size == 0:
            continue
        # Double every second digit from the right (the check digit is position 0 from the right).
        doubled = digits[:, ::-1].copy()
        doubled[:, 1::2] *= 2
        doubled[:, 1::2] -= 9 * (doubled[:, 1::2] > 9)
        out[idx] = (doubled.sum(axis=1) % 10) == 0
    return out


#: Province-level division codes of GB/T 2260 (first two digits of an address code), and 10 for
#: national-level registrations in a social credit code.
PROVINCE_CODES = np.zeros(100, dtype=bool)
PROVINCE_CODES[[11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53,
                54, 61, 62, 63, 64, 65, 71, 81, 82]] = True
#: First two digits an 18-digit number of the GB 11643 layout may start with: the provinces, and 83
#: (the 830000 address code of residence permits for Taiwan residents; 81/82 serve Hong Kong and
#: Macao residents' permits as well as the regions' GB/T 2260 codes).
ID_REGION_CODES = PROVINCE_CODES.copy()
ID_REGION_CODES[83] = True
ORG_CODE_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)


def resident_id_valid(values: pl.Series, today: date) -> tuple[np.ndarray, np.ndarray]:
    """(valid, under 14) for 18-character numbers of the GB 11643 layout: MOD 11-2 check, a
    province-level address code (or 9, the foreigners' permanent residence card, or 83, Taiwan
    residents' residence permits) and a real birth date."""
    m = char_matrix(values.str.to_uppercase(), 18)
    if m.shape[0] == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    digits = m[:, :17].astype(np.int64) - 48
    province = digits[:, 0] * 10 + digits[:, 1]
    check_ok = (ID_CHECK[(digits @ ID_WEIGHTS) % 11] == m[:, 17]) & (ID_REGION_CODES[province] | (digits[:, 0] == 9))
    year = digits[:, 6] * 1000 + digits[:, 7] * 100 + digits[:, 8] * 10 + digits[:, 9]
    month = digits[:, 10] * 10 + digits[:, 11]
    day = digits[:, 12] * 10 + digits[:, 13]
    birth = year * 10000 + month * 100 + day
    date_ok = valid_dates(year, month, day) & (year >= 1900) & (birth <= _ymd(today))
    under_14 = birth > _ymd(today) - 140000
    valid = check_ok & date_ok
    return valid, valid & under_14


def _ymd(d: date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def valid_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """True where (year, month, day) is a day of the Gregorian calendar."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    ok_month = (month >= 1) & (month <= 12)
    last = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    return ok_month & (day >= 1) & (day <= last)


def uscc_valid(values: pl.Series) -> np.ndarray:
    """GB 32100 check character of 18-character unified social credit codes."""
    m = char_matrix(values, 18)
    if m.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    v = _USCC_VALUE[m]
    ok_chars = (v >= 0).all(axis=1)
    expected = (31 - (v[:, :17] @ USCC_WEIGHTS) % 31) % 31
    # Positions 3-8: an administrative division code (province-level prefix, or 10 for national).
    division = np.clip(v[:, 2], 0, 9) * 10 + np.clip(v[:, 3], 0, 9)
    division_ok = PROVINCE_CODES[division] | (division == 10)
    # Positions 9-17: the GB 11714 organisation code, which carries its own check character.
    body = np.where((m[:, 8:16] >= 48) & (m[:, 8:16] <= 57), m[:, 8:16].astype(np.int64) - 48,
                    m[:, 8:16].astype(np.int64) - 55)
    c9 = 11 - (body @ ORG_CODE_WEIGHTS) % 11
    org_check = np.where(c9 == 10, ord("X"), np.where(c9 == 11, ord("0"), c9 + 48))
    return ok_chars & (expected == v[:, 17]) & division_ok & (org_check == m[:, 16])


def iban_valid(values: pl.Series) -> np.ndarray:
    """ISO 13616: the country's length and ISO 7064 mod 97-10 of the rearranged number."""
    out = np.zeros(values.len(), dtype=bool)
    if values.len() == 0:
        return out
    country = values.str.slice(0, 2)
    expected = country.replace_strict(IBAN_LENGTHS, default=0, return_dtype=pl.Int64).to_numpy()
    lengths = values.str.len_bytes().to_numpy()
    for width in np.unique(lengths):
        idx = np.nonzero((lengths == width) & (expected == width))[0]
        if idx.size == 0:
            continue
        m = char_matrix(values.gather(idx), int(width))
        m = np.concatenate([m[:, 4:], m[:, :4]], axis=1).astype(np.int64)
        is_digit = (m >= 48) & (m <= 57)
        value = np.where(is_digit, m - 48, m - 55)  # A=10 ... Z=35
        remainder = np.zeros(idx.size, dtype=np.int64)
        for col in range(value.shape[1]):  # over the ≤ 34 positions, vectorised over every candidate
            v = value[:, col]
            remainder = (remainder * np.where(v >= 10, 100, 10) + v) % 97
        out[idx] = remainder == 1
    return out


# --- the detectors ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Detector:
    name: str
    pattern: str
    #: Columnwise check of the candidates; returns the valid mask (and may add columns through extra).
    validate: Callable[[Frame, ScanContext], Frame]
    #: Words that, just before a match in free text, make it more likely (regex alternation).
    context: str = ""
    #: Only with a matching header, when the header says so.
    header_pattern: str = ""
    #: The pattern already includes its context words (several detectors share it).
    shared: bool = False
    #: Detectors of one group are extracted together, by one alternation of their patterns, and
    #: each then keeps the candidates its own pattern matches whole. Members must not overlap in
    #: shape (one leftmost match hides another that starts inside it).
    group: str = ""
    #: Columns computed once on a candidate frame and shared by the detectors that name the same
    #: function (the card family's number, ranges and Luhn check); their validators read them.
    facts: Callable[[pl.DataFrame], pl.DataFrame] | None = None

    def full_pattern(self, header_positive: bool, context_required: bool = False) -> str:
        """The regex run over the column: context words, the pattern, the header-only alternative.

        With ``context_required`` (a detector that reports nothing without its header or a context
        word, in a column whose header does not name it) the context word is part of every match:
        the matches without it would all be dropped, and a pattern that starts with a few words is
        found by a literal search instead of a pass of the automaton over every byte."""
        pattern = self.pattern
        if self.header_pattern and header_positive:
            pattern = f"(?:{self.pattern}|{self.header_pattern})"
        if self.context and not self.shared:
            optional = "" if context_required else "?"
            pattern = f"(?:(?:{self.context})[^0-9A-Za-z]{{0,8}}){optional}{pattern}"
        return pattern


@dataclass
class ScanContext:
    today: date
    table: dict[str, Any] = field(default_factory=dict)

    @property
    def mobile_prefixes(self) -> list[str]:
        return list(self.table["mobile_prefixes"])


def _digits(col: str = "value") -> pl.Expr:
    return pl.col(col).str.replace_all(r"[^0-9]", "")


def _eager(df: Frame) -> pl.DataFrame:
    """Validators with NumPy arithmetic need the candidates in memory; the others stay lazy."""
    return df.collect() if isinstance(df, pl.LazyFrame) else df


def _gb11643(df: Frame, ctx: ScanContext, permit: bool) -> pl.DataFrame:
    """Numbers of the GB 11643 layout (written whole or in 6-8-4 groups): resident ID numbers, or,
    with ``permit``, the residence permits of Hong Kong, Macao and Taiwan residents (rules file)."""
    df = _eager(df)
    compact = df["value"].str.replace_all(" ", "")
    valid, minors = resident_id_valid(compact, ctx.today)
    is_permit = compact.str.slice(0, 6).is_in(ctx.table["residence_permit_prefixes"]).to_numpy()
    keep = valid & (is_permit if permit else ~is_permit)
    return df.with_columns(pl.Series("valid", keep), pl.Series("minor", minors & keep))


def _v_resident_id(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    return _gb11643(df, ctx, permit=False)


def _v_residence_permit(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    return _gb11643(df, ctx, permit=True)


def _v_uscc(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    df = _eager(df)
    return df.with_columns(pl.Series("valid", uscc_valid(df["value"])))


def _v_mobile(df: Frame, ctx: ScanContext) -> Frame:
    number = pl.col("value").str.replace_all(r"[^0-9]", "").str.slice(-11)
    ok = number.str.len_bytes().eq(11) & number.str.slice(0, 3).is_in(ctx.mobile_prefixes)
    return df.with_columns(ok.fill_null(False).alias("valid"))


def _v_landline(df: Frame, ctx: ScanContext) -> Frame:
    area = pl.col("value").str.extract(r"^\(?(0\d{2,3})", 1)
    local = pl.col("value").str.replace(r"^\(?0\d{2,3}\)?", "").str.replace_all(r"[^0-9]", "")
    three = area.str.len_bytes().eq(3) & area.str.contains(r"^0(?:10|2\d)$") & local.str.len_bytes().eq(8)
    four = (area.str.len_bytes().eq(4) & area.str.contains(r"^0[3-9]\d\d$")
            & local.str.len_bytes().is_between(7, 8))
    return df.with_columns((three | four).fill_null(False).alias("valid"))


def _card_facts(df: Frame) -> pl.DataFrame:
    """The card arithmetic the three card detectors share, done once per candidate frame in one
    query: the number without separators' UnionPay range (62, 16-19 digits), international scheme
    range, and Luhn check (NumPy)."""
    number = pl.col("value").str.replace_all(" ", "", literal=True).str.replace_all("-", "", literal=True)
    facts = df.lazy().with_columns(number.alias("_number")).with_columns(
        (pl.col("_number").str.starts_with("62") & pl.col("_number").str.len_bytes().is_between(16, 19))
        .alias("_unionpay"),
        (_international_brand(pl.col("_number")) & ~pl.col("_number").str.starts_with("62")).alias("_brand"),
    ).collect()
    # Only a number in some scheme's range can be reported, with or without a passing Luhn check.
    ranged = (facts["_unionpay"] | facts["_brand"]).to_numpy()
    luhn = np.zeros(facts.height, dtype=bool)
    luhn[ranged] = luhn_valid(facts["_number"].filter(ranged))
    return facts.with_columns(pl.Series("_luhn", luhn)).drop("_number")


def _international_brand(number: pl.Expr) -> pl.Expr:
    """True where the number is in the range and length of an international card scheme."""
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
    return (visa | master | amex | jcb | discover | diners).fill_null(False)


def _with_card_facts(df: Frame) -> pl.DataFrame:
    return df if isinstance(df, pl.DataFrame) and "_luhn" in df.columns else _card_facts(df)


def _v_unionpay(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    return _with_card_facts(df).with_columns((pl.col("_unionpay") & pl.col("_luhn")).alias("valid"))


def _v_unionpay_unchecked(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    return _with_card_facts(df).with_columns((pl.col("_unionpay") & ~pl.col("_luhn")).alias("valid"))


def _v_payment_card(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    return _with_card_facts(df).with_columns((pl.col("_brand") & pl.col("_luhn")).alias("valid"))


def _v_iban(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    df = _eager(df)
    compact = df["value"].str.replace_all(" ", "")
    return df.with_columns(pl.Series("valid", iban_valid(compact)))


def _v_always(df: Frame, ctx: ScanContext) -> Frame:
    return df.with_columns(pl.lit(True).alias("valid"))


def _v_email(df: Frame, ctx: ScanContext) -> Frame:
    local = pl.col("value").str.split("@").list.first()
    ok = ~local.str.starts_with(".") & ~local.str.ends_with(".") & ~pl.col("value").str.contains(r"\.\.")
    return df.with_columns(ok.fill_null(False).alias("valid"))


def _v_ipv4(df: Frame, ctx: ScanContext) -> Frame:
    parts = pl.col("value").str.split(".")
    four = parts.list.len().eq(4)
    octets = parts.list.eval(pl.element().cast(pl.Int64, strict=False))
    in_range = octets.list.max().le(255) & octets.list.min().ge(0)
    no_leading_zero = ~pl.col("value").str.contains(r"(?:^|\.)0\d")
    return df.with_columns((four & in_range & no_leading_zero).fill_null(False).alias("valid"))


def _v_ipv6(df: Frame, ctx: ScanContext) -> Frame:
    v = pl.col("value")
    doubles = v.str.count_matches("::")
    colons = v.str.count_matches(":")
    groups = v.str.count_matches(r"[0-9A-Fa-f]{1,4}")
    ok = (
        ~v.str.contains(":::")
        & ~v.str.contains(r"^:[^:]") & ~v.str.contains(r"[^:]:$")
        & (((doubles == 0) & (colons == 7) & (groups == 8)) | ((doubles == 1) & (colons <= 7) & (groups <= 7)))
        & v.str.contains(r"[0-9A-Fa-f]")
    )
    return df.with_columns(ok.fill_null(False).alias("valid"))


def _v_imei(df: Frame, ctx: ScanContext) -> pl.DataFrame:
    df = _eager(df)
    number = df["value"].str.replace_all(r"[^0-9]", "").str.slice(-15)
    not_card = ~(number.str.slice(0, 2).is_in(["34", "37"]))
    return df.with_columns(pl.Series("valid", number.str.len_bytes().eq(15).to_numpy()
                                     & not_card.to_numpy() & luhn_valid(number)))


def _v_gps(df: Frame, ctx: ScanContext) -> Frame:
    nums = pl.col("value").str.extract_all(r"-?\d{1,3}\.\d+").list.eval(pl.element().cast(pl.Float64))
    n = nums.list.len()
    lat, lon = nums.list.first(), nums.list.last()
    pair = n.eq(2) & lat.abs().le(90) & lon.abs().le(180)
    single = n.eq(1) & lat.abs().le(180)  # a latitude or longitude column, found only by its header
    return df.with_columns((pair | single).fill_null(False).alias("valid"))


@lru_cache(maxsize=4)
def _cached_rules(data_dir: str | None) -> dict[str, Any]:
    return validate_identifier_rules(load_rules("pi_identifiers.yaml", Path(data_dir) if data_dir else None))


def identifier_rules(data_dir: Path | None = None) -> dict[str, Any]:
    """The checked ``pi_identifiers`` rules (an operator's copy wins)."""
    return _cached_rules(str(data_dir) if data_dir else None)


def validate_identifier_rules(data: dict[str, Any]) -> dict[str, Any]:
    """Refuse a malformed ``pi_identifiers`` file with the reason."""
    origin = "pi_identifiers.yaml"
    for key in ("detectors", "mobile_prefixes", "plate_provinces", "address_regions", "negative_headers",
                "negative_context", "residence_permit_prefixes", "sensitive_categories", "pi_categories"):
        if key not in data:
            raise RulesError(origin, f"lacks '{key}'")
    neg = data["negative_context"]
    if not isinstance(neg, dict) or not neg.get("words") or not isinstance(neg.get("applies_to"), list):
        raise RulesError(origin, "negative_context needs a list of 'words' and a list 'applies_to'")
    unknown = [n for n in neg["applies_to"] if n not in DETECTOR_NAMES]
    if unknown:
        raise RulesError(origin, f"negative_context.applies_to names unknown detectors: {unknown}")
    bad_prefix = [p for p in data["residence_permit_prefixes"] if not re.fullmatch(r"[1-9]\d{5}", str(p))]
    if bad_prefix:
        raise RulesError(origin, f"residence_permit_prefixes has entries that are not 6-digit address codes: "
                                 f"{bad_prefix[:5]}")
    for name in DETECTOR_NAMES:
        spec = data["detectors"].get(name)
        if not isinstance(spec, dict):
            raise RulesError(origin, f"has no entry for detector '{name}'")
        for key in ("en", "zh", "confidence", "status", "headers"):
            if key not in spec:
                raise RulesError(origin, f"detector '{name}' lacks '{key}'")
        if spec["status"] not in ("verified", "provisional"):
            raise RulesError(origin, f"detector '{name}': status must be verified or provisional")
        if not 0 < float(spec["confidence"]) <= 1:
            raise RulesError(origin, f"detector '{name}': confidence must be in (0, 1]")
        cat = spec.get("sensitive_category")
        if cat is not None and cat not in data["sensitive_categories"]:
            raise RulesError(origin, f"detector '{name}': unknown sensitive category '{cat}'")
        if spec.get("possible") and not all((spec.get("possible_reason") or {}).get(k) for k in ("en", "zh")):
            raise RulesError(origin, f"detector '{name}': a possible-only detector needs possible_reason en and zh")
        pcat = spec.get("pi_category")
        if pcat is not None and pcat not in data["pi_categories"]:
            raise RulesError(origin, f"detector '{name}': unknown PI category '{pcat}'")
    bad = [p for p in data["mobile_prefixes"] if not re.fullmatch(r"1\d{2,3}", str(p))]
    if bad:
        raise RulesError(origin, f"mobile_prefixes has entries that are not number segments: {bad[:5]}")
    return data


def build_detectors(table: dict[str, Any]) -> list[Detector]:
    """The detectors, with the data they need from the rules file.

    Patterns use ``[0-9]`` rather than ``\\d`` (Unicode digits would make the automata larger and
    slower, and identifiers are written in ASCII digits). Detectors that share a pattern (the card
    family) share one extraction.
    """
    provinces = re.escape(table["plate_provinces"])
    regions = "|".join(re.escape(r) for r in table["address_regions"])
    letters = "A-HJ-NP-Z"
    d = "[0-9]"
    # 18 characters of the GB 11643 layout, whole or in groups of 6, 8 and 4 separated by a space.
    id_tail = rf"(?:{d}{{11}}| {d}{{8}} {d}{{3}})[0-9Xx]"
    permits = "|".join(re.escape(p) for p in table["residence_permit_prefixes"])
    card = (r"(?:(?:卡号|银行卡|card)[^0-9A-Za-z]{0,8})?" + B
            + rf"[2-6]{d}{{3}}(?:[ -]?{d}{{4}}){{2}}[ -]?{d}{{1,4}}(?:[ -]?{d}{{1,3}})?" + B)
    return [
        Detector("cn_resident_id", B + rf"[1-9]{d}{{5}}{id_tail}" + B, _v_resident_id, group="ids"),
        Detector("hmt_residence_permit", B + rf"(?:{permits}){id_tail}" + B, _v_residence_permit,
                 context=r"居住证|residence permit", group="ids"),
        Detector("cn_uscc", B + rf"[0-9{letters}]{{2}}{d}{{6}}[0-9{letters}]{{10}}" + B, _v_uscc, group="ids"),
        Detector("cn_mobile", r"(?:\+86[- ]?|" + B + r"86[- ]?|" + B + rf")1[3-9]{d}[- ]?{d}{{4}}[- ]?{d}{{4}}" + B,
                 _v_mobile, group="phone"),
        Detector("cn_landline", rf"(?:\(0{d}{{2,3}}\)[- ]?|" + B + rf"0{d}{{2,3}}[- ])[2-9]{d}{{2,3}}[- ]?{d}{{4}}" + B,
                 _v_landline, group="phone"),
        Detector("cn_bank_card", card, _v_unionpay, context=r"卡号|银行卡|card", shared=True,
                 group="card", facts=_card_facts),
        Detector("cn_bank_card_unchecked", card, _v_unionpay_unchecked, context=r"卡号|银行卡|card", shared=True,
                 group="card", facts=_card_facts),
        Detector("payment_card", card, _v_payment_card, context=r"卡号|银行卡|card", shared=True,
                 group="card", facts=_card_facts),
        Detector("iban", B + rf"[A-Z]{{2}}{d}{{2}}(?: ?[A-Z0-9]{{4}}){{2,7}}(?: ?[A-Z0-9]{{1,3}})?" + B, _v_iban,
                 group="ids"),
        Detector("cn_passport", B + rf"(?:E[{letters}]{d}{{7}}|[EG]{d}{{8}}|[PSD]E{d}{{7}}|K{d}{{8}}|MA{d}{{7}})" + B,
                 _v_always, context=r"护照|passport", group="ids"),
        # Older forms: 14/15 + 7 digits (non-chip ordinary), P./S. + 7, S + 8, D + 7; too plain to
        # report without a passport header or keyword.
        Detector("cn_passport_old", B + rf"(?:1[45]{d}{{7}}|[PS]\.{d}{{7}}|S{d}{{8}}|D{d}{{7}})" + B, _v_always,
                 context=r"护照|passport"),
        # The card prints H/M and the 8-digit lifetime number; the renewal count may follow it,
        # joined or after a space, a hyphen or in brackets.
        Detector("hk_macao_permit", B + rf"[HM]{d}{{8}}(?:[(（]{d}{{2}}[)）]|(?:[ -]?{d}{{2}})?" + B + ")",
                 _v_always, context=r"回乡证|通行证|permit", group="ids"),
        Detector("tw_compatriot_permit", B + rf"{d}{{8}}(?:[(（]{d}{{2}}[)）]|(?:[ -]?{d}{{2}})?" + B + ")",
                 _v_always, context=r"台胞证|台湾居民来往大陆通行证"),
        Detector("vehicle_plate", "[" + provinces + "][" + letters + r"][·• ]?"
                 + rf"(?:[DF][{letters}0-9]{d}{{4}}|{d}{{5}}[DF]|[{letters}0-9]{{5}})" + B, _v_always, group="han"),
        Detector("email", r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}" + B, _v_email,
                 group="net"),
        Detector("ipv4", B + rf"{d}{{1,3}}(?:\.{d}{{1,3}}){{3}}(?:\.{d}+)*" + B, _v_ipv4, group="net"),
        Detector("ipv6", r"(?:" + B + r"[0-9A-Fa-f]{1,4}|(?-u:\B))(?::[0-9A-Fa-f]{0,4}){2,8}", _v_ipv6, group="net"),
        Detector("imei", B + rf"{d}{{2}}[- ]?{d}{{6}}[- ]?{d}{{6}}[- ]?{d}" + B, _v_imei, context=r"(?i:imei)|串号"),
        Detector("gps", r"-?" + B + rf"{d}{{1,2}}\.{d}{{4,8}}[ \t]*[,，][ \t]*-?{d}{{1,3}}\.{d}{{4,8}}" + B, _v_gps,
                 header_pattern=r"-?" + B + rf"{d}{{1,3}}\.{d}{{4,8}}" + B, group="net"),
        Detector("cn_postal_address", r"(?:" + regions + r")[\p{Han}0-9]{0,12}?(?:市|区|县)[\p{Han}0-9]{0,24}?"
                 r"(?:路|街|大道|巷|弄|胡同|村)[0-9]{1,5}号", _v_always, group="han"),
    ]


DETECTOR_NAMES = ("cn_resident_id", "hmt_residence_permit", "cn_uscc", "cn_mobile", "cn_landline", "cn_bank_card",
                  "cn_bank_card_unchecked", "payment_card", "iban", "cn_passport", "cn_passport_old", "hk_macao_permit",
                  "tw_compatriot_permit", "vehicle_plate", "email", "ipv4", "ipv6", "imei", "gps", "cn_postal_address")


# --- header words ---------------------------------------------------------------------------------

def _norm_header(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def header_signal(header: str, detector: str, table: dict[str, Any]) -> int:
    """+1 if the header names this kind of data, -1 if it names something that is not personal, else 0."""
    h = _norm_header(header)
    if not h:
        return 0
    words = table["detectors"][detector]["headers"]
    if any(_norm_header(w) in h for w in words):
        return 1
    if any(_norm_header(w) in h for w in table["negative_headers"]):
        return -1
    return 0


def negative_context_regex(table: dict[str, Any]) -> str:
    """The rules' negative-context words (order, invoice, tracking numbers ...) as one alternation,
    longest first so that 订单号 wins over 单号; case-insensitive."""
    words = sorted(table["negative_context"]["words"], key=len, reverse=True)
    return "(?i:" + "|".join(re.escape(w) for w in words) + ")"


def header_is_negative_context(header: str, detector: str, table: dict[str, Any]) -> bool:
    """True where the header names an order, invoice or tracking number (and does not also name this
    detector's kind of data, as 订单联系电话 does): its values are not reported as this identifier."""
    neg = table["negative_context"]
    if detector not in neg["applies_to"] or header_signal(header, detector, table) > 0:
        return False
    h = _norm_header(header)
    return bool(h) and any(_norm_header(w) in h for w in neg["words"])


# --- finding matches -------------------------------------------------------------------------------

FOUND_SCHEMA = {"row": pl.UInt32, "detector": pl.String, "value": pl.String, "context": pl.Boolean,
                "minor": pl.Boolean, "confidence": pl.Float64}
#: Text allowed between a context word and the value it qualifies.
CONTEXT_GAP = "[^0-9A-Za-z]{0,8}"


def empty_found() -> pl.DataFrame:
    return pl.DataFrame(schema=FOUND_SCHEMA)


def find(values: pl.Series, header: str, ctx: ScanContext, detectors: list[Detector]) -> pl.DataFrame:
    """Every valid match in a column: row, detector, full value, context seen, minor, confidence.

    Vectorised, in a few queries whatever the number of detectors: the detectors' regexes run over
    the whole column in one parallel Polars query (each group's alternation once); one more query
    turns every group's matches into candidate rows with, per member, whether its own pattern
    matches whole, its context word and the value without it; each detector then checks its
    candidates columnwise (detectors of one family share their arithmetic, see ``Detector.facts``),
    and one last query scores, filters and orders them all. The header raises or lowers the
    confidence; a negative context (an order or invoice number word in the header or just before the
    value) drops the match; matches below the rules' ``min_confidence`` are dropped. Where two
    detectors accept the same value, the one the header names wins.
    """
    table = ctx.table
    values = values.cast(pl.String)
    signals = {det.name: header_signal(header, det.name, table) for det in detectors}
    # A header-required detector's matches without a context word get confidence 0 where the header
    # does not name it, and are dropped before one value is given to one detector: they need not be
    # found. Its context words share no first letters with the values or the negative-context words,
    # so requiring them finds the same matches with a context word as the optional form does.
    required = {det.name for det in detectors if det.context and not det.shared and signals[det.name] <= 0
                and table["detectors"][det.name].get("header_required")}
    patterns = {det.name: det.full_pattern(signals[det.name] > 0, det.name in required) for det in detectors}
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
        # A negative-context word just before the value is captured with it, then marks it.
        return f"(?:{neg_prefix})?(?:{alternation})" if g in guarded else alternation

    source = pl.LazyFrame({"v": values}).with_row_index("row")
    plans = []
    for g in names:
        members = [d for d in detectors if (d.group or d.name) == g]
        rows = source
        if all(d.name in required for d in members):
            # Only rows with one of the context words can hold a match: a literal search finds them.
            rows = rows.filter(pl.col("v").str.contains("|".join(f"(?:{d.context})" for d in members)))
        plans.append(_group_candidates(rows.select("row", pl.col("v").str.extract_all(group_regex(g)).alias("value")),
                                       g in guarded and f"^{neg_prefix}", members, patterns, len(groups[g]) > 1))
    frames = dict(zip(names, pl.collect_all(plans), strict=True))
    scored = []
    shared_facts: dict[tuple[str, Any], pl.DataFrame] = {}
    for order, det in enumerate(detectors):
        spec = table["detectors"][det.name]
        signal = signals[det.name]
        group = det.group or det.name
        candidates = frames[group]
        if candidates.height == 0:
            continue
        found: Frame = candidates.lazy()
        if len(groups[group]) > 1:
            if not candidates[f"m:{det.name}"].any():
                continue
            found = found.filter(pl.col(f"m:{det.name}"))
        if det.context:
            found = found.select("row", pl.col(f"v:{det.context}").alias("value"),
                                 pl.col(f"c:{det.context}").alias("context"), "negated")
        else:
            found = found.select("row", "value", pl.lit(False).alias("context"), "negated")
        if det.facts is not None:  # computed once for the detectors of one family on one candidate frame
            key = (group, det.facts, patterns[det.name], det.context)
            if key not in shared_facts:
                shared_facts[key] = det.facts(found)
            found = shared_facts[key]
        checked = det.validate(found, ctx).lazy()
        if "minor" not in checked.collect_schema().names():
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
        scored.append(checked.filter(pl.col("valid")).select(
            "row", pl.lit(det.name).alias("detector"), "value", "context", "minor",
            conf.clip(0.0, 0.99).alias("confidence"), pl.lit(signal).alias("_signal"), pl.lit(order).alias("_order"),
        ).filter(pl.col("confidence") >= float(table["min_confidence"])))
    if not scored:
        return empty_found()
    # One value is one identifier. Where two detectors accept the same text (a bank card that also
    # passes the USCC check), the detector the header names keeps it; with no header word for
    # either, the earlier, more specific detector does (an ID number is not a credit code).
    # Stable sorts: a detector's matches within one row stay in the order they occur.
    found = (pl.concat(scored).sort(["row", "_signal", "_order"], descending=[False, True, False], maintain_order=True)
             .unique(subset=["row", "value"], keep="first", maintain_order=True)
             .sort(["_order", "row"], maintain_order=True).select(list(FOUND_SCHEMA)).cast(FOUND_SCHEMA)  # type: ignore[arg-type]
             .collect())
    return found if found.height else empty_found()


def _group_candidates(matches: pl.LazyFrame, negative_prefix: str | Literal[False], members: list[Detector],
                      patterns: dict[str, str], several: bool) -> pl.LazyFrame:
    """One row per match of a group (``matches``: row, list of matches); ``negated`` where a
    negative-context word came with it (then stripped); with several patterns in the group,
    ``m:<detector>`` where that member's own pattern matches the candidate whole; per context of a
    member, ``c:<context>`` where its word came first and ``v:<context>`` the value without it."""
    frame = matches.filter(pl.col("value").list.len() > 0).explode("value").drop_nulls("value")
    if negative_prefix:
        frame = frame.with_columns(pl.col("value").str.contains(negative_prefix).alias("negated"),
                                   pl.col("value").str.replace(negative_prefix, "").alias("value"))
    else:
        frame = frame.with_columns(pl.lit(False).alias("negated"))
    flags: dict[str, pl.Expr] = {}
    for det in members:
        if several:
            flags[f"m:{det.name}"] = pl.col("value").str.contains(f"^(?:{patterns[det.name]})$")
        if det.context:
            ctx_re = f"^(?:{det.context}){CONTEXT_GAP}"
            flags[f"c:{det.context}"] = pl.col("value").str.contains(ctx_re)
            flags[f"v:{det.context}"] = pl.col("value").str.replace(ctx_re, "")
    return frame.with_columns(**flags) if flags else frame


# --- masking ----------------------------------------------------------------------------------------

def mask(value: str, detector: str) -> str:
    """A sample safe to store and show: enough to recognise the kind of value, never the value."""
    v = value.strip()
    if detector == "email":
        local, _at, domain = v.partition("@")
        return f"{local[:1]}***@{domain}"
    if detector in ("ipv4",):
        parts = v.split(".")
        return ".".join(parts[:2] + ["*", "*"])
    if detector == "ipv6":
        return v.split(":")[0] + ":****:****"
    if detector == "gps":
        return re.sub(r"(\d+\.\d)\d+", r"\1***", v)
    if detector == "cn_postal_address":
        return v[:4] + "****"
    if detector == "vehicle_plate":
        return v[:2] + "***" + v[-1:] if len(v) > 4 else "****"
    if detector == "cn_mobile":
        digits = re.sub(r"\D", "", v)[-11:]
        return f"{digits[:3]}****{digits[-2:]}"
    compact = re.sub(r"[\s\-]", "", v)
    keep_head = 4 if detector in ("cn_bank_card", "cn_bank_card_unchecked", "payment_card", "iban") else 3
    keep_tail = 2
    if len(compact) <= keep_head + keep_tail + 2:
        return compact[:1] + "*" * (len(compact) - 1)
    return compact[:keep_head] + "*" * (len(compact) - keep_head - keep_tail) + compact[-keep_tail:]
