"""The vulns capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_

STATUS_LABELS = {"open": N_("open"), "mitigated": N_("mitigated"), "accepted_risk": N_("accepted risk"),
                 "false_positive": N_("false positive")}
SEVERITY_LABELS = {"critical": N_("Critical"), "high": N_("High"), "medium": N_("Medium"), "low": N_("Low"),
                   "unknown": N_("Unknown")}
#: A CSAF advisory's integrity as its provider gave it (CSAF 2.0 §7.1 R18–R20).
INTEGRITY_LABELS = {"signed": N_("signed"), "unsigned": N_("unsigned"),
                    "unverified": N_("signature not checked")}
#: A CSAF provider's role (CSAF 2.0 §7.2).
PROVIDER_ROLE_LABELS = {"csaf_publisher": N_("CSAF publisher"), "csaf_provider": N_("CSAF provider"),
                        "csaf_trusted_provider": N_("CSAF trusted provider")}

ENUMS = {
    "finding_status": STATUS_LABELS,
    "vuln_severity": SEVERITY_LABELS,
    "csaf_integrity": INTEGRITY_LABELS,
    "csaf_provider_role": PROVIDER_ROLE_LABELS,
}
