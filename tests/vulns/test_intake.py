"""Readers of CVE 5, NVD, OSV, CSAF, KEV and EPSS: what they take, what they refuse, and that the
records they give match assets as the sources mean."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from commonwatch.vulns import intake
from commonwatch.vulns.intake import IntakeError
from commonwatch.vulns.matching import match

SAMPLES = Path(intake.__file__).parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def doc(name: str):
    return json.loads(sample(name))


def assets(*rows):
    return pl.DataFrame({
        "asset_id": list(range(1, len(rows) + 1)), "org_id": [1] * len(rows), "system_id": [5] * len(rows),
        "mlps_level": [3] * len(rows), "cpe": [r[0] for r in rows], "purl": [r[1] for r in rows],
        "version": [r[2] for r in rows]})


def test_cve5_record_ranges_aliases_kev_and_cvss():
    (rec,) = intake.read_document(sample("CVE-2021-44228.json"))
    assert rec.vuln_id == "CVE-2021-44228" and rec.modified.startswith("2025-02-04")
    assert rec.aliases == ["CNNVD-202112-799", "CNVD-2021-95914"]
    assert rec.kev and rec.kev["dateAdded"] == "2021-12-10"
    assert rec.cvss[0]["vector"].startswith("CVSS:3.1/")
    frame = intake.criteria_of([rec])
    a = assets((None, "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", None),
               (None, "pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0", None),    # lessThan: excluded
               (None, "pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta9", None),  # start: included
               (None, "pkg:maven/org.apache.logging.log4j/log4j-core@2.12.2", None),
               (None, "pkg:maven/org.apache.logging.log4j/log4j-core@2.0-alpha1", None))
    assert sorted(match(a, frame).matches["asset_id"].to_list()) == [1, 3]


@pytest.mark.parametrize(("path", "value", "field"), [
    (("dataType",), "CVE_ENTRY", "dataType"),
    (("dataVersion",), "4.0", "dataVersion"),
    (("cveMetadata", "cveId"), "CVE-21-1", "cveId"),
    (("cveMetadata", "state"), "DRAFT", "state"),
    (("containers", "cna", "affected", 0, "versions", 0, "status"), "maybe", "status"),
    (("containers", "cna", "affected", 0, "packageURL"), "not a purl", "packageURL"),
])
def test_cve5_refusals_name_the_field(path, value, field):
    d = doc("CVE-2021-44228.json")
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(IntakeError) as exc:
        intake.read_cve5(d)
    assert field in exc.value.field


def test_cve5_rejected_record_has_no_criteria():
    d = doc("CVE-2021-44228.json")
    d["cveMetadata"]["state"] = "REJECTED"
    rec = intake.read_cve5(d)
    assert rec.state == "REJECTED" and intake.criteria_of([rec]).is_empty()


def test_nvd_page_exact_and_and_configuration():
    recs = intake.read_document(sample("nvd-page.json"))
    assert [r.vuln_id for r in recs] == ["CVE-2021-41773", "CVE-2024-3400"]
    assert recs[0].kev == {"dateAdded": "2021-11-03", "source": "NVD"} and recs[0].cwes == ["CWE-22"]
    assert recs[1].cvss[0]["version"] == "4.0"
    frame = intake.criteria_of(recs)
    a = assets(("cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*", None, None),
               ("cpe:2.3:a:apache:http_server:2.4.50:*:*:*:*:*:*:*", None, None),
               ("cpe:2.3:o:paloaltonetworks:pan-os:11.1.1:*:*:*:*:*:*:*", None, None),
               ("cpe:2.3:a:paloaltonetworks:globalprotect:6.2:*:*:*:*:*:*:*", None, None))
    got = match(a, frame).matches
    assert sorted(zip(got["asset_id"], got["vuln_id"], strict=True)) == [(1, "CVE-2021-41773"), (3, "CVE-2024-3400")]
    # without GlobalProtect in the system, the AND configuration does not hold
    assert match(a.head(3), frame).matches["asset_id"].to_list() == [1]


def test_nvd_refuses_both_forms_of_one_end():
    d = doc("nvd-page.json")
    cm = d["vulnerabilities"][1]["cve"]["configurations"][0]["nodes"][0]["cpeMatch"][0]
    cm["versionEndIncluding"] = "11.1.3"
    with pytest.raises(IntakeError, match="including and the excluding"):
        intake.read_nvd_page(d)
    d = doc("nvd-page.json")
    d["vulnerabilities"][0]["cve"]["configurations"][0]["nodes"][0]["cpeMatch"][0]["criteria"] = "cpe:2.3:a:x"
    with pytest.raises(IntakeError, match="11 expected"):
        intake.read_nvd_page(d)


def test_osv_events_become_intervals():
    (rec,) = intake.read_document(sample("GHSA-35jh-r3h4-6jhm.json"))
    assert rec.vuln_id == "CVE-2021-23337" and rec.record_id == "GHSA-35jh-r3h4-6jhm"
    a = assets((None, "pkg:npm/lodash@4.17.20", None), (None, "pkg:npm/lodash@4.17.21", None))
    assert match(a, intake.criteria_of([rec])).matches["asset_id"].to_list() == [1]


def test_osv_last_affected_and_limit_and_bad_events():
    d = doc("GHSA-35jh-r3h4-6jhm.json")
    d["affected"][0]["ranges"][0]["events"] = [{"introduced": "1.0.0"}, {"last_affected": "1.2.0"},
                                               {"introduced": "2.0.0"}, {"limit": "3.0.0"}]
    rec = intake.read_osv(d)
    a = assets(*[(None, f"pkg:npm/lodash@{v}", None) for v in ["0.9.0", "1.0.0", "1.2.0", "1.2.1", "2.5.0", "3.0.0"]])
    assert sorted(match(a, intake.criteria_of([rec])).matches["asset_id"].to_list()) == [2, 3, 5]
    d["affected"][0]["ranges"][0]["events"] = [{"fixed": "1.0.0"}]
    with pytest.raises(IntakeError, match="introduced"):
        intake.read_osv(d)
    d["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "x.y"}]
    with pytest.raises(IntakeError, match="not a valid semver"):
        intake.read_osv(d)


def test_csaf_vex_suppresses_the_nvd_match():
    nvd = intake.read_document(sample("nvd-page.json"))
    vex = intake.read_document(sample("acme-vex-2021-41773.json"))
    assert vex[0].record_id == "ACME-VEX-2021-0007#CVE-2021-41773"
    a = assets(("cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:acme_gateway:*", None, None),
               ("cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*", None, None))
    r = match(a, intake.criteria_of(nvd + vex))
    assert r.matches["asset_id"].to_list() == [2]
    assert r.suppressed["asset_id"].to_list() == [1] and "ACME-VEX" in r.suppressed["suppressed_by"][0]


def _swap_numbers(history):
    history[0]["number"], history[1]["number"] = "2", "1"   # the later date carries the lower number


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda d: d["document"].pop("title"), "'title' is a required property"),
    (lambda d: d["document"].__setitem__("csaf_version", "1.2"), "/document/csaf_version: schema"),
    (lambda d: d["vulnerabilities"][0]["product_status"].__setitem__("known_affected", ["NOPE"]), "6.1.1"),
    (lambda d: d["vulnerabilities"][0]["product_status"].__setitem__("fixed", ["ACME-GW-HTTPD-2.4.49"]), "6.1.6"),
    (lambda d: d["vulnerabilities"][0]["product_status"].__setitem__("recommended", ["ACME-GW-HTTPD-2.4.49"]), None),
    (lambda d: d["vulnerabilities"][0]["product_status"].__setitem__("known_affected", ["ACME-GW-HTTPD-2.4.49"]),
     "6.1.6"),
    (lambda d: d["vulnerabilities"].append(copy.deepcopy(d["vulnerabilities"][0])), "6.1.23"),
    (lambda d: d["document"].__setitem__("category", "CSAF-VEX"), "6.1.26"),
    (lambda d: d["vulnerabilities"][0].__setitem__("product_status", {}), "6.1.27.7"),
    (lambda d: _swap_numbers(d["document"]["tracking"]["revision_history"]), "6.1.14"),
])
def test_csaf_checks(mutate, reason):
    d = doc("acme-vex-2021-41773.json")
    mutate(d)
    problems, _ = intake.check_csaf(d)
    if reason is None:   # 'recommended' belongs to no status group: no contradiction
        assert problems == []
        return
    assert any(reason in p for p in problems), problems
    with pytest.raises(IntakeError):
        intake.read_csaf(d)


def test_kev_and_its_refusals():
    header, items = intake.read_kev(doc("kev.json"))
    assert header["catalogVersion"] == "2026.11.30" and [i["cveID"] for i in items] == ["CVE-2021-44228",
                                                                                      "CVE-2021-41773"]
    d = doc("kev.json")
    d["vulnerabilities"][0]["exploitScore"] = 9
    with pytest.raises(IntakeError, match=r"vulnerabilities\[0\].exploitScore: unknown field"):
        intake.read_kev(d)
    d = doc("kev.json")
    d["count"] = 3
    with pytest.raises(IntakeError, match="count"):
        intake.read_kev(d)
    d = doc("kev.json")
    d["vulnerabilities"][1]["dueDate"] = "17/11/2021"
    with pytest.raises(IntakeError, match="dueDate"):
        intake.read_kev(d)


def test_epss_and_its_refusals():
    meta, rows = intake.read_epss(sample("epss.csv").decode())
    assert meta["model_version"] == "v2025.03.14" and rows[0] == ("CVE-2021-44228", 0.94358, 0.9996)
    with pytest.raises(IntakeError, match="line 3"):
        intake.read_epss("#model_version:v1\ncve,epss,percentile\nCVE-2021-1,1.5,0.2\n")
    with pytest.raises(IntakeError, match="header"):
        intake.read_epss("cve,score\n")


def test_detect_refuses_other_json():
    with pytest.raises(IntakeError, match="not a CVE JSON 5 record"):
        intake.read_document(b'{"hello": "world"}')
    with pytest.raises(IntakeError, match="not JSON"):
        intake.read_document(b'{"dataType": ')


def test_zip_streamed_nested_and_bomb_refused(tmp_path):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("cves/2021/44xxx/CVE-2021-44228.json", sample("CVE-2021-44228.json"))
        z.writestr("README.md", "not a record")
    outer = tmp_path / "2026-11-30_all_CVEs_at_midnight.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as z:
        z.write(inner, "cves.zip")
    names = [n for n, _ in intake.iter_zip(outer)]
    assert names == ["cves/2021/44xxx/CVE-2021-44228.json"]
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("CVE-2021-0001.json", b"0" * (5 * 1024 * 1024))
    with pytest.raises(IntakeError, match="zip bomb"):
        list(intake.iter_zip(bomb))
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as z:
        z.writestr("CVE-2021-0002.json", b" " * 2048)
    with pytest.raises(IntakeError, match="at most 1,024"):
        list(intake.iter_zip(big, max_member=1024))
    (tmp_path / "notzip.zip").write_bytes(b"PK nope")
    with pytest.raises(IntakeError, match="not a zip"):
        list(intake.iter_zip(tmp_path / "notzip.zip"))


def test_folder(tmp_path):
    d = tmp_path / "cves" / "2021" / "44xxx"
    d.mkdir(parents=True)
    (d / "CVE-2021-44228.json").write_bytes(sample("CVE-2021-44228.json"))
    assert [n for n, _ in intake.iter_folder(tmp_path)] == ["cves/2021/44xxx/CVE-2021-44228.json"]
