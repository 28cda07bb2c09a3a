"""Each inventory reader on good and bad files in their real formats."""

from __future__ import annotations

import json

import pytest

from commonwatch.cii.importers import (
    MAX_BYTES,
    ImportRefused,
    read,
    read_csv,
    read_cyclonedx,
    read_nmap,
    read_spdx,
    sniff,
)
from tests.cii import samples


def test_cyclonedx_components_nested_purls_canonical_and_bad_row_quarantined():
    parsed = read_cyclonedx(samples.CYCLONEDX_GOOD)
    assert parsed.spec_version == "1.5"
    names = [r["name"] for r in parsed.rows]
    assert names == ["org.apache.logging.log4j/log4j-core", "requests", "urllib3"]
    assert parsed.rows[1]["purl"] == "pkg:pypi/requests@2.31.0"
    assert parsed.rows[0]["cpe"] == "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"
    [bad] = parsed.bad
    assert (bad.where, bad.field) == ("/components/2", "purl") and "broken-purl" in bad.raw


@pytest.mark.parametrize("version", ["1.4", "1.6"])
def test_cyclonedx_versions_read(version):
    doc = samples.CYCLONEDX_GOOD.replace(b'"1.5"', f'"{version}"'.encode())
    assert len(read_cyclonedx(doc).rows) == 3


@pytest.mark.parametrize("doc, words", [
    (samples.CYCLONEDX_GOOD.replace(b'"specVersion": "1.5"', b'"specVersion": "1.3"'), "1.3"),
    (b'{"bomFormat": "SPDX"}', "bomFormat"),
    (b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": {}}', "/components"),
    (b'{"bomFormat": ', "JSON"),
])
def test_cyclonedx_refused_whole(doc, words):
    with pytest.raises(ImportRefused, match=words):
        read_cyclonedx(doc)


def test_spdx_packages_refs_and_purpose():
    parsed = read_spdx(samples.SPDX_GOOD)
    ssl, busybox = parsed.rows
    assert ssl["vendor"] == "OpenSSL Software Foundation"
    assert ssl["purl"] == "pkg:deb/debian/openssl@3.0.7-1?arch=amd64"
    assert ssl["cpe"] == "cpe:2.3:a:openssl:openssl:3.0.7:*:*:*:*:*:*:*"
    assert busybox["kind"] == "os" and busybox["cpe"] is None
    [bad] = parsed.bad
    assert (bad.where, bad.field) == ("/packages/2", "cpe") and "11 attributes" in bad.reason


@pytest.mark.parametrize("version", ["SPDX-2.2", "SPDX-3.0"])
def test_spdx_other_versions_refused(version):
    doc = samples.SPDX_GOOD.replace(b"SPDX-2.3", version.encode())
    with pytest.raises(ImportRefused, match=version):
        read_spdx(doc)


def test_nmap_open_services_with_cpes_and_os():
    parsed = read_nmap(samples.NMAP_GOOD)
    assert not parsed.bad
    ssh, http, os_ = parsed.rows
    assert ssh["cpe"] == "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*" and ssh["host"] == "192.0.2.10"
    assert ssh["kind"] == "service" and ssh["name"] == "OpenSSH 22/tcp"
    assert http["cpe"] == "cpe:2.3:a:igor_sysoev:nginx:1.18.0:*:*:*:*:*:*:*" and http["version"] == "1.18.0"
    assert os_["kind"] == "os" and os_["cpe"] == "cpe:2.3:o:linux:linux_kernel:5:*:*:*:*:*:*:*"


def test_nmap_bad_cpe_quarantined_and_bombs_refused():
    parsed = read_nmap(samples.NMAP_BAD_CPE)
    [bad] = parsed.bad
    assert bad.field == "cpe" and "port 80/tcp" in bad.where and "<port" in bad.raw
    assert len(parsed.rows) == 2
    with pytest.raises(ImportRefused, match="forbidden"):
        read_nmap(samples.NMAP_ENTITY_BOMB)
    with pytest.raises(ImportRefused, match="well-formed"):
        read_nmap(b"<nmaprun><host>")
    with pytest.raises(ImportRefused, match="nmaprun"):
        read_nmap(b"<scan/>")


def test_csv_good_and_bad_rows_with_lines():
    good = read_csv(samples.CSV_GOOD)
    assert not good.bad and [r["kind"] for r in good.rows] == ["software", "hardware", "software"]
    assert good.rows[2]["purl"] == "pkg:npm/left-pad@1.3.0" and good.rows[2]["cpe"] is None
    parsed = read_csv(samples.CSV_WITH_BAD_ROWS)
    assert [r["name"] for r in parsed.rows] == ["nginx"]
    got = [(b.where, b.field) for b in parsed.bad]
    assert got == [("line 3", "cpe"), ("line 4", "name"), ("line 5", ""), ("line 6", "purl")]
    assert "grammar" in parsed.bad[0].reason and "5 cells" in parsed.bad[2].reason


def test_csv_header_problems_refuse_the_file():
    with pytest.raises(ImportRefused, match="line 1: unknown column"):
        read_csv(b"name,versoin\nx,1\n")
    with pytest.raises(ImportRefused, match="name or product"):
        read_csv(b"version\n1\n")
    with pytest.raises(ImportRefused, match="empty"):
        read_csv(b"")


def test_size_limit_and_sniffing():
    with pytest.raises(ImportRefused, match="larger"):
        read("cyclonedx", b" " * (MAX_BYTES + 1))
    with pytest.raises(ImportRefused, match="format"):
        read("xlsx", b"x")
    assert sniff(samples.CYCLONEDX_GOOD) == "cyclonedx" and sniff(samples.SPDX_GOOD) == "spdx"
    assert sniff(samples.NMAP_GOOD) == "nmap" and sniff(samples.CSV_GOOD) == "csv"
    assert json.loads(samples.SPDX_GOOD)["spdxVersion"] == "SPDX-2.3"
