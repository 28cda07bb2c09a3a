"""The detectors: every valid identifier of a generated corpus is accepted and every one with a
wrong check digit rejected; formats, headers and log-like noise behave as documented."""

from __future__ import annotations

import random
from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commonwatch.datasec import synthetic as syn
from commonwatch.datasec.detectors import (
    ScanContext,
    build_detectors,
    find,
    iban_valid,
    identifier_rules,
    luhn_valid,
    mask,
    resident_id_valid,
    uscc_valid,
    validate_identifier_rules,
)
from commonwatch.rules import RulesError

TODAY = date(2026, 11, 25)
N = 3000


def _detected(values: list[str], ctx, detectors, header: str = "") -> pl.DataFrame:
    return find(pl.Series(values), header, ctx, detectors)


# --- check digits: every valid accepted, every invalid rejected -------------------------------------

def test_reference_samples_from_the_facts():
    assert resident_id_valid(pl.Series(["360426199101010071"]), TODAY)[0].tolist() == [True]
    assert uscc_valid(pl.Series(["91110000600037341L"])).tolist() == [True]
    assert luhn_valid(pl.Series(["6200000000000005", "354178036859789", "354178036859781"])).tolist() == [
        True, True, False]
    assert iban_valid(pl.Series(["GB82WEST12345698765432", "GB83WEST12345698765432"])).tolist() == [True, False]


def test_resident_id_checksum_accepts_every_valid_and_rejects_every_wrong_check():
    rng = random.Random(11)
    valid = [syn.resident_id(rng) for _ in range(N)]
    wrong = [syn.wrong_check(v, "0123456789X") for v in valid]
    ok, _minor = resident_id_valid(pl.Series(valid), TODAY)
    bad, _ = resident_id_valid(pl.Series(wrong), TODAY)
    assert ok.all()
    assert not bad.any()


def test_resident_id_needs_a_real_birth_date_and_a_province():
    def with_check(body: str) -> str:
        return body + syn.id_check(body)

    cases = {
        with_check("11010120000229001"): True,  # 2000 is a leap year
        with_check("11010119000229001"): False,  # 1900 is not
        with_check("11010119910230001"): False,  # 30 February
        with_check("11010119911301001"): False,  # month 13
        with_check("11010120271231001"): False,  # born after the scan date
        with_check("11010118991231001"): False,  # before 1900
        with_check("16010119910101001"): False,  # no province 16
        with_check("93010119910101001"): True,  # 9: foreigners' permanent residence card
    }
    ok, _ = resident_id_valid(pl.Series(list(cases)), TODAY)
    assert dict(zip(cases, ok.tolist(), strict=True)) == cases


def test_minors_under_14_are_counted_from_the_birth_date():
    rng = random.Random(3)
    child = syn.resident_id(rng, date(2013, 11, 26))  # 14 tomorrow
    teen = syn.resident_id(rng, date(2012, 11, 25))  # 14 today
    ok, minor = resident_id_valid(pl.Series([child, teen]), TODAY)
    assert ok.tolist() == [True, True] and minor.tolist() == [True, False]


def test_uscc_checksum_accepts_every_valid_and_rejects_every_wrong_check():
    rng = random.Random(12)
    valid = [syn.uscc(rng) for _ in range(N)]
    wrong = [syn.wrong_check(v, "0123456789ABCDEFGHJKLMNPQRTUWXY") for v in valid]
    assert uscc_valid(pl.Series(valid)).all()
    assert not uscc_valid(pl.Series(wrong)).any()
    # Letters I, O, S, V, Z are not in the code's alphabet.
    assert not uscc_valid(pl.Series(["91110000600037341I"])).any()


@pytest.mark.parametrize("make", [syn.unionpay_card, syn.visa_card, syn.mastercard, syn.imei])
def test_luhn_accepts_every_valid_and_rejects_every_wrong_check(make):
    rng = random.Random(13)
    valid = [make(rng) for _ in range(N)]
    wrong = [syn.wrong_check(v) for v in valid]
    assert luhn_valid(pl.Series(valid)).all()
    assert not luhn_valid(pl.Series(wrong)).any()


