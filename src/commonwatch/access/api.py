"""REST: the caller, users, API tokens and the audit log."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch.access import anchor, signin_locks
from commonwatch.access import services as access
from commonwatch.access.models import ApiToken, AuditEntry, User
from commonwatch.access.principal import Principal
from commonwatch.errors import NotFound
from commonwatch.web.deps import get_db, require, require_principal

router = APIRouter(tags=["access"])
router.routes.extend(signin_locks.api_router.routes)


class MeOut(BaseModel):
    user_id: int
    email: str
    name: str
    role: str
    org_ids: list[int]
    language: str
    via: str


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    org_ids: list[int]
    language: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserIn(BaseModel):
    email: str
    role: str
    name: str = ""
    org_ids: list[int] = Field(default_factory=list)
    language: str = "zh-CN"
    password: str | None = None


class UserPatch(BaseModel):
    name: str | None = None
    role: str | None = None
    org_ids: list[int] | None = None
    active: bool | None = None
    language: str | None = None
    timezone: str | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIn(BaseModel):
    name: str = ""
    expires_days: float | None = 90


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown once, never again.")


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: str | None
    after: str | None
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    problem: str
    seq: int | None


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, name=user.name, role=user.role, org_ids=user.org_ids,
                   language=user.language, active=user.active, created_at=user.created_at,
                   last_login_at=user.last_login_at)


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut.model_validate(token, from_attributes=True)


@router.get("/me", response_model=MeOut)
def me(principal: Principal = Depends(require_principal)) -> MeOut:
    return MeOut(user_id=principal.user_id, email=principal.email, name=principal.name, role=principal.role,
                 org_ids=sorted(principal.org_ids), language=principal.language, via=principal.via)


@router.get("/users", response_model=list[UserOut])
def list_users(principal: Principal = Depends(require("users.read")), db: Session = Depends(get_db)):
    return [_user_out(u) for u in db.scalars(select(User).order_by(User.email))]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, principal: Principal = Depends(require("users.write")),
                db: Session = Depends(get_db)):
    user = access.create_user(db, body.email, body.role, body.password, name=body.name, org_ids=body.org_ids,
                              language=body.language)
    db.commit()
    return _user_out(user)


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: int, principal: Principal = Depends(require("users.read")), db: Session = Depends(get_db)):
    return _user_out(access.get_user(db, user_id))


@router.patch("/users/{user_id}", response_model=UserOut)
def patch_user(user_id: int, body: UserPatch, principal: Principal = Depends(require("users.write")),
               db: Session = Depends(get_db)):
    user = access.update_user(db, access.get_user(db, user_id), **body.model_dump(exclude_unset=True))
    db.commit()
    return _user_out(user)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(principal: Principal = Depends(require("tokens.self")), db: Session = Depends(get_db)):
    rows = db.scalars(select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id))
    return [_token_out(t) for t in rows]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenIn, request: Request, principal: Principal = Depends(require("tokens.self")),
                 db: Session = Depends(get_db)):
    issued = access.create_token(db, access.get_user(db, principal.user_id), name=body.name,
                                 expires_days=body.expires_days, now=request.app.state.clock.now())
    db.commit()
    return TokenCreated(**_token_out(issued.token).model_dump(), token=issued.secret)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, request: Request, principal: Principal = Depends(require("tokens.self")),
                 db: Session = Depends(get_db)) -> Response:
    token = db.get(ApiToken, token_id)
    if token is None or token.user_id != principal.user_id:
        raise NotFound()
    access.revoke_token(db, token, request.app.state.clock.now())
    db.commit()
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut])
def list_audit(entity: str | None = None, after_seq: int = 0, limit: int = 100,
               principal: Principal = Depends(require("audit.read")), db: Session = Depends(get_db)):
    stmt = select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(min(max(limit, 1), 1000))
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    return [AuditOut.model_validate(e, from_attributes=True) for e in db.scalars(stmt)]


@router.get("/audit/verify", response_model=VerifyOut)
def verify_audit(request: Request, principal: Principal = Depends(require("audit.read")),
                 db: Session = Depends(get_db)):
    result = anchor.verify(db, request.app.state.settings)
    return VerifyOut(ok=result.ok, checked=result.checked, problem=result.problem, seq=result.seq)


from commonwatch.access.mfa_api import router as _mfa_router  # noqa: E402 - a user's second factors

router.routes.extend(_mfa_router.routes)
