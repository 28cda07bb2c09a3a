"""The notify capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_
from commonwatch.notify.advice import SEVERITY_LABELS, TYPE_LABELS
from commonwatch.notify.policies import CADENCE_LABELS, CHANNEL_LABELS

ENUMS = {
    # classification.type of an event (RSIT 1.3 and IntelMQ's additions).
    "event_type": TYPE_LABELS,
    "severity": SEVERITY_LABELS,
    "cadence": CADENCE_LABELS,
    "channel": CHANNEL_LABELS,
    "delivery_status": {
        "pending": N_("pending"), "sending": N_("sending"), "retry": N_("waiting to retry"), "sent": N_("sent"),
        "held": N_("held"), "dead": N_("dead letter"), "cancelled": N_("cancelled"),
    },
    "warning_status": {
        "open": N_("open"), "acknowledged": N_("acknowledged"), "resolved": N_("resolved"),
        "false-positive": N_("false positive"),
    },
}
