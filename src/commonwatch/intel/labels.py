"""The intel capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_

KIND_LABELS = {"ipv4": N_("IPv4 address"), "ipv6": N_("IPv6 address"), "cidr": N_("Network (CIDR)"),
               "domain": N_("Domain"), "url": N_("URL"), "email": N_("Email address"), "md5": "MD5",
               "sha1": "SHA-1", "sha256": "SHA-256", "pattern": N_("STIX pattern")}
STATUS_LABELS = {"live": N_("Live"), "expired": N_("Expired"), "revoked": N_("Revoked")}

ENUMS = {
    # STIX 2.1 indicator-type-ov.
    "indicator_type": {
        "malicious-activity": N_("malicious activity"), "anomalous-activity": N_("anomalous activity"),
        "attribution": N_("attribution"), "benign": N_("benign"), "compromised": N_("compromised"),
        "unknown": N_("unknown"),
    },
    "stix_import_status": {"added": N_("added"), "unchanged": N_("unchanged"), "failed": N_("failed")},
    "indicator_kind": KIND_LABELS,
    "indicator_status": STATUS_LABELS,
}
