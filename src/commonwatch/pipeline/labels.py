"""The pipeline capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_

STATUS_LABELS = {"running": N_("still running"), "done": N_("done"), "failed": N_("failed"),
                 "interrupted": N_("interrupted")}

ENUMS = {
    "ingest_status": STATUS_LABELS,
}
