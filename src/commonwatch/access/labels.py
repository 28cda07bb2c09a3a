"""The access capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_

ENUMS = {
    "role": {
        "admin": N_("Administrator"), "coordinator": N_("Coordinator"), "analyst": N_("Analyst"),
        "constituent": N_("Constituent"), "partner": N_("Partner CERT"), "auditor": N_("Auditor"),
    },
    # What the audit log says was done: the ORM's three acts and the notable acts recorded by name.
    "audit_action": {
        "create": N_("created"), "update": N_("changed"), "delete": N_("deleted"),
        "signin": N_("signed in"), "signin.failed": N_("sign-in failed"), "signin.mfa": N_("second factor passed"),
        "signin.mfa_failed": N_("second factor failed"), "signin.refused": N_("sign-in refused"),
        "signin.unlock": N_("sign-in unlocked"), "signout": N_("signed out"), "mfa.reset": N_("second factor reset"),
        "import": N_("imported"), "export": N_("exported"), "ingest": N_("events ingested"),
        "cooperation.partners.export": N_("partner list exported"),
        "cooperation.request.view": N_("cooperation request viewed"),
        "cooperation.requests.list": N_("cooperation requests listed"),
        "datasec.grade_confirmed": N_("data grade confirmed"), "datasec.scan": N_("data scanned"),
        "enrichment.load": N_("enrichment data loaded"), "events.demo": N_("demo events loaded"),
        "events.migrate-store": N_("event store migrated"), "events.rematch": N_("events matched again"),
        "events.retention": N_("old events removed"), "incident.level_override": N_("incident level overridden"),
        "incident.link_events": N_("events linked to an incident"), "incident.merge": N_("incidents merged"),
        "incident.regrade": N_("incident graded again"), "intel.events": N_("indicators made from events"),
        "intel.misp_push": N_("indicators sent to MISP"), "intel.push": N_("indicators pushed"),
        "intel.store": N_("indicators stored"), "notify.key.create": N_("signing key created"),
        "notify.key.import": N_("encryption key imported"), "notify.mark_sent": N_("delivery marked as sent"),
        "notify.resend": N_("delivery sent again"), "vulns.import": N_("vulnerabilities imported"),
        "vulns.import_epss": N_("EPSS scores imported"), "vulns.import_kev": N_("KEV catalogue imported"),
        "vulns.match": N_("vulnerabilities matched"),
    },
}
