"""The cooperation capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_

ENUMS = {
    "request_status": {
        "received": N_("Received"), "acknowledged": N_("Acknowledged"), "under_review": N_("Under review"),
        "forwarded": N_("Forwarded to the competent authority"), "answered": N_("Answered"), "declined": N_("Declined"),
    },
    "request_direction": {"incoming": N_("Incoming"), "outgoing": N_("Outgoing")},
    "partner_kind": {
        "national": N_("National CERT"), "sector": N_("Sector CERT"), "vendor": N_("Vendor team"),
        "academic": N_("Academic team"),
    },
    "ti_level": {"listed": N_("Listed"), "accredited": N_("Accredited"), "certified": N_("Certified")},
    "concern_type": {"incident": N_("incident"), "event": N_("event"), "indicator": N_("indicator"),
                     "network": N_("network")},
}
