"""The scanner's edges (issue 14, items 11-15), each with a file written the way such data is
written: residence permits of Hong Kong, Macao and Taiwan residents; the header deciding between
two detectors that both accept a value; possible (check-digit-failing) cards kept apart; order,
invoice and tracking numbers; permits, older passports and IDs written in groups."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from commonwatch.datasec.detectors import find, identifier_rules, luhn_valid, uscc_valid
from commonwatch.datasec.scanner import scan_path
from tests.conftest import sign_in

TODAY = date(2026, 11, 25)
# 18-digit numbers of the GB 11643 layout with a correct MOD 11-2 check character.
TW_PERMITS = ["830000199001010012", "830000198807150036"]
HK_PERMIT, MO_PERMIT = "810000198506120024", "820000201503010037"
RESIDENT_ID = "360426199101010071"  # the reference's sample
# 18 digits that pass both the Luhn check and the GB 32100 check (a UnionPay card range).
CARD_AND_USCC = "621122627289523892"
# UnionPay-range numbers that fail Luhn.
LUHN_FAILING = ["6222021234567890121", "6217001234567890125", "6228480012345678915"]


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _by_field(report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report.findings:
        out.setdefault(f.field, set()).add(f.detector)
    return out


def _found(values: list[str], ctx, detectors, header: str = "") -> list[tuple[str, str]]:
    return find(pl.Series(values), header, ctx, detectors).select("detector", "value").rows()


def _check_char(body: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


# --- 11: residence permits of Hong Kong, Macao and Taiwan residents -------------------------------------

def test_samples_are_what_they_claim():
    for number in (*TW_PERMITS, HK_PERMIT, MO_PERMIT, RESIDENT_ID):
        assert _check_char(number[:17]) == number[17], number
    assert luhn_valid(pl.Series([CARD_AND_USCC])).tolist() == [True]
    assert uscc_valid(pl.Series([CARD_AND_USCC])).tolist() == [True]
    assert not luhn_valid(pl.Series(LUHN_FAILING)).any()


def test_taiwan_hong_kong_and_macao_residence_permits_are_found(tmp_path):
    path = _csv(tmp_path / "residents.csv", ["姓名", "居住证号码", "备注"], [
        ["陈美玲", TW_PERMITS[0], "台湾居民居住证"],
        ["林志明", TW_PERMITS[1], ""],
        ["黄家豪", HK_PERMIT, "港澳居民居住证"],
        ["何嘉欣", MO_PERMIT, ""],
    ])
    report = scan_path(path, today=TODAY)
    [permits] = [f for f in report.findings if f.field == "居住证号码"]
    assert permits.detector == "hmt_residence_permit" and permits.count == 4
    assert permits.pi_category == "identity_document" and "identity_documents" in report.sensitive_categories


def test_a_permit_without_header_and_in_free_text(ctx, detectors):
    assert _found([TW_PERMITS[0]], ctx, detectors) == [("hmt_residence_permit", TW_PERMITS[0])]
    assert _found([f"台湾居民居住证：{TW_PERMITS[1]}，有效期五年"], ctx, detectors) == [
        ("hmt_residence_permit", TW_PERMITS[1])]
    # A mainland resident ID is still a resident ID.
    assert _found([RESIDENT_ID], ctx, detectors) == [("cn_resident_id", RESIDENT_ID)]


# --- 12: the header decides between two detectors that accept the same value -----------------------------

def test_a_card_under_a_card_header_stays_a_card(tmp_path):
    path = _csv(tmp_path / "payments.csv", ["客户", "银行卡号", "统一社会信用代码"],
                [["张伟", CARD_AND_USCC, CARD_AND_USCC]])
    report = scan_path(path, today=TODAY)
    by = _by_field(report)
    assert by["银行卡号"] == {"cn_bank_card"}
    assert by["统一社会信用代码"] == {"cn_uscc"}
    assert "financial_account" in report.sensitive_categories


def test_without_a_header_word_the_fixed_order_decides(ctx, detectors):
    assert _found([CARD_AND_USCC], ctx, detectors) == [("cn_uscc", CARD_AND_USCC)]
    assert _found([CARD_AND_USCC], ctx, detectors, "card_no") == [("cn_bank_card", CARD_AND_USCC)]


# --- 13: check-digit failures are possible matches, counted nowhere --------------------------------------

def test_luhn_failing_cards_are_possible_only(tmp_path):
    path = _csv(tmp_path / "cards.csv", ["姓名", "银行卡号"], [["王芳", c] for c in LUHN_FAILING])
    report = scan_path(path, today=TODAY)
    assert not report.confirmed
    [possible] = report.possible
    assert possible.detector == "cn_bank_card_unchecked" and possible.count == 3
    assert report.sensitive_categories == [] and report.pi_categories == []
    out = report.as_dict()
    assert out["findings"] == [] and out["possible_findings"][0]["detector"] == "cn_bank_card_unchecked"


def _upload(client, world, headers, name: str, body: bytes, asset_id: int):
    return client.post("/api/v1/datasec/scans", data={"org_id": str(world.org_a), "asset_id": str(asset_id)},
                       files={"file": (name, body, "text/csv")}, headers=headers)


def test_possible_cards_stay_out_of_the_catalogue_and_are_shown_apart(app, client, world):
    h = world.auth("a")
    asset = client.post("/api/v1/datasec/assets", json={"org_id": world.org_a, "name": "Refund requests"},
                        headers=h).json()
    body = ("姓名,银行卡号\n" + "".join(f"王芳,{c}\n" for c in LUHN_FAILING)).encode("utf-8")
    scan = _upload(client, world, h, "refunds.csv", body, asset["id"])
    assert scan.status_code == 201, scan.text
    out = scan.json()
    assert out["findings"] == [] and out["sensitive_categories"] == [] and out["pi_categories"] == []
    [possible] = out["possible_findings"]
    assert possible["detector"] == "cn_bank_card_unchecked" and possible["possible"] is True
    assert possible["reason"]["en"] and possible["reason"]["zh"]
    got = client.get(f"/api/v1/datasec/assets/{asset['id']}", headers=h).json()
    assert got["sensitive_categories"] == [] and got["suggestion"]["rule"] == "general_internal"
    sign_in(client, world.users["a"])
    page = client.get(f"/datasec/scans/{out['id']}")
    assert 'id="possible"' in page.text and "Possible matches" in page.text
    assert "No personal information found." in page.text
    client.get("/lang/zh-CN")
    page = client.get(f"/datasec/scans/{out['id']}")
    assert "可能的匹配" in page.text and "未通过Luhn校验位" in page.text


# --- 14: order, invoice and tracking numbers -------------------------------------------------------------

ORDER_ID_SHAPED = ["110101200001010037", RESIDENT_ID]  # pass every ID check
ORDER_MOBILE_SHAPED = ["13812345678", "18600001111"]


@pytest.mark.parametrize("header", ["订单号", "order_no", "Invoice No", "tracking_number", "交易流水号", "流水号"])
def test_identifier_shaped_numbers_under_an_order_header_are_not_reported(tmp_path, header):
    assert _check_char(ORDER_ID_SHAPED[0][:17]) == ORDER_ID_SHAPED[0][17]
    path = _csv(tmp_path / "orders.csv", [header, "金额"], [[v, "12.50"] for v in ORDER_ID_SHAPED + ORDER_MOBILE_SHAPED])
    report = scan_path(path, today=TODAY)
    assert report.findings == [], [(f.field, f.detector, f.confidence) for f in report.findings]


def test_a_negative_word_just_before_the_value_drops_it(ctx, detectors):
    lines = [f"订单号：{RESIDENT_ID} 已发货", "订单号 13812345678", "order no. 18600001111", f"invoice #{RESIDENT_ID}",
             "流水号:13812345678", "tracking: 18600001111"]
    assert _found(lines, ctx, detectors) == []
    # Without the word the same values are found; a phone under an order-contact header is a phone.
    assert {d for d, _ in _found([f"身份证 {RESIDENT_ID}", "联系 13812345678"], ctx, detectors)} == {
        "cn_resident_id", "cn_mobile"}
    assert _found(["13812345678"], ctx, detectors, "订单联系电话") == [("cn_mobile", "13812345678")]


def test_negative_context_words_live_in_the_rules_file():
    neg = identifier_rules()["negative_context"]
    assert {"订单号", "order", "invoice", "tracking", "流水号"} <= set(neg["words"])
    assert "cn_resident_id" in neg["applies_to"] and "cn_mobile" in neg["applies_to"]


# --- 15: permits, Taiwan compatriot permits, older passports, IDs in groups -------------------------------

def test_travel_permits_passports_and_grouped_ids_in_a_register(tmp_path):
    grouped = f"{RESIDENT_ID[:6]} {RESIDENT_ID[6:14]} {RESIDENT_ID[14:]}"
    path = _csv(tmp_path / "visitors.csv", ["姓名", "回乡证号", "台胞证号", "护照号码", "身份证号"], [
        ["李嘉诚", "H12345678", "12345678", "G12345678", grouped],
        ["何鸿燊", "M87654321(01)", "1234567801", "141234567", "110101 20000101 0037"],
        ["周润发", "H11223344 02", "87654321", "P.1234567", "440301 19851231 008X"],
    ])
    assert _check_char("44030119851231008") == "X"
    report = scan_path(path, today=TODAY)
    by = _by_field(report)
    assert by["回乡证号"] == {"hk_macao_permit"}
    assert by["台胞证号"] == {"tw_compatriot_permit"}
    assert by["护照号码"] == {"cn_passport", "cn_passport_old"}
    assert by["身份证号"] == {"cn_resident_id"}
    counts = {(f.field, f.detector): f.count for f in report.findings}
    assert counts[("台胞证号", "tw_compatriot_permit")] == 3 and counts[("身份证号", "cn_resident_id")] == 3
    assert counts[("回乡证号", "hk_macao_permit")] == 3


def test_plain_digits_are_not_permits_or_passports_without_a_header(ctx, detectors):
    assert _found(["12345678", "1234567801", "141234567", "D1234567"], ctx, detectors) == []
    assert _found(["台胞证 12345678"], ctx, detectors) == [("tw_compatriot_permit", "12345678")]
    assert _found(["护照号 S12345678"], ctx, detectors) == [("cn_passport_old", "S12345678")]


def test_new_detectors_are_marked_provisional():
    table = identifier_rules()["detectors"]
    for name in ("hmt_residence_permit", "tw_compatriot_permit", "cn_passport_old", "hk_macao_permit"):
        assert table[name]["status"] == "provisional", name

