"""CLI: ``user mfa-status EMAIL`` and ``user mfa-reset EMAIL`` (a lost second factor)."""

from __future__ import annotations

import typer

from commonwatch.access import mfa
from commonwatch.access import services as access
from commonwatch.runtime import get_runtime


def _user(session, email: str):
    from commonwatch.cli import fail

    user = access.user_by_email(session, email)
    if user is None:
        fail(f"no user {email}")
    return user


def mfa_status(email: str) -> None:
    """What second factors a user has (never a secret)."""
    rt = get_runtime()
    with rt.session("cli") as session:
        f = mfa.factors(session, _user(session, email).id)
        typer.echo(f"totp {'yes' if f.totp else 'no'}\tsecurity keys {f.keys}\trecovery codes left {f.recovery_left}")


def mfa_reset(email: str) -> None:
    """Remove a user's second factors and recovery codes and end their sessions (audited); they
    set up a new factor at the next sign-in."""
    rt = get_runtime()
    with rt.session("cli") as session:
        user = _user(session, email)
        before = mfa.reset(session, user)
    typer.echo(f"reset second factors of {email.strip().lower()}: totp {'yes' if before.totp else 'no'}, "
               f"{before.keys} security keys, {before.recovery_left} recovery codes removed", err=True)


def register(user_app: typer.Typer) -> None:
    user_app.command("mfa-status")(mfa_status)
    user_app.command("mfa-reset")(mfa_reset)
