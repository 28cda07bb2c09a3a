"""Inventory files in their real formats, written for these tests (good ones, and ones with a bad row)."""

from pathlib import Path

DATA = Path(__file__).with_name("data")

CYCLONEDX_GOOD = b"""{
  "bomFormat": "CycloneDX",
  "specVersion": "1.5",
  "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
  "version": 1,
  "metadata": {
    "timestamp": "2026-11-20T08:00:00Z",
    "component": {"type": "application", "name": "billing-portal", "version": "4.2.0"}
  },
  "components": [
    {"type": "library", "bom-ref": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
     "group": "org.apache.logging.log4j", "name": "log4j-core", "version": "2.14.1",
     "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
     "cpe": "cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*"},
    {"type": "library", "name": "requests", "version": "2.31.0", "purl": "pkg:PyPI/Requests@2.31.0",
     "components": [{"type": "library", "name": "urllib3", "version": "1.26.5", "purl": "pkg:pypi/urllib3@1.26.5"}]},
    {"type": "library", "name": "broken", "version": "1.0", "purl": "broken-purl"}
  ]
}
"""

SPDX_GOOD = b"""{
  "spdxVersion": "SPDX-2.3",
  "dataLicense": "CC0-1.0",
  "SPDXID": "SPDXRef-DOCUMENT",
  "name": "scada-hmi",
  "documentNamespace": "https://example.org/spdx/scada-hmi-1",
  "creationInfo": {"created": "2026-11-20T08:00:00Z", "creators": ["Tool: example-1.0"]},
  "packages": [
    {"SPDXID": "SPDXRef-Package-openssl", "name": "openssl", "versionInfo": "3.0.7",
     "supplier": "Organization: OpenSSL Software Foundation", "downloadLocation": "NOASSERTION",
     "externalRefs": [
       {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
        "referenceLocator": "cpe:2.3:a:openssl:openssl:3.0.7:*:*:*:*:*:*:*"},
       {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
        "referenceLocator": "pkg:deb/debian/openssl@3.0.7-1?arch=amd64"}]},
    {"SPDXID": "SPDXRef-Package-busybox", "name": "busybox", "versionInfo": "1.36.1",
     "primaryPackagePurpose": "OPERATING-SYSTEM", "downloadLocation": "NOASSERTION"},
    {"SPDXID": "SPDXRef-Package-bad", "name": "bad-cpe", "versionInfo": "1", "downloadLocation": "NOASSERTION",
     "externalRefs": [{"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                       "referenceLocator": "cpe:2.3:a:vendor:product"}]}
  ]
}
"""

NMAP_GOOD = (DATA / "nmap_sv.xml").read_bytes()

NMAP_BAD_CPE = NMAP_GOOD.replace(b"<cpe>cpe:/a:igor_sysoev:nginx:1.18.0</cpe>", b"<cpe>cpe:/x:igor sysoev:nginx</cpe>")

NMAP_ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<nmaprun><host><address addr="&b;" addrtype="ipv4"/></host></nmaprun>
"""

CSV_GOOD = (
    b"kind,name,vendor,product,version,cpe,purl,host,network,owner\r\n"
    b"software,nginx,F5,nginx,1.24.0,cpe:2.3:a:f5:nginx:1.24.0:*:*:*:*:*:*:*,,10.1.0.5,10.1.0.0/24,ops\r\n"
    b"hardware,Core switch,Cisco,catalyst_9300,17.9.4,cpe:2.3:h:cisco:catalyst_9300:-:*:*:*:*:*:*:*,,10.1.0.1,,net\r\n"
    b"software,left-pad,,,1.3.0,,pkg:npm/left-pad@1.3.0,,,dev\r\n"
)

CSV_WITH_BAD_ROWS = (
    b"name,version,cpe,purl\n"
    b"nginx,1.24.0,cpe:2.3:a:f5:nginx:1.24.0:*:*:*:*:*:*:*,\n"
    b"bad cpe,1.0,cpe:2.3:a:vendor:pro*duct:1.0:*:*:*:*:*:*:*,\n"
    b",2.0,,\n"
    b"too,many,cells,here,extra\n"
    b"bad purl,1.0,,pkg:npm\n"
)
