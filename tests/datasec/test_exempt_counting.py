"""Whether transfers exempt under Arts. 3-6 count towards the year's totals is a rule of
``crossborder.yaml`` with its citation and mark (default: they do not count), and every
assessment records the choice (issue 14, item 17)."""

from __future__ import annotations

import copy
from datetime import date

import pytest
import yaml

from commonwatch.access.principal import SYSTEM
from commonwatch.datasec import crossborder as xb
from commonwatch.datasec import services as ds
from commonwatch.db import session_scope
from commonwatch.rules import RulesError
from tests.conftest import sign_in

RULES = xb.crossborder_rules()
DAY = date(2026, 6, 1)
# Cross-border HR management of 900,000 employees' records: exempt under Art. 5(2).
HR_TRANSFER = {"title": "Group HR system", "transfer_date": "2026-03-01", "scenario": "cross_border_hr",
               "persons_non_sensitive": 900_000, "is_ciio": False}
# Then a marketing analytics export of 150,000 customers under the volume rules.
VOLUME_TRANSFER = {"title": "Analytics", "transfer_date": "2026-04-01", "persons_non_sensitive": 150_000,
                   "is_ciio": False}


def test_the_rule_is_data_with_its_citation_and_mark():
    rule = xb.exempt_counting(RULES)
    assert rule["count"] is False and rule["status"] == "provisional"
    assert "art5_necessary" in rule["exempt_rules"] and "art5_4_small_volume" not in rule["exempt_rules"]
    assert "Art. 3-6" in rule["citation"]["article"]


def test_an_exempt_transfer_leaves_the_counts_as_they_were():
    inputs = xb.TransferInputs(transfer_date=DAY, scenario="cross_border_hr", persons_non_sensitive=900_000)
    d = xb.decide(inputs, (50_000, 0), RULES)
    assert d.mechanism == "exempt" and d.rule["id"] == "art5_necessary"
    assert d.counts["non_sensitive_before"] == d.counts["non_sensitive_after"] == 50_000
    assert d.counting["this_transfer_counted"] is False and d.counting["exempt_transfers_count"] is False
    assert d.counting["status"] == "provisional" and d.counting["zh"] and d.counting["citation"]["zh"]
    assert d.counting["citation"] in d.citations
    # A small-volume exemption (Art. 5(4)) is a volume rule and always counts.
    small = xb.decide(xb.TransferInputs(transfer_date=DAY, persons_non_sensitive=10), (0, 0), RULES)
    assert small.rule["id"] == "art5_4_small_volume" and small.counts["non_sensitive_after"] == 10
    assert small.counting["this_transfer_counted"] is True


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["counting"].pop("exempt_transfers"), "exempt transfers count"),
    (lambda d: d["counting"]["exempt_transfers"].update(count="no"), "count: true or false"),
    (lambda d: d["counting"]["exempt_transfers"].update(exempt_rules=["art7_volume"]), "exempt rules"),
    (lambda d: d["counting"]["exempt_transfers"].pop("citation"), "citation"),
    (lambda d: d["counting"]["exempt_transfers"].update(status="maybe"), "status"),
])
def test_a_malformed_counting_rule_is_refused(mutate, message):
    data = copy.deepcopy(RULES)
    mutate(data)
    with pytest.raises(RulesError, match=message):
        xb.validate_rules(data, "crossborder.yaml")


def _assess(factory, clock, org, data, data_dir=None):
    with session_scope(factory, actor="test") as session:
        session.info["clock"] = clock
        row = ds.create_assessment(session, SYSTEM, org, dict(data), clock.now(), data_dir)
        return row.mechanism, row.result


def test_exempt_transfers_do_not_push_the_year_over_a_line(store):
    factory, clock, world = store
    mech, result = _assess(factory, clock, world.org_a, HR_TRANSFER)
    assert mech == "exempt" and result["counting"]["this_transfer_counted"] is False
    mech, result = _assess(factory, clock, world.org_a, VOLUME_TRANSFER)
    # Counted, the 900,000 would make 1,050,000 and a security assessment.
    assert mech == "standard_contract_or_certification"
    assert result["counts"]["non_sensitive_before"] == 0 and result["counts"]["non_sensitive_after"] == 150_000
    with session_scope(factory) as session:
        assert ds.recorded_ytd(session, world.org_a, 2026) == (150_000, 0)


def test_an_operator_who_counts_exempt_transfers_says_so_in_the_rules(store, tmp_path):
    factory, clock, world = store
    data = copy.deepcopy(RULES)
    data["counting"]["exempt_transfers"]["count"] = True
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "crossborder.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    mech, result = _assess(factory, clock, world.org_a, HR_TRANSFER, tmp_path)
    assert mech == "exempt" and result["counting"]["this_transfer_counted"] is True
    assert "count towards" in result["counting"]["en"]
    mech, _result = _assess(factory, clock, world.org_a, VOLUME_TRANSFER, tmp_path)
    assert mech == "security_assessment"


def test_the_choice_is_shown_in_the_api_the_page_and_the_record(client, world):
    h = world.auth("a")
    resp = client.post("/api/v1/crossborder/assessments", json={"org_id": world.org_a, **HR_TRANSFER}, headers=h)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["counting"]["this_transfer_counted"] is False and body["counting"]["status"] == "provisional"
    totals = client.get(f"/api/v1/crossborder/totals?org_id={world.org_a}&year=2026", headers=h).json()
    assert totals["non_sensitive"] == 0
    sign_in(client, world.users["a"])
    page = client.get(f"/crossborder/assessments/{body['id']}")
    assert page.status_code == 200 and 'id="exempt-counting"' in page.text
    assert "does not count towards the year" in page.text and "exempt_transfers_not_counted" in page.text
    client.get("/lang/zh-CN")
    assert "本次豁免出境不计入本年累计" in client.get(f"/crossborder/assessments/{body['id']}").text
    pdf = client.get(f"/datasec/record.pdf?org_id={world.org_a}", headers=h)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
