"""A CSAF provider's trust (CSAF 2.0 §7.1 R18–R20) and file names (R2), with real GnuPG keys made
on the test's clock and a real HTTP server on loopback: each advisory's hash file and OpenPGP
signature are checked against the keys its provider-metadata.json lists; a wrong hash or a bad
signature quarantines it, a missing one is kept on its records, as a failure at a trusted provider."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from commonwatch.clock import FrozenClock
from commonwatch.config import Settings
from commonwatch.notify.pgp import Keyring, gpg_binary
from commonwatch.vulns import csaf_provider as prov
from commonwatch.vulns.models import VulnQuarantine, VulnRecord
from tests.conftest import CI, START
from tests.vulns.test_csaf_provider import MIRROR, Provider
from tests.vulns.test_services import session  # noqa: F401  (the fixture)

KEY_MADE = START - timedelta(days=1)   # keys are made from the clock, a day before the test's now
HERE = "https://acme.example"
ADVISORIES = ("acme-vex-2021-0007.json", "acme-sa-2021-0009.json", "acme-sa-2021-0010.json")
VEX_KEY = "csaf:ACME-VEX-2021-0007#CVE-2021-41773"
SA_KEY = "csaf:ACME-SA-2021-0010#CVE-2021-44228"


@pytest.fixture
def keys():
    """Two providers' signing keys (the provider's own and a stranger's), made on a frozen clock."""
    if gpg_binary() is None:
        if CI:
            pytest.fail("gpg is required under CI=true (apt-get install gnupg)", pytrace=False)
        pytest.skip("gpg is not installed")
    root = Path(tempfile.mkdtemp(prefix="cwk"))   # short: gpg-agent's socket path has a length limit
    made = {}
    for name in ("acme", "stranger"):
        ring = Keyring(root / name, FrozenClock(KEY_MADE))
        made[name] = (ring, ring.generate_centre_key(f"{name} CSAF", f"csaf@{name}.example"))
    yield made
    for ring, _fpr in made.values():
        ring.close()
    shutil.rmtree(root, ignore_errors=True)


def site(root: Path, keys, *, base: str = HERE, role: str = "csaf_trusted_provider", sign: str = "acme",
         hashes=("sha512",), fingerprint: str | None = None) -> Path:
    """The demo provider's files, its URLs at ``base``, each advisory with its hash files and its
    signature by ``sign`` (None: unsigned); the metadata lists acme's key."""
    shutil.copytree(MIRROR, root)
    for p in root.rglob("*.json"):
        p.write_text(p.read_text().replace(HERE, base))
    ring, fpr = keys["acme"]
    (root / "openpgp").mkdir()
    (root / "openpgp" / "acme.asc").write_text(ring.export_public(fpr))
    meta = json.loads((root / "provider-metadata.json").read_text())
    meta["role"] = role
    meta["public_openpgp_keys"] = [{"fingerprint": fingerprint or fpr, "url": f"{base}/.well-known/csaf/openpgp/acme.asc"}]
    (root / "provider-metadata.json").write_text(json.dumps(meta))
    for name in ADVISORIES:
        p = root / "white" / "2021" / name
        data = p.read_bytes()
        for alg in hashes:
            (p.parent / f"{name}.{alg}").write_text(f"{hashlib.new(alg, data).hexdigest()}  {name}\n")
        if sign:
            signer, signer_fpr = keys[sign]
            (p.parent / f"{name}.asc").write_bytes(signer.sign_detached(data, signer_fpr))
    return root


def provenance(session, key):  # noqa: F811
    return session.scalars(select(VulnRecord.provenance).where(VulnRecord.record_key == key)).one()


def test_signed_and_hashed_advisories_of_a_trusted_provider_are_shown_signed(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys)
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    assert (rep.added, rep.quarantined) == (2, 1), rep.summary()   # 0009 fails its own 6.1.27.5, as before
    assert rep.integrity == {"signed": 2} and rep.failures == [], rep.failures
    p = provenance(session, VEX_KEY)
    assert p["role"] == "csaf_trusted_provider" and p["publisher"] == "ACME Networks"
    assert (p["integrity"], p["hash"], p["signer"], p["failures"]) == ("signed", "sha512", keys["acme"][1], [])
    assert "2 signed" in rep.summary()


def test_sha256_is_checked_when_there_is_no_sha512(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys, hashes=("sha256",))
    prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    assert provenance(session, SA_KEY)["hash"] == "sha256"