def test_iban_mod97_accepts_every_valid_and_rejects_every_wrong_check():
    rng = random.Random(14)
    countries = [("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18), ("ES", 24), ("CH", 21)]
    valid = [syn.iban(rng, *rng.choice(countries)) for _ in range(N)]
    # Digits of the BBAN are 0-9 only here; change one and the mod-97 check fails.
    wrong = [v[:-1] + str((int(v[-1]) + 1) % 10) for v in valid]
    assert iban_valid(pl.Series(valid)).all()
    assert not iban_valid(pl.Series(wrong)).any()
    assert not iban_valid(pl.Series(["DE89370400440532013000X"])).any()  # wrong length for DE


def test_checksum_detectors_in_text_accept_valid_and_reject_near_misses(ctx, detectors):
    rng = random.Random(15)
    for name, gen in (("cn_resident_id", syn.resident_id), ("cn_uscc", syn.uscc), ("cn_bank_card", syn.unionpay_card),
                      ("payment_card", syn.visa_card), ("iban", syn.iban)):
        valid = [gen(rng) for _ in range(500)]
        near = [syn.NEAR_MISSES[name](rng) for _ in range(500)]
        found = _detected([f"ref {v} ok" for v in valid], ctx, detectors)
        assert set(found.filter(pl.col("detector") == name)["row"].to_list()) == set(range(500)), name
        missed = _detected([f"ref {v} ok" for v in near], ctx, detectors)
        assert missed.filter(pl.col("detector") == name).height == 0, name


def test_imei_needs_its_header_or_keyword(ctx, detectors):
    rng = random.Random(16)
    values = [syn.imei(rng) for _ in range(200)]
    assert _detected(values, ctx, detectors).filter(pl.col("detector") == "imei").height == 0
    assert _detected(values, ctx, detectors, header="IMEI").filter(pl.col("detector") == "imei").height == 200
    assert _detected([f"设备IMEI：{v}" for v in values], ctx, detectors).filter(
        pl.col("detector") == "imei").height == 200


# --- formats ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "detector", "expected"), [
    ("联系 13812345678", "cn_mobile", True),
    ("+86 138-1234-5678", "cn_mobile", True),
    ("8613912345678", "cn_mobile", True),
    ("12012345678", "cn_mobile", False),  # no 120 segment
    ("14012345678", "cn_mobile", False),  # 140: IoT numbers are 13 digits
    ("138123456789", "cn_mobile", False),  # 12 digits
    ("tel (010)62345678", "cn_landline", True),
    ("0755-8123456", "cn_landline", True),
    ("021 61234567", "cn_landline", True),
    ("011-62345678", "cn_landline", False),  # no 011 area
    ("0755-1234567", "cn_landline", False),  # local numbers do not start with 1
    ("京A12345", "vehicle_plate", True),
    ("粤BD12345", "vehicle_plate", True),  # small new-energy
    ("沪A12345D", "vehicle_plate", True),  # large new-energy
    ("京A1234", "vehicle_plate", False),
    ("护照 E12345678", "cn_passport", True),
    ("EF1234567", "cn_passport", True),
    ("EI1234567", "cn_passport", False),  # no I in new series
    ("回乡证 H1234567801", "hk_macao_permit", True),
    ("M12345678", "hk_macao_permit", True),
    ("a.b@example.com", "email", True),
    ("a..b@example.com", "email", False),
    ("192.168.1.10", "ipv4", True),
    ("256.1.1.1", "ipv4", False),
    ("1.3.6.1.4.1", "ipv4", False),  # an OID, not an address
    ("2001:db8::1", "ipv6", True),
    ("fe80:0:0:0:202:b3ff:fe1e:8329", "ipv6", True),
    ("10:00:00", "ipv6", False),
    ("00:1a:2b:3c:4d:5e", "ipv6", False),  # a MAC address
    ("39.904200, 116.407400", "gps", True),
    ("95.123456, 116.407400", "gps", False),
    ("北京市朝阳区建国路88号", "cn_postal_address", True),
    ("浙江省杭州市西湖区文三路478号", "cn_postal_address", True),
    ("IBAN DE89 3704 0044 0532 0130 00", "iban", True),
    ("4111 1111 1111 1111", "payment_card", True),
    ("378282246310005", "payment_card", True),  # Amex
    ("6011111111111117", "payment_card", True),  # Discover
])
def test_formats(ctx, detectors, text, detector, expected):
    found = _detected([text], ctx, detectors)
    assert (found.filter(pl.col("detector") == detector).height > 0) is expected, found


def test_headers_in_chinese_and_english_raise_and_lower_confidence(ctx, detectors):
    rng = random.Random(17)
    ids = [syn.resident_id(rng) for _ in range(20)]
    plain = _detected(ids, ctx, detectors)["confidence"].mean()
    for header in ("身份证号", "id_no", "公民身份号码", "ID Card"):
        assert _detected(ids, ctx, detectors, header)["confidence"].mean() > plain, header
    assert _detected(ids, ctx, detectors, "创建时间 timestamp")["confidence"].mean() < plain
    phones = [syn.mobile(rng) for _ in range(20)]
    assert _detected(phones, ctx, detectors, "手机号")["confidence"].mean() > _detected(
        phones, ctx, detectors, "port")["confidence"].mean()


