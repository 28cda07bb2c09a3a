"""Enumerations of the platform as a whole (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_

ENUMS = {
    # A capability named as the source of a figure (reports' cards say where a number comes from).
    "capability": {
        "access": N_("Users and access"), "constituency": N_("Constituency"), "events": N_("Events"),
        "enrichment": N_("Enrichment"), "feeds": N_("Feeds"), "pipeline": N_("Ingest runs"),
        "notify": N_("Notifications"), "incidents": N_("Incidents"), "intel": N_("Intelligence"),
        "cii": N_("Critical information infrastructure"), "vulns": N_("Vulnerabilities"),
        "datasec": N_("Data security"), "cooperation": N_("Cooperation"), "reports": N_("Reports"),
    },
}
