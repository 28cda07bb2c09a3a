"""The graded catalogue: rules suggest a grade naming the rule, a person confirms it (audited),
constituents write only their own organisations' entries, centre staff all of them."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from sqlalchemy import select

from commonwatch.access.models import AuditEntry
from commonwatch.access.principal import SYSTEM, Principal, Role
from commonwatch.datasec import services as ds
from commonwatch.datasec.grading import grading_rules, suggest, validate_rules
from commonwatch.datasec.scanner import Finding, ScanReport
from commonwatch.db import make_sessionmaker, session_scope
from commonwatch.errors import Forbidden, Invalid, NotFound
from commonwatch.rules import RulesError

RULES = grading_rules()


def facts(**kw):
    base = {"notified_as": "none", "impact_object": "", "impact_degree": "", "contains_pi": False,
            "contains_sensitive_pi": False, "public": False, "persons_count": 0, "contains_minors_pi": False}
    return {**base, **kw}


@pytest.mark.parametrize(("given", "level", "subgrade", "rule"), [
    (dict(notified_as="core"), "core", None, "notified_core"),
    (dict(notified_as="important", contains_sensitive_pi=True), "important", None, "notified_important"),
    (dict(impact_object="national_security", impact_degree="general"), "important", None, "impact_matrix"),
    (dict(impact_object="economic_operation", impact_degree="particularly_serious"), "core", None, "impact_matrix"),
    (dict(impact_object="social_order", impact_degree="serious"), "important", None, "impact_matrix"),
    (dict(impact_object="public_interest", impact_degree="general", contains_pi=True), "general", 3, "general_pi"),
    (dict(impact_object="rights", impact_degree="particularly_serious", contains_pi=True,
          contains_sensitive_pi=True), "general", 4, "general_sensitive_pi"),
    (dict(contains_pi=True), "general", 3, "general_pi"),
    (dict(public=True), "general", 1, "general_public"),
    (dict(), "general", 2, "general_internal"),
])
def test_suggestions_name_their_rule(given, level, subgrade, rule):
    s = suggest(facts(**given), RULES)
    assert (s.level, s.subgrade, s.rule) == (level, subgrade, rule)
    assert s.citation["en"] and s.citation["zh"] and s.status in ("verified", "provisional")


def test_review_flags():
    s = suggest(facts(contains_pi=True, persons_count=12_000_000, contains_minors_pi=True), RULES)
    assert {f["id"] for f in s.flags} == {"ten_million_persons", "large_scale_rights", "minors"}


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["matrix"]["rights"].pop("general"), "every impact degree"),
    (lambda d: d["matrix"]["rights"].update(general="secret"), "not one of"),
    (lambda d: d["rules"][-1].update(when=[{"fact": "public", "is": True}]), "last rule"),
    (lambda d: d["rules"][3].update(subgrade=9), "sub-grade"),
    (lambda d: d["rules"][0].pop("status"), "status"),
])
def test_a_malformed_grading_file_is_refused(mutate, message):
    data = copy.deepcopy(RULES)
    mutate(data)
    with pytest.raises(RulesError, match=message):
        validate_rules(data, "data_grading.yaml")


@pytest.fixture
def store(any_engine, clock):
    from tests.conftest import build_world

    factory = make_sessionmaker(any_engine)
    with session_scope(factory, actor="test") as s:
        s.info["clock"] = clock
        world = build_world(s, clock)
    return factory, world


def constituent_of(org_id: int) -> Principal:
    return Principal(user_id=900, email="c@test.example", role=Role.CONSTITUENT, org_ids=frozenset({org_id}))


def test_constituents_write_their_own_catalogue_and_staff_all(store, clock):
    factory, world = store
    a, coordinator = constituent_of(world.org_a), Principal(user_id=901, email="co@x", role=Role.COORDINATOR)
    analyst = Principal(user_id=902, email="an@x", role=Role.ANALYST)
    with session_scope(factory, actor="test") as s:
        mine = ds.create_asset(s, a, world.org_a, {"name": "HR records", "pi_categories": ["contact"]})
        assert mine.suggested_rule == "general_pi"
        with pytest.raises(NotFound):
            ds.create_asset(s, a, world.org_b, {"name": "not mine"})
        theirs = ds.create_asset(s, coordinator, world.org_b, {"name": "B data"})
        with pytest.raises(Forbidden):
            ds.create_asset(s, analyst, world.org_b, {"name": "analysts only read"})
        with pytest.raises(NotFound):
            ds.get_asset(s, a, theirs.id)
        assert [x.id for x in ds.list_assets(s, a)] == [mine.id]
        assert {x.id for x in ds.list_assets(s, coordinator)} == {mine.id, theirs.id}


def test_bad_asset_fields_are_named(store):
    factory, world = store
    with session_scope(factory) as s, pytest.raises(Invalid) as info:
        ds.create_asset(s, SYSTEM, world.org_a, {"name": "", "record_count": "many", "pi_categories": ["dna"],
                                                 "destinations": "XX1", "notified_as": "secret"})
    assert set(info.value.by_field()) == {"name", "record_count", "pi_categories", "destinations", "notified_as"}


def test_confirming_a_grade_is_audited_and_a_different_grade_needs_a_reason(store, clock):
    factory, world = store
    a = constituent_of(world.org_a)
    with session_scope(factory, actor=a.actor) as s:
        asset = ds.create_asset(s, a, world.org_a, {"name": "Payments", "sensitive_categories": ["financial_account"]})
        assert (asset.suggested_level, asset.suggested_subgrade) == ("general", 4)
        with pytest.raises(Invalid) as info:
            ds.confirm_grade(s, a, asset, "important", None, "", clock.now())
        assert "note" in info.value.by_field()
        ds.confirm_grade(s, a, asset, "general", 4, "", clock.now())
        asset_id = asset.id
    with session_scope(factory) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "datasec.grade_confirmed")).one()
        assert entry.entity_id == str(asset_id) and a.actor in entry.actor
        assert '"suggested_rule": "general_sensitive_pi"' in entry.after
        asset = ds.get_asset(s, SYSTEM, asset_id)
        assert asset.confirmed_by == a.actor and asset.confirmed_at is not None


def test_a_scan_updates_the_asset_and_its_suggestion(store, clock):
    factory, world = store
    report = ScanReport(source="x.csv", kind="csv", rows=10, parts={"x.csv": 10}, findings=[
        Finding(part="x.csv", field="id", detector="cn_resident_id", count=10, rows=10, rows_total=10, share=1.0,
                confidence=0.99, pi_category="identity_document", sensitive_category="identity_documents",
                samples=["110*************12"], minors=2)])
    with session_scope(factory, actor="test") as s:
        asset = ds.create_asset(s, SYSTEM, world.org_a, {"name": "Members"})
        assert asset.suggested_rule == "general_internal"
        ds.record_scan(s, SYSTEM, world.org_a, report, clock.now(), asset_id=asset.id)
        assert asset.sensitive_categories == ["identity_documents", "minors_under_14"]
        assert asset.suggested_rule == "general_sensitive_pi" and asset.record_count == 10
        assert "minors" in {f["id"] for f in asset.suggestion["flags"]}
        other = ds.create_asset(s, SYSTEM, world.org_b, {"name": "B"})
        with pytest.raises(Invalid, match="another organisation"):
            ds.record_scan(s, SYSTEM, world.org_a, report, clock.now(), asset_id=other.id)


def test_demo_loads_and_is_idempotent(tmp_path, clock):
    from commonwatch.config import Settings
    from commonwatch.demo import load_demo
    from commonwatch.migrate import upgrade
    from commonwatch.runtime import Runtime

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    rt = Runtime(settings, clock)
    upgrade(rt.engine)
    load_demo(rt)
    load_demo(rt)
    with rt.session() as s:
        from commonwatch.datasec.models import DataAsset, Scan, TransferAssessment

        assets = s.scalars(select(DataAsset)).all()
        assert len(assets) == 1 and assets[0].grade_level and assets[0].suggested_rule
        scan = s.scalars(select(Scan)).one()
        assert {f.detector for f in scan.findings} >= {"cn_resident_id", "cn_mobile", "cn_bank_card", "email"}
        assert all("*" in sample for f in scan.findings for sample in f.samples)
        transfers = s.scalars(select(TransferAssessment).order_by(TransferAssessment.id)).all()
        assert [t.mechanism for t in transfers] == ["exempt", "security_assessment"]
        assert all("Art." in t.result["rule"]["citation"]["en"] for t in transfers)
        assert date(2026, 1, 1) <= transfers[0].transfer_date