def test_unionpay_without_luhn_is_reported_only_under_a_card_header(ctx, detectors):
    rng = random.Random(18)
    bad = [syn.wrong_check(syn.unionpay_card(rng)) for _ in range(50)]
    plain = _detected(bad, ctx, detectors)
    assert plain.filter(pl.col("detector").str.starts_with("cn_bank_card")).height == 0
    carded = _detected(bad, ctx, detectors, "银行卡号")
    assert set(carded["detector"].to_list()) == {"cn_bank_card_unchecked"}
    assert carded["confidence"].max() < 0.85


def test_log_like_noise_yields_almost_nothing(ctx, detectors):
    """Timestamps, order ids, port lists and hashes: the false positives pattern tools are known for."""
    rng = random.Random(19)
    noise = [syn.noise_line(rng) for _ in range(20_000)]
    found = _detected(noise, ctx, detectors)
    # Chance alone lets a few random long numbers pass a check digit; keep that under 0.5 %.
    assert found["row"].n_unique() < 100, found.group_by("detector").len()
    assert found.filter(pl.col("detector").is_in(["ipv4", "ipv6", "gps", "cn_landline", "email"])).height == 0


def test_labelled_corpus_recall_and_precision(ctx, detectors):
    rng = random.Random(20)
    lines = list(syn.labelled_lines(rng, 10_000))
    found = _detected([line for line, _e, _v in lines], ctx, detectors)
    predicted = {(r, d) for r, d in found.select("row", "detector").iter_rows()}
    truth = {(i, e) for i, (_l, e, _v) in enumerate(lines) if e}
    recall = len(truth & predicted) / len(truth)
    precision = len(truth & predicted) / len(predicted)
    assert recall == 1.0
    assert precision > 0.97


def test_mixed_encodings_decode_to_the_same_findings(ctx, detectors, tmp_path):
    from commonwatch.datasec.scanner import scan_path

    rng = random.Random(21)
    rows = [f"{syn.person_name(rng)},{syn.resident_id(rng)},{syn.mobile(rng)}" for _ in range(30)]
    text = "姓名,身份证号,手机号\n" + "\n".join(rows) + "\n"
    results = []
    for encoding in ("utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"):
        path = tmp_path / f"people-{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        report = scan_path(path, today=TODAY)
        results.append(sorted((f.field, f.detector, f.count) for f in report.findings))
    assert all(r == results[0] for r in results)
    assert ("身份证号", "cn_resident_id", 30) in results[0]


# --- masking and robustness --------------------------------------------------------------------------

def test_masks_never_return_the_value():
    rng = random.Random(22)
    samples = {"cn_resident_id": syn.resident_id(rng), "cn_mobile": syn.mobile(rng), "email": syn.email(rng),
               "cn_bank_card": syn.unionpay_card(rng), "iban": syn.iban(rng), "ipv4": syn.ipv4(rng),
               "ipv6": syn.ipv6(rng), "gps": syn.gps(rng), "vehicle_plate": syn.plate(rng),
               "cn_postal_address": syn.address(rng), "cn_passport": syn.passport(rng),
               "hk_macao_permit": syn.travel_permit(rng), "imei": syn.imei(rng), "cn_uscc": syn.uscc(rng),
               "payment_card": syn.visa_card(rng)}
    for detector, value in samples.items():
        masked = mask(value, detector)
        assert masked != value and value not in masked and "*" in masked, detector


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=20))
def test_any_text_is_scanned_without_error(values):
    table = identifier_rules()
    found = find(pl.Series(values, dtype=pl.String), "", ScanContext(TODAY, table), build_detectors(table))
    assert found.columns == ["row", "detector", "value", "context", "minor", "confidence"]
    assert found.height == 0 or found["row"].max() < len(values)


def test_a_malformed_identifier_table_is_refused():
    table = dict(identifier_rules())
    broken = {**table, "detectors": {**table["detectors"], "email": {**table["detectors"]["email"],
                                                                     "status": "maybe"}}}
    with pytest.raises(RulesError, match="email.*status"):
        validate_identifier_rules(broken)
    with pytest.raises(RulesError, match="mobile_prefixes"):
        validate_identifier_rules({**table, "mobile_prefixes": ["138", "abc"]})
