"""The constituency capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_
from commonwatch.rules import load_rules

ENUMS = {
    "org_kind": {
        "network-operator": N_("Network operator"), "cii-operator": N_("CII operator"),
        "government": N_("Government body"), "partner-cert": N_("Partner CERT abroad"), "other": N_("Other"),
    },
    # The sector list is a rules file that carries both languages.
    "sector": {s["code"]: (s["en"], s["zh"]) for s in load_rules("cii_sectors.yaml")["sectors"]},
    "contact_role": {
        "abuse": N_("abuse desk"), "security": N_("security team"), "management": N_("management"),
        "technical": N_("technical contact"), "legal": N_("legal contact"), "other": N_("other contact"),
    },
    "notice_kind": {
        "early-warning": N_("Early warnings"), "incidents": N_("Incidents"),
        "advisories": N_("Vulnerability advisories"), "reports": N_("Reports and statistics"),
    },
}