def test_a_hash_that_does_not_match_quarantines_the_advisory(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys)
    vex = root / "white" / "2021" / "acme-vex-2021-0007.json"
    vex.write_bytes(vex.read_bytes().replace(b"disables", b"enables"))   # changed after it was hashed and signed
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    assert rep.added == 1 and rep.integrity == {"signed": 1}
    q = session.scalars(select(VulnQuarantine).where(VulnQuarantine.name.endswith("acme-vex-2021-0007.json"))).one()
    assert q.failures[0]["test"] == "R18" and "SHA512 file gives" in q.failures[0]["reason"]
    assert q.raw.startswith("{") and "enables" in q.raw    # the raw input is kept
    assert session.scalars(select(VulnRecord).where(VulnRecord.record_key == VEX_KEY)).first() is None


def test_a_signature_that_does_not_verify_quarantines_the_advisory(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys, hashes=())
    vex = root / "white" / "2021" / "acme-vex-2021-0007.json"
    vex.write_bytes(vex.read_bytes().replace(b"disables", b"enables"))
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    q = session.scalars(select(VulnQuarantine).where(VulnQuarantine.name.endswith("acme-vex-2021-0007.json"))).one()
    assert q.failures[0]["test"] == "R19" and "does not verify" in q.failures[0]["reason"], q.failures
    assert rep.integrity == {"signed": 1}


def test_a_signature_by_a_key_the_provider_does_not_list_quarantines(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys, sign="stranger")
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    assert rep.added == 0 and rep.quarantined == 3
    reasons = [q.failures[0] for q in session.scalars(select(VulnQuarantine))]
    assert {f["test"] for f in reasons} == {"R19"}
    assert all("does not list" in f["reason"] for f in reasons), reasons


@pytest.mark.parametrize(("role", "failures"), [("csaf_trusted_provider", ["R19"]), ("csaf_provider", [])])
def test_a_missing_signature_is_recorded_as_unsigned_a_failure_only_at_a_trusted_provider(
        session, tmp_path, keys, role, failures):  # noqa: F811
    root = site(tmp_path / "m", keys, role=role, sign=None)
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    assert rep.added == 2 and rep.integrity == {"unsigned": 2}
    p = provenance(session, VEX_KEY)
    assert (p["integrity"], p["hash"], p["role"]) == ("unsigned", "sha512", role)
    assert [f["test"] for f in p["failures"]] == failures


def test_a_trusted_provider_without_hash_files_is_recorded(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys, hashes=())
    prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    p = provenance(session, VEX_KEY)
    assert (p["integrity"], p["hash"], [f["test"] for f in p["failures"]]) == ("signed", "", ["R18"])


def test_a_key_file_that_is_not_the_listed_key_is_not_used(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys, fingerprint=keys["stranger"][1])
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    assert any("R20" in line and "not the listed" in line for line in rep.failures), rep.failures
    p = provenance(session, VEX_KEY)
    assert p["integrity"] == "unverified" and [f["test"] for f in p["failures"]] == ["R20"]


def test_keys_are_judged_at_the_intakes_time(session, tmp_path, keys):  # noqa: F811
    """gpg runs on the intake's clock: before the key was made, its signature cannot be valid."""
    root = site(tmp_path / "m", keys)
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), KEY_MADE - timedelta(days=30))
    assert rep.added == 0 and rep.integrity == {}
    assert {q.failures[0]["test"] for q in session.scalars(select(VulnQuarantine))} == {"R19"}


def test_r2_a_file_not_named_after_its_tracking_id_is_recorded_and_still_read(session, tmp_path, keys):  # noqa: F811
    root = site(tmp_path / "m", keys)
    folder = root / "white" / "2021"
    for suffix in ("", ".sha512", ".asc"):
        (folder / f"acme-vex-2021-0007.json{suffix}").rename(folder / f"ACME_VEX_2021_0007.json{suffix}")
    (root / "white" / "changes.csv").write_text('"2021/ACME_VEX_2021_0007.json","2021-10-09T10:00:00Z"\n')
    rep = prov.import_provider(session, root, Settings(data_dir=tmp_path), START)
    p = provenance(session, VEX_KEY)
    assert p["integrity"] == "signed"
    assert p["failures"] == [{"test": "R2", "path": "/document/tracking/id",
                              "reason": "the file is named 'ACME_VEX_2021_0007.json'; tracking id "
                                        "'ACME-VEX-2021-0007' gives 'acme-vex-2021-0007.json'"}]
    assert any("R2" in line for line in rep.failures)


@pytest.mark.parametrize(("tracking_id", "name"), [
    ("ACME-SA-2021-0010", "acme-sa-2021-0010.json"),
    ("RHSA-2021:1234", "rhsa-2021_1234.json"),
    ("cisco-sa-ios  xe//web", "cisco-sa-ios_xe_web.json"),    # a run of several becomes one _
    ("A+B_c", "a+b_c.json"),                                  # + and - are kept, _ itself is replaced
    ("Ünïcode-1", "_n_code-1.json"),
])
def test_r2_file_name_from_tracking_id(tracking_id, name):
    assert prov.expected_filename(tracking_id) == name


