"""The taxonomy rules file: every RSIT type mapped, citations and statuses present, malformed files
refused with a clear message, the operator's copy preferred, and classification of a batch."""

from __future__ import annotations

import polars as pl
import pytest
import yaml

from commonwatch.events.taxonomy import classify, load_taxonomy, parse_taxonomy
from commonwatch.rules import RulesError, rules_path

RSIT_TYPES = {
    "spam", "harmful-speech", "violence", "infected-system", "c2-server", "malware-distribution",
    "malware-configuration", "scanner", "sniffing", "social-engineering", "ids-alert", "brute-force", "exploit",
    "privileged-account-compromise", "unprivileged-account-compromise", "application-compromise",
    "system-compromise", "burglary", "dos", "ddos", "misconfiguration", "sabotage", "outage",
    "unauthorised-information-access", "unauthorised-information-modification", "data-loss", "data-leak",
    "unauthorised-use-of-resources", "copyright", "masquerade", "phishing", "weak-crypto", "ddos-amplifier",
    "potentially-unwanted-accessible", "information-disclosure", "vulnerable-system", "other", "undetermined", "test"}
INTELMQ_EXTRA = {"blacklist", "dga-domain", "malware", "proxy", "tor"}


def test_every_rsit_and_intelmq_type_is_mapped():
    tax = load_taxonomy()
    assert len(RSIT_TYPES) == 39
    assert set(tax.types) >= RSIT_TYPES | INTELMQ_EXTRA
    assert tax.canonical_type("unauthorized-use-of-resources") == "unauthorised-use-of-resources"
    assert tax.canonical_type("C&C") == "c2-server" and tax.canonical_type("nonsense") is None


def test_classify_a_batch():
    tax = load_taxonomy()
    frame = pl.DataFrame({"classification.type": ["vulnerable-system", "c2-server", "botnet drone", "made-up", None],
                          "classification.identifier": ["open-rdp", "feodo", None, None, None],
                          "constituent.cii": [True, True, False, False, False]})
    out = classify(frame, tax)
    assert out["classification.type"].to_list() == ["vulnerable-system", "c2-server", "infected-system",
                                                    "undetermined", "undetermined"]
    assert out["classification.identifier"].to_list()[3] == "made-up"  # the unknown spelling is kept
    assert out["classification.taxonomy"].to_list() == ["vulnerable", "malicious-code", "malicious-code", "other",
                                                        "other"]
    assert out["gbt20986.category"].to_list() == ["SHE", "MP", "MP", "OTH", "OTH"]
    assert out["severity"].to_list() == ["high", "critical", "medium", "info", "info"]


def _shipped() -> dict:
    return yaml.safe_load(rules_path("taxonomy.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["types"][0].pop("citation"), "type 'spam' lacks a citation"),
    (lambda d: d["types"][0].update(status="maybe"), "type 'spam' needs status verified or provisional"),
    (lambda d: d["types"][0].update(taxonomy="made-up"), "type 'spam': taxonomy must be an RSIT class"),
    (lambda d: d["types"][0].update(gbt="ZZ"), "type 'spam': gbt must be one of"),
    (lambda d: d["types"].append(dict(d["types"][0])), "type 'spam' is listed twice"),
    (lambda d: d["severity"]["base"][0].update(severity="huge"), "severity base rule 1: severity must be one of"),
    (lambda d: d["severity"]["raise"][0].update(by=9), "severity raise rule 1: 'by' must be"),
    (lambda d: d["aliases"]["map"].update({"x": "nope"}), "alias 'x' points to unknown type 'nope'"),
    (lambda d: d.pop("effective"), "lacks the header key(s) effective"),
])
def test_malformed_files_are_refused(mutate, message):
    data = _shipped()
    mutate(data)
    with pytest.raises(RulesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_taxonomy(yaml.safe_dump(data, allow_unicode=True), "taxonomy.yaml")


def test_operator_copy_wins(tmp_path):
    data = _shipped()
    data["severity"]["default"] = "critical"
    data["version"] = 99
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "taxonomy.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    tax = load_taxonomy(tmp_path)
    assert tax.version == 99 and tax.default_severity == "critical" and str(tmp_path) in tax.origin
