"""REST: a user's second factors (what is set up, never a secret) and an administrator's reset."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from commonwatch.access import mfa
from commonwatch.access import services as access
from commonwatch.access.authsettings import auth_settings
from commonwatch.access.principal import Principal
from commonwatch.web.deps import get_db, require, state

router = APIRouter(tags=["access"])


class FactorsOut(BaseModel):
    user_id: int
    totp: bool
    security_keys: int
    recovery_codes_left: int
    required: bool


def _out(db: Session, app_state, user) -> FactorsOut:
    f = mfa.factors(db, user.id)
    return FactorsOut(user_id=user.id, totp=f.totp, security_keys=f.keys, recovery_codes_left=f.recovery_left,
                      required=mfa.required(auth_settings(app_state), user))


@router.get("/users/{user_id}/mfa", response_model=FactorsOut)
def get_factors(user_id: int, principal: Principal = Depends(require("users.read")),
                db: Session = Depends(get_db), app_state=Depends(state)):
    return _out(db, app_state, access.get_user(db, user_id))


@router.delete("/users/{user_id}/mfa", response_model=FactorsOut)
def reset_factors(user_id: int, principal: Principal = Depends(require("users.write")),
                  db: Session = Depends(get_db), app_state=Depends(state)):
    """Remove every second factor and recovery code of the user and end their sessions (audited)."""
    user = access.get_user(db, user_id)
    mfa.reset(db, user)
    db.commit()
    return _out(db, app_state, user)
