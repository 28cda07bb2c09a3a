"""The vulns capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_

STATUS_LABELS = {"open": N_("open"), "mitigated": N_("mitigated"), "accepted_risk": N_("accepted risk"),
                 "false_positive": N_("false positive")}
SEVERITY_LABELS = {"critical": N_("Critical"), "high": N_("High"), "medium": N_("Medium"), "low": N_("Low"),
                   "unknown": N_("Unknown")}

ENUMS = {
    "finding_status": STATUS_LABELS,
    "vuln_severity": SEVERITY_LABELS,
}
