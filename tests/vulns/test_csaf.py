"""CSAF 2.0: the OASIS schema and each mandatory test (§6.1) commonwatch applies, on a valid
advisory made to fail the way the spec's failing example does; the valid one passes them all."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from commonwatch.vulns import csaf, intake
from commonwatch.vulns.intake import IntakeError

SAMPLES = Path(intake.__file__).parent / "samples"
PID = "ACME-GW-HTTPD-2.4.49"
V31 = {"version": "3.1", "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
       "baseScore": 7.5, "baseSeverity": "HIGH"}


def vex() -> dict:
    return json.loads((SAMPLES / "acme-vex-2021-41773.json").read_text())


def advisory() -> dict:
    """The VEX turned into a security advisory with a score, a remediation and a group."""
    d = vex()
    d["document"]["category"] = "csaf_security_advisory"
    d["product_tree"]["full_product_names"] = [{"product_id": "P2", "name": "ACME Gateway httpd 2.4.50"}]
    d["product_tree"]["product_groups"] = [{"group_id": "G1", "product_ids": [PID, "P2"]}]
    v = d["vulnerabilities"][0]
    v["product_status"] = {"known_affected": [PID]}
    v["scores"] = [{"products": [PID], "cvss_v3": dict(V31)}]
    v["remediations"] = [{"category": "vendor_fix", "details": "Update.", "product_ids": [PID]}]
    v.pop("flags")
    return d


def _tests_of(d) -> set[str]:
    return {f.test for f in csaf.failures(d)}


def test_the_samples_pass_schema_and_mandatory_tests():
    assert csaf.failures(vex()) == []
    assert csaf.failures(advisory()) == []


def _hist(d, *numbers, status=None, version=None):
    t = d["document"]["tracking"]
    t["revision_history"] = [{"date": f"2021-10-{i + 1:02d}T10:00:00Z", "number": n, "summary": "x"}
                             for i, n in enumerate(numbers)]
    t["version"] = version or numbers[-1]
    if status:
        t["status"] = status


def _set(path, value):
    def f(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return f


def _v(d):
    return d["vulnerabilities"][0]


CASES = [
    ("schema", lambda d: d["document"].pop("publisher"), advisory),
    ("schema", _set(["document", "tracking", "status"], "published"), advisory),
    ("6.1.8", lambda d: _v(d)["scores"][0]["cvss_v3"].pop("baseSeverity"), advisory),
    ("6.1.1", lambda d: d["product_tree"]["product_groups"][0]["product_ids"].append("NOPE"), advisory),
    ("6.1.1", lambda d: _v(d)["remediations"][0]["product_ids"].append("NOPE"), advisory),
    ("6.1.2", lambda d: d["product_tree"]["full_product_names"].append({"product_id": PID, "name": "B"}), advisory),
    ("6.1.3", lambda d: d["product_tree"].__setitem__("relationships", [{
        "category": "installed_on", "full_product_name": {"name": "B on A", "product_id": "P9"},
        "product_reference": PID, "relates_to_product_reference": "P9"}]), advisory),
    ("6.1.4", lambda d: _v(d).__setitem__("threats", [{"category": "exploit_status", "details": "x",
                                                        "group_ids": ["NOPE"]}]), advisory),
    ("6.1.5", lambda d: d["product_tree"]["product_groups"].append({"group_id": "G1", "product_ids": [PID, "P2"]}),
     advisory),
    ("6.1.6", lambda d: _v(d)["product_status"].__setitem__("known_not_affected", [PID]), advisory),
    ("6.1.7", lambda d: _v(d)["scores"].append({"products": [PID], "cvss_v3": dict(V31)}), advisory),
    ("6.1.9", lambda d: _v(d)["scores"][0]["cvss_v3"].__setitem__("baseScore", 10.0), advisory),
    ("6.1.9", lambda d: _v(d)["scores"][0]["cvss_v3"].__setitem__("baseSeverity", "LOW"), advisory),
    ("6.1.10", lambda d: _v(d)["scores"][0]["cvss_v3"].__setitem__("attackVector", "LOCAL"), advisory),
    ("6.1.13", lambda d: d["product_tree"]["branches"][0]["branches"][0]["branches"][0]["product"][
        "product_identification_helper"].__setitem__("purl", "pkg:maven/@1.3.4"), advisory),
    ("6.1.14", lambda d: _hist(d, "2", "1", version="2"), advisory),
    ("6.1.15", _set(["document", "publisher", "category"], "translator"), advisory),
    ("6.1.16", lambda d: _hist(d, "1", "2", version="1"), advisory),
    ("6.1.17", lambda d: _hist(d, "0.9.5", status="final"), advisory),
    ("6.1.18", lambda d: _hist(d, "0", "1"), advisory),
    ("6.1.19", lambda d: _hist(d, "1.0.0-rc", "1.0.0"), advisory),
    ("6.1.20", lambda d: _hist(d, "1.0.0", version="1.0.0-alpha", status="interim"), advisory),
    ("6.1.21", lambda d: _hist(d, "1", "3"), advisory),
    ("6.1.21", lambda d: _hist(d, "2", "3"), advisory),
    ("6.1.22", lambda d: _hist(d, "1", "1"), advisory),
    ("6.1.23", lambda d: d["vulnerabilities"].append(copy.deepcopy(_v(d))), advisory),
    ("6.1.24", lambda d: _v(d).__setitem__("involvements", [
        {"date": "2021-04-23T10:00:00Z", "party": "vendor", "status": "completed"},
        {"date": "2021-04-23T10:00:00Z", "party": "vendor", "status": "in_progress"}]), advisory),
    ("6.1.25", lambda d: d["product_tree"]["full_product_names"].append({
        "name": "A", "product_id": "P9", "product_identification_helper": {"hashes": [{
            "filename": "a.so", "file_hashes": [{"algorithm": "sha256", "value": "0" * 64},
                                                {"algorithm": "sha256", "value": "1" * 64}]}]}}), advisory),
    ("6.1.26", _set(["document", "category"], "Security      Advisory"), advisory),
    ("6.1.26", _set(["document", "category"], "V_eX"), advisory),
    ("6.1.26", _set(["document", "category"], "csaf_a"), advisory),
    ("6.1.27.1", lambda d: (d.pop("vulnerabilities"), d["document"].update(
        category="csaf_informational_advisory", references=[{"category": "external", "summary": "s",
                                                              "url": "https://acme.example/a"}])), advisory),
    ("6.1.27.2", lambda d: (d.pop("vulnerabilities"), d["document"].update(
        category="csaf_informational_advisory", notes=[{"category": "summary", "text": "t"}])), advisory),
    ("6.1.27.3", _set(["document", "category"], "csaf_informational_advisory"), advisory),
    ("6.1.27.4", lambda d: (d.pop("product_tree"), _v(d).pop("product_status"), _v(d).pop("scores"),
                            _v(d).pop("remediations")), advisory),
    ("6.1.27.5", lambda d: _v(d).pop("notes"), advisory),
    ("6.1.27.6", lambda d: _v(d).pop("product_status"), advisory),
    ("6.1.27.7", lambda d: _v(d).__setitem__("product_status", {"recommended": [PID]}), vex),
    ("6.1.27.8", lambda d: _v(d).pop("cve"), vex),
    ("6.1.27.9", lambda d: _v(d).pop("flags"), vex),
    ("6.1.27.10", lambda d: _v(d).__setitem__("product_status", {"known_affected": [PID]}), vex),
    ("6.1.27.11", lambda d: d.pop("vulnerabilities"), advisory),
    ("6.1.28", lambda d: d["document"].update(lang="en-US", source_lang="en-US"), advisory),
    ("6.1.29", lambda d: _v(d)["remediations"][0].pop("product_ids"), advisory),
    ("6.1.30", lambda d: _hist(d, "1.0.0", "2"), advisory),
    ("6.1.31", _set(["product_tree", "branches", 0, "branches", 0, "branches", 0, "name"], "prior to 4.2"), advisory),
    ("6.1.32", lambda d: _v(d).__setitem__("flags", [{"label": "component_not_present"}]), advisory),
    ("6.1.33", lambda d: _v(d)["flags"].append({"label": "component_not_present", "group_ids": ["G1"]}) or
     d["product_tree"].update(full_product_names=[{"product_id": "P2", "name": "B"}],
                              product_groups=[{"group_id": "G1", "product_ids": [PID, "P2"]}]), vex),
]


@pytest.mark.parametrize(("test", "mutate", "base"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_mandatory_test_fails_its_example(test, mutate, base):
    d = base()
    mutate(d)
    fails = csaf.failures(d)
    assert test in {f.test for f in fails}, [str(f) for f in fails]
    with pytest.raises(IntakeError) as exc:
        intake.read_csaf(d)
    assert any(f["test"] == test for f in exc.value.failures)
    assert all(f["path"].startswith("/") and f["reason"] for f in exc.value.failures)


@pytest.mark.parametrize("name", ["1.0.0-rc", "2.4.49", "10 SP1"])
def test_a_version_that_is_no_range_passes_6_1_31(name):
    d = advisory()
    d["product_tree"]["branches"][0]["branches"][0]["branches"][0]["name"] = name
    assert "6.1.31" not in _tests_of(d)


def test_a_draft_may_carry_a_pre_release_version():
    d = advisory()
    _hist(d, "1.0.0", "2.0.0", version="2.0.0-rc1", status="draft")
    assert not _tests_of(d) & {"6.1.16", "6.1.17", "6.1.20"}


def test_impact_and_action_statements_through_a_group_pass():
    d = vex()
    d["product_tree"]["full_product_names"] = [{"product_id": "P2", "name": "B"}]
    d["product_tree"]["product_groups"] = [{"group_id": "G1", "product_ids": [PID, "P2"]}]
    _v(d)["flags"] = [{"label": "component_not_present", "group_ids": ["G1"]}]
    assert csaf.failures(d) == []
    _v(d)["product_status"] = {"known_affected": [PID]}
    _v(d).pop("flags")
    _v(d)["remediations"] = [{"category": "no_fix_planned", "details": "EOL", "group_ids": ["G1"]}]
    assert csaf.failures(d) == []


# --- 6.1.11 CWE and 6.1.12 language, at their boundaries ---------------------------------------------------

PATH_TRAVERSAL = "Improper Limitation of a Pathname to a Restricted Directory ('Path Traversal')"


@pytest.mark.parametrize(("cwe", "failing"), [
    ({"id": "CWE-22", "name": PATH_TRAVERSAL}, None),                                  # in the catalogue
    ({"id": "CWE-16", "name": "Configuration"}, None),                                 # a category exists in 2.0
    ({"id": "CWE-1000", "name": "Research Concepts"}, None),                           # a view too
    ({"id": "CWE-79", "name": "Improper Input Validation"}, "/vulnerabilities/0/cwe/name"),   # the spec's example
    ({"id": "CWE-22", "name": PATH_TRAVERSAL.lower()}, "/vulnerabilities/0/cwe/name"),         # names compare exactly
    ({"id": "CWE-22", "name": PATH_TRAVERSAL + " "}, "/vulnerabilities/0/cwe/name"),
    ({"id": "CWE-1500", "name": "Nothing"}, None),       # above the catalogue: maybe newer, not judged
    ({"id": "CWE-3", "name": "DEPRECATED: Technology-specific Environment Issues"}, None),  # deprecated exists
])
def test_6_1_11_the_cwe_exists_and_its_name_matches(cwe, failing):
    d = vex()
    _v(d)["cwe"] = cwe
    fails = [f for f in csaf.failures(d) if f.test == "6.1.11"]
    assert [f.path for f in fails] == ([failing] if failing else []), [str(f) for f in csaf.failures(d)]
    assert all(f"CWE {csaf.cwe_catalogue().version}" in f.reason or "catalogue" in f.reason for f in fails)
    if failing:
        with pytest.raises(IntakeError) as exc:
            intake.read_csaf(d)
        assert {"test": "6.1.11", "path": failing, "reason": fails[0].reason} in exc.value.failures
    else:
        assert csaf.failures(d) == []


def test_the_cwe_catalogue_is_the_packaged_one():
    cat = csaf.cwe_catalogue()
    assert cat.version.startswith("4.") and len(cat.entries) > 1000
    assert cat.entries[79][0] == "Weakness" and cat.entries[16][0] == "Category"


@pytest.mark.parametrize("tag", ["en", "EN-us", "zh-Hans-CN", "de-CH-1901", "es-419", "en-QM",
                                 "x-private", "en-x-acme", "qaa", "qtz",           # private use
                                 "i-default", "i-mingo",                           # the irregular ones the schema admits
                                 "art-lojban", "zh-min-nan"])                      # regular grandfathered
def test_6_1_12_valid_private_use_and_grandfathered_tags_pass(tag):
    d = vex()
    d["document"]["lang"] = tag
    assert csaf.failures(d) == [], [str(f) for f in csaf.failures(d)]


@pytest.mark.parametrize("tag", ["i-klingon", "sgn-BE-FR", "en-GB-oed"])
def test_irregular_grandfathered_tags_other_than_i_default_and_i_mingo_are_the_schemas_to_refuse(tag):
    d = vex()
    d["document"]["lang"] = tag
    assert [(f.test, f.path) for f in csaf.failures(d)] == [("schema", "/document/lang")]


@pytest.mark.parametrize(("key", "tag"), [
    ("lang", "EZ"),              # the spec's example: a region code, no language
    ("lang", "xx"),              # well-formed, not in the registry
    ("lang", "en-YY"),           # a region that does not exist
    ("lang", "en-US-US"),        # a second region
    ("lang", "de-1901-1901"),    # a repeated variant
    ("lang", "en-a-bbb-a-ccc"),  # a repeated extension singleton
    ("source_lang", "xx"),
])
def test_6_1_12_unknown_or_invalid_tags_fail(key, tag):
    d = vex()
    d["document"]["lang"] = "en" if key == "source_lang" else tag
    if key == "source_lang":
        d["document"]["source_lang"] = tag
    fails = [f for f in csaf.failures(d) if f.test == "6.1.12"]
    assert [f.path for f in fails] == [f"/document/{key}"], [str(f) for f in csaf.failures(d)]
    assert repr(tag) in fails[0].reason


def test_6_1_12_a_tag_with_an_underscore_fails_even_where_langcodes_would_read_it():
    d = vex()
    d["document"]["lang"] = "en_US"
    assert "6.1.12" in _tests_of(d)


def test_6_1_11_an_unknown_id_within_the_catalogue_fails_and_one_above_it_is_not_judged():
    cat = csaf.CweCatalogue("9.9", {20: ("Weakness", "Improper Input Validation"),
                                    22: ("Weakness", "Path"), 1000: ("View", "Research Concepts")})
    gap = csaf.cwe_failures({"id": "CWE-21", "name": "Gone"}, "/v/0/cwe", cat)
    assert [(f.test, f.path) for f in gap] == [("6.1.11", "/v/0/cwe/id")] and "9.9" in gap[0].reason
    # 23 is above the highest weakness (22): a weakness added after this catalogue, not refused;
    # the view's number (1000) does not raise the bar
    assert csaf.cwe_failures({"id": "CWE-23", "name": "New"}, "/v/0/cwe", cat) == []
    assert csaf.cwe_failures({"id": "CWE-999", "name": "New"}, "/v/0/cwe", cat) == []
    assert csaf.cwe_failures({"id": "CWE-22", "name": "Other"}, "/v/0/cwe", cat)[0].path == "/v/0/cwe/name"
