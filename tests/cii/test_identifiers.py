"""CPE 2.3 formatted-string grammar, CPE 2.2 URI conversion and purl canonical form, at their edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commonwatch.cii.identifiers import IdentifierError, cpe_attributes, normalise_cpe, normalise_purl

GOOD = [
    ("cpe:2.3:a:F5:NGINX:1.24.0:*:*:*:*:*:*:*", "cpe:2.3:a:f5:nginx:1.24.0:*:*:*:*:*:*:*"),
    ("cpe:2.3:o:microsoft:windows_10:-:*:*:*:*:*:x64:*", "cpe:2.3:o:microsoft:windows_10:-:*:*:*:*:*:x64:*"),
    ("cpe:2.3:h:cisco:catalyst_9300:-:*:*:*:*:*:*:*", "cpe:2.3:h:cisco:catalyst_9300:-:*:*:*:*:*:*:*"),
    ("cpe:2.3:a:vendor:product:1.*:*:*:*:*:*:*:*", "cpe:2.3:a:vendor:product:1.*:*:*:*:*:*:*:*"),
    ("cpe:2.3:a:vendor:product:??1:*:*:zh-cn:*:*:*:*", "cpe:2.3:a:vendor:product:??1:*:*:zh-cn:*:*:*:*"),
    ("cpe:2.3:a:hp:insight_diagnostics:7.4.0.1570:-:*:*:online:win2003:x64:*",
     "cpe:2.3:a:hp:insight_diagnostics:7.4.0.1570:-:*:*:online:win2003:x64:*"),
    (r"cpe:2.3:a:foo\:bar:baz\!:1.0:*:*:*:*:*:*:*", r"cpe:2.3:a:foo\:bar:baz\!:1.0:*:*:*:*:*:*:*"),
]
BAD = [
    ("cpe:2.3:x:vendor:product:1.0:*:*:*:*:*:*:*", "grammar"),           # part must be a, o or h
    ("cpe:2.3:a:vendor:pro*duct:1.0:*:*:*:*:*:*:*", "grammar"),          # wildcard in the middle
    ("cpe:2.3:a:vendor:product:1.0:*:*:english:*:*:*:*", "grammar"),     # language not a tag
    ("cpe:2.3:a:vendor:product:1 0:*:*:*:*:*:*:*", "grammar"),           # unescaped space
    ("cpe:2.3:a:vendor:product:1.0:*:*:*:*:*:*", "11 attributes"),       # one attribute short
    ("cpe:2.3:a:vendor:product:1.0:*:*:*:*:*:*:*:*", "11 attributes"),   # one too many
    ("cpe:2.3:a:vendor::1.0:*:*:*:*:*:*:*", "grammar"),                  # empty value
    ("cpe:2.2:a:vendor:product", "must start with"),
    ("", "empty"),
]


@pytest.mark.parametrize("text, expected", GOOD)
def test_good_cpes_normalised(text, expected):
    assert normalise_cpe(text) == expected


@pytest.mark.parametrize("text, words", BAD)
def test_bad_cpes_named(text, words):
    with pytest.raises(IdentifierError, match=words):
        normalise_cpe(text)


@pytest.mark.parametrize("uri, expected", [
    ("cpe:/a:openbsd:openssh:8.9p1", "cpe:2.3:a:openbsd:openssh:8.9p1:*:*:*:*:*:*:*"),
    ("cpe:/o:linux:linux_kernel", "cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*"),
    ("cpe:/a:microsoft:ie:8.%02:sp%01", "cpe:2.3:a:microsoft:ie:8.*:sp?:*:*:*:*:*:*"),
    ("cpe:/a:foo%21bar:baz:1.0", r"cpe:2.3:a:foo\!bar:baz:1.0:*:*:*:*:*:*:*"),
    ("cpe:/a:hp:insight:7.4:-:~~online~win2003~x64~", "cpe:2.3:a:hp:insight:7.4:-:*:*:online:win2003:x64:*"),
    ("cpe:/h:cisco:router:-", "cpe:2.3:h:cisco:router:-:*:*:*:*:*:*:*"),
])
def test_cpe22_uris_converted(uri, expected):
    assert normalise_cpe(uri) == expected


@pytest.mark.parametrize("uri, words", [("cpe:/a:x:y:%zz", "percent"), ("cpe:/a:x:y:1:u:~a~b:en", "packed"),
                                        ("cpe:/q:x:y", "CPE 2.2 URI")])
def test_bad_uris(uri, words):
    with pytest.raises(IdentifierError, match=words):
        normalise_cpe(uri)


def test_attributes_keep_escaped_colons():
    attrs = cpe_attributes(r"cpe:2.3:a:foo\:bar:baz:1.0:*:*:*:*:*:*:*")
    assert attrs["vendor"] == r"foo\:bar" and attrs["product"] == "baz" and attrs["other"] == "*"


@pytest.mark.parametrize("text, expected", [
    ("pkg:PyPI/Requests@2.31.0", "pkg:pypi/requests@2.31.0"),
    ("pkg:deb/debian/curl@7.50.3-1?distro=jessie&arch=i386", "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"),
    ("pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?packaging=sources",
     "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?packaging=sources"),
    ("pkg:npm/%40angular/core@16.0.0", "pkg:npm/%40angular/core@16.0.0"),
])
def test_purls_canonical(text, expected):
    assert normalise_purl(text) == expected


@pytest.mark.parametrize("text", ["npm/left-pad", "pkg:", "pkg:npm", "pkg:/x@1", "http://example.org/x"])
def test_bad_purls(text):
    with pytest.raises(IdentifierError, match="purl|empty"):
        normalise_purl(text)


@given(st.text(max_size=200))
def test_any_text_gives_a_cpe_or_a_reason(text):
    try:
        out = normalise_cpe(text)
    except IdentifierError as exc:
        assert str(exc)
    else:
        assert out.startswith("cpe:2.3:") and normalise_cpe(out) == out


@given(st.text(max_size=200))
def test_any_text_gives_a_purl_or_a_reason(text):
    try:
        out = normalise_purl(text)
    except IdentifierError as exc:
        assert str(exc)
    else:
        assert normalise_purl(out) == out
