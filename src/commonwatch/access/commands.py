"""CLI: ``user add``, ``user list``, ``token create|list|revoke``, ``audit list|verify|anchor``,
``signin unlock``."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer
from sqlalchemy import select

from commonwatch.access import anchor, audit, signin_limits
from commonwatch.access import services as access
from commonwatch.access.models import ApiToken, User
from commonwatch.errors import Invalid
from commonwatch.runtime import get_runtime
from commonwatch.terminal import TIME_RULE, print_table, show_time

user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for Authorization: Bearer.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
signin_app = typer.Typer(help="Sign-in locks after failed attempts.", no_args_is_help=True)


def _fail(message: str) -> None:
    from commonwatch.cli import fail

    fail(message)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        _fail("the two passwords differ")
    return first


@user_app.command("add")
def user_add(
    email: str,
    role: str = typer.Option(..., help="admin, coordinator, analyst, constituent, partner or auditor"),
    org: list[int] = typer.Option([], help="Organisation id (repeat for several)."),
    name: str = typer.Option("", help="Display name."),
    language: str = typer.Option("zh-CN", help="en or zh-CN"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a user; the password comes from a prompt or stdin."""
    password = _read_password(password_stdin)
    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            user = access.create_user(session, email, role, password, name=name, org_ids=list(org), language=language)
            user_id = user.id
    except Invalid as exc:
        _fail(str(exc))
    typer.echo(f"created user {user_id} {email.strip().lower()} ({role})", err=True)


@user_app.command("list")
def user_list() -> None:
    """List users: id, email, role, organisations, active."""
    rt = get_runtime()
    with rt.session("cli") as session:
        for u in session.scalars(select(User).order_by(User.id)):
            orgs = ",".join(map(str, u.org_ids))
            typer.echo(f"{u.id}\t{u.email}\t{u.role}\t{orgs}\t{'active' if u.active else 'inactive'}")


@token_app.command("create")
def token_create(email: str, expires: float = typer.Option(90, help="Days until it expires; 0 for never."),
                 name: str = typer.Option("", help="What the token is for.")) -> None:
    """Create a token for a user and print it alone on stdout (it is shown only once)."""
    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            user = access.user_by_email(session, email)
            if user is None:
                _fail(f"no user {email}")
            issued = access.create_token(session, user, name=name, expires_days=expires or None,
                                         now=rt.clock.now())
            secret = issued.secret
    except Invalid as exc:
        _fail(str(exc))
    typer.echo(secret)


@token_app.command("list")
def token_list(email: str) -> None:
    """A user's tokens (never the secrets)."""
    rt = get_runtime()
    with rt.session("cli") as session:
        user = access.user_by_email(session, email)
        if user is None:
            _fail(f"no user {email}")
        for t in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)):
            state = "revoked" if t.revoked_at else "live"
            typer.echo(f"{t.id}\t{t.prefix}…\t{t.name}\texpires {t.expires_at or 'never'}\t{state}")


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by id."""
    rt = get_runtime()
    with rt.session("cli") as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            _fail(f"no token {token_id}")
        access.revoke_token(session, token, rt.clock.now())
    typer.echo(f"revoked token {token_id}", err=True)


@audit_app.command("verify")
def audit_verify(anchors: Path | None = typer.Option(
        None, help="Anchor file to check against (e.g. a witness's copy); default: the configured one.")) -> None:
    """Check the whole chain and the anchors; report the first edited, missing or reordered link,
    a truncation or a rewrite (exit 1)."""
    rt = get_runtime()
    try:
        recorded = anchor.read_anchors(anchors or anchor.anchor_path(rt.settings))
    except anchor.AnchorError as exc:
        _fail(str(exc))
    with rt.engine.connect() as conn:
        result = audit.verify(conn, anchors=recorded)
    keyed = f"keyed from link {result.keyed_from}" if result.keyed_from else "NOT keyed"
    if result.ok:
        typer.echo(f"audit log intact: {result.checked} links, {keyed}, "
                   f"{result.anchors_checked} anchors agree")
        return
    typer.echo(f"audit log BROKEN at link {result.seq}: {result.problem} ({result.checked} links good before it)")
    raise typer.Exit(1)


@audit_app.command("list", epilog=TIME_RULE)
def audit_list(entity: str = typer.Option("", help="Only links about this entity (e.g. incidents, events)."),
               actor: str = typer.Option("", help="Only links whose actor contains this."),
               action: str = typer.Option("", help="Only this action (create, update, delete, export, ...)."),
               since: str = typer.Option(None, "--since", help="From this time on, ISO 8601."),
               limit: int = typer.Option(100, "--limit", min=1, help="At most this many links.")) -> None:
    """The audit log's newest links: sequence, time, actor, action, entity and id (the filters of the
    audit page). ``audit verify`` checks the chain."""
    from commonwatch.events.search import parse_time

    rt = get_runtime()
    try:
        start = parse_time(since, "since", rt.settings.timezone) if since else None
    except Invalid as exc:
        _fail(f"--since: {exc.errors[0].reason}")
    with rt.session("cli") as session:
        entries = session.scalars(audit.entries_query(entity=entity, actor=actor, action=action, since=start)
                                  .limit(limit)).all()
        print_table(("seq", "at", "actor", "action", "entity", "id"),
                    ((e.seq, show_time(e.at, rt.settings.timezone), e.actor, e.action, e.entity, e.entity_id)
                     for e in entries))


@audit_app.command("anchor")
def audit_anchor() -> None:
    """Append the chain's head (sequence, hash, time) to the anchor file and send it to the
    configured witness (webhook or mail)."""
    rt = get_runtime()
    try:
        head = anchor.anchor(rt.settings, rt.engine, rt.clock.now())
    except (anchor.AnchorError, Invalid) as exc:
        _fail(str(exc))
    typer.echo(f"anchored link {head.seq} {head.hash} at {head.at.isoformat()} in {anchor.anchor_path(rt.settings)}")


@signin_app.command("locks")
def signin_locks() -> None:
    """The locks in force: kind, account, address, failures, until."""
    rt = get_runtime()
    with rt.session("cli") as session:
        for lk in signin_limits.locks(session, rt.settings, rt.clock.now()):
            typer.echo(f"{lk.kind}\t{lk.email or '-'}\t{lk.ip or '-'}\t{lk.failures}\t{lk.until.isoformat()}")


@signin_app.command("unlock")
def signin_unlock(email: str = typer.Option("", help="The account whose recent failures to forget."),
                  ip: str = typer.Option("", help="The client address whose recent failures to forget.")) -> None:
    """Clear a sign-in lock (recorded in the audit log)."""
    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            cleared = signin_limits.clear(session, rt.settings, rt.clock.now(), email=email, ip=ip)
    except Invalid as exc:
        _fail(str(exc))
    typer.echo(f"cleared {cleared} failed sign-ins", err=True)


def register(root: typer.Typer) -> None:
    from commonwatch.access import mfa_commands

    mfa_commands.register(user_app)
    root.add_typer(user_app, name="user")
    root.add_typer(token_app, name="token")
    root.add_typer(audit_app, name="audit")
    root.add_typer(signin_app, name="signin")
