"""The datasec capability's enumerations and their labels (see ``commonwatch.labels``)."""

from commonwatch.i18n import N_, ngettext

ENUMS = {
    # Where a security-assessment approval stands (datasec.services.approval_state); ``window_in_<n>``
    # is said by approval_alert_label with its number of days.
    "approval_alert": {
        "expired": N_("expired"), "window_open": N_("extension window open"), "expiring": N_("expiring soon"),
        "superseded": N_("superseded"),
    },
    "approval_kind": {"security_assessment": N_("security assessment"), "certification": N_("certification")},
    "notified_grade": {"none": N_("none"), "important": N_("important data"), "core": N_("core data")},
}


def approval_alert_label(alert: str) -> str:
    """An approval's alert in the current language, with the days left for ``window_in_<n>``."""
    from commonwatch.labels import label

    prefix = "window_in_"
    if alert.startswith(prefix) and alert[len(prefix):].isdigit():
        n = int(alert[len(prefix):])
        return ngettext("extension window opens in {n} day", "extension window opens in {n} days", n).format(n=n)
    return label(alert, "approval_alert")
