"""The notification settings' section of the account page (``access.pages`` shows each
capability's ``account.section``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.i18n import _
from commonwatch.inbox import services
from commonwatch.inbox.models import CHANNELS, KINDS


def section(db: Session, principal: Principal) -> dict[str, Any] | None:
    if not principal.user_id:
        return None
    chosen = services.preferences(db, principal)
    return {"template": "inbox/_preferences.html",
            "kinds": [(k, _(services.KIND_LABELS[k]), chosen[k]) for k in KINDS],
            "channels": [(c, _(services.CHANNEL_LABELS[c])) for c in CHANNELS]}