class Plain(Provider):
    """The loopback provider, serving the files as they are (their URLs already name it)."""


@pytest.fixture
def served(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    Plain.root, Plain.base, Provider.hits = tmp_path / "site", base, []
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield base, tmp_path / "site"
    httpd.shutdown()
    httpd.server_close()


def test_online_the_hash_signature_and_key_come_through_the_allowlist(session, tmp_path, keys, served):  # noqa: F811
    base, root = served
    site(root, keys, base=base)
    settings = Settings(data_dir=tmp_path, outbound_allowlist=[base + "/.well-known/csaf/"], outbound_timeout_seconds=5)
    rep = prov.import_provider(session, base + "/.well-known/csaf/provider-metadata.json", settings, START)
    assert rep.integrity == {"signed": 2} and rep.failures == [], rep.summary()
    got = {p for p, s in Provider.hits if s == 200}
    assert {"/.well-known/csaf/openpgp/acme.asc", "/.well-known/csaf/white/2021/acme-vex-2021-0007.json.sha512",
            "/.well-known/csaf/white/2021/acme-vex-2021-0007.json.asc"} <= got
    assert "/.well-known/csaf/white/2021/acme-vex-2021-0007.json.sha256" not in {p for p, _s in Provider.hits}
    # nothing changed: no advisory, and so no hash or signature, is fetched again
    Provider.hits = []
    rep = prov.import_provider(session, base + "/.well-known/csaf/provider-metadata.json", settings, START)
    assert rep.fetched == 0 and not any(p.endswith((".asc", ".sha512")) and "2021/" in p for p, _s in Provider.hits)


def test_online_a_key_off_the_allowlist_is_not_fetched(session, tmp_path, keys, served):  # noqa: F811
    base, root = served
    site(root, keys, base=base)
    meta = json.loads((root / "provider-metadata.json").read_text())
    meta["public_openpgp_keys"][0]["url"] = base + "/elsewhere/acme.asc"
    (root / "provider-metadata.json").write_text(json.dumps(meta))
    settings = Settings(data_dir=tmp_path, outbound_allowlist=[base + "/.well-known/csaf/"], outbound_timeout_seconds=5)
    rep = prov.import_provider(session, base + "/.well-known/csaf/provider-metadata.json", settings, START)
    assert any("R20" in line and "allowlist" in line for line in rep.failures), rep.failures
    assert not any(p.startswith("/elsewhere") for p, _s in Provider.hits)
    assert provenance(session, VEX_KEY)["integrity"] == "unverified"


def test_the_provider_role_and_integrity_show_on_the_page_and_the_api(app, client, world, clock, tmp_path, keys):
    """A finding from a trusted provider's signed advisory says so, in English and in Chinese; one
    from an unsigned advisory of a plain provider says that."""
    from commonwatch.cii.models import Asset, CiiSystem
    from commonwatch.db import session_scope
    from commonwatch.vulns import services as svc
    from tests.conftest import sign_in

    root = site(tmp_path / "m", keys)
    vex = root / "white" / "2021" / "acme-sa-2021-0010.json.asc"
    with session_scope(app.state.sessionmaker, actor="test") as s:
        system = CiiSystem(org_id=world.org_b, name="Billing", mlps_level=3)
        s.add(system)
        s.flush()
        s.add(Asset(org_id=world.org_b, system_id=system.id, name="app",
                    purl="pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"))
        prov.import_provider(s, root, Settings(data_dir=tmp_path), clock.now())
        svc.run_match(s, clock.now())
    rows = client.get("/api/v1/vulns/findings", headers=world.auth("b")).json()
    assert [(r["vuln_id"], r["provider_role"], r["integrity"]) for r in rows] == [
        ("CVE-2021-44228", "csaf_trusted_provider", "signed")]
    sign_in(client, world.users["b"])
    page = client.get("/vulns").text
    assert 'data-integrity="signed"' in page and "CSAF trusted provider · signed" in page
    client.get("/lang/zh-CN")
    zh = client.get("/vulns").text
    assert "CSAF 可信提供方 · 已签名" in zh, zh[zh.find("advisory-trust") - 200:][:600]

    # the provider steps down to csaf_provider and stops signing: the next read says so
    meta = json.loads((root / "provider-metadata.json").read_text())
    meta["role"] = "csaf_provider"
    (root / "provider-metadata.json").write_text(json.dumps(meta))
    vex.unlink()
    with session_scope(app.state.sessionmaker, actor="test") as s:
        prov.import_provider(s, root, Settings(data_dir=tmp_path), clock.now())
    assert "CSAF 提供方 · 未签名" in client.get("/vulns").text
    client.get("/lang/en")
    assert 'data-integrity="unsigned"' in client.get("/vulns").text
