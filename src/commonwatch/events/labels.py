"""The events capability's enumerations and their labels (see ``commonwatch.labels``).

``classification.type`` labels live with the warnings' advice (``notify.advice.TYPE_LABELS``)."""

from commonwatch.i18n import N_

ENUMS = {
    # classification.taxonomy: the RSIT 1.3 classes.
    "event_taxonomy": {
        "abusive-content": N_("Abusive content"), "malicious-code": N_("Malicious code"),
        "information-gathering": N_("Information gathering"), "intrusion-attempts": N_("Intrusion attempts"),
        "intrusions": N_("Intrusions"), "availability": N_("Availability"),
        "information-content-security": N_("Information content security"), "fraud": N_("Fraud"),
        "vulnerable": N_("Vulnerable"), "other": N_("Other"), "test": N_("Test"),
    },
}
