"""The incidents capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_
from commonwatch.incidents.rules import load_incident_rules

ENUMS = {
    "incident_status": {
        "new": N_("New"), "triaged": N_("Triaged"), "in_progress": N_("In progress"), "contained": N_("Contained"),
        "resolved": N_("Resolved"), "closed": N_("Closed"), "reopened": N_("Reopened"),
    },
    "task_status": {
        "open": N_("Open"), "acknowledged": N_("Acknowledged"), "in_progress": N_("In progress"), "done": N_("Done"),
        "declined": N_("Declined"),
    },
    "comment_visibility": {
        "internal": N_("internal"), "shared": N_("shared with the reporter"), "partner": N_("from a partner CERT"),
    },
    # Where a reporting clock stands (incidents.clocks.clock_state).
    "clock_state": {
        "running": N_("running"), "at_risk": N_("at risk"), "missed": N_("missed"), "met": N_("met"),
        "late": N_("done late"), "open": N_("no fixed deadline"), "waiting": N_("not started"),
    },
    "report_kind": {
        "first_report": N_("first report"), "escalation": N_("escalation"), "summary": N_("summary report"),
    },
    # The grading levels' keys are their Chinese names; English pages add the English name.
    "incident_level": {lv.key: (f"{lv.key} ({lv.en})", lv.key) for lv in load_incident_rules(None).grading.levels},
}
