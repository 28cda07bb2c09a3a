"""CLI: ``notify run`` (send what is due), ``notify key init|import|show`` (the centre's OpenPGP
key), ``notify deliveries`` and ``notify resend``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from commonwatch.runtime import get_runtime

notify_app = typer.Typer(help="Early warning: digests, PGP, delivery.", no_args_is_help=True)
key_app = typer.Typer(help="The centre's OpenPGP key (signs warnings, protects webhook secrets).",
                      no_args_is_help=True)
notify_app.add_typer(key_app, name="key")


def notifier_for(rt):
    """A :class:`Notifier` on the runtime's settings, database and clock."""
    from commonwatch.notify.config import get_notify_settings
    from commonwatch.notify.runner import Notifier
    from commonwatch.web.templating import make_environment

    return Notifier(settings=rt.settings, sessions=rt.sessionmaker, clock=rt.clock,
                    env=make_environment(rt.settings.data_dir, rt.settings.timezone), nset=get_notify_settings())


@notify_app.command("run")
def run(send: bool = typer.Option(True, help="Send due deliveries (--no-send only plans and assembles)."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Route new events, assemble due digests and send what is due (SMTP, or the outbox folder)."""
    from commonwatch.migrate import is_current

    rt = get_runtime()
    if not is_current(rt.engine):
        from commonwatch.cli import fail

        fail("the database schema is not current; run: commonwatch db upgrade")
    report = notifier_for(rt).run(send=send).as_dict()
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"events read {report['events']}, routed {report['routed']}, warned {report['warned']}, "
               f"repeats {report['repeats']}, suppressed {report['suppressed']}")
    typer.echo(f"deliveries made {report['deliveries']}; sent {report['sent']}, to retry {report['retry']}, "
               f"held {report['held']}, dead {report['dead']}")


def _keyring(rt):
    from commonwatch.notify.pgp import Keyring, PgpError, default_home

    try:
        return Keyring(default_home(rt.settings), rt.clock)
    except PgpError as exc:
        from commonwatch.cli import fail

        fail(str(exc))


@key_app.command("init")
def key_init(name: str = typer.Option(None, help="Name on the key (default: the centre's name)."),
             email: str = typer.Option(None, help="Address on the key (default: mail_from)."),
             expire: str = typer.Option("2y", help="Validity, e.g. 2y, 365d, or 0 for none."),
             force: bool = typer.Option(False, help="Create a new key even if one exists.")) -> None:
    """Create the centre's signing key (Ed25519, with a Curve25519 encryption subkey)."""
    from commonwatch.access import audit

    rt = get_runtime()
    keyring = _keyring(rt)
    existing = keyring.centre_key()
    if existing is not None and not force:
        typer.echo(f"the centre already has a key: {existing.fingerprint} (use --force for a new one)", err=True)
        typer.echo(existing.fingerprint)
        return
    fpr = keyring.generate_centre_key(name or rt.settings.centre_name, email or rt.settings.mail_from, expire)
    with rt.session("cli") as session:
        audit.record(session, "notify.key.create", "notify_key", fpr[-16:], after={"fingerprint": fpr})
    typer.echo(fpr)


@key_app.command("import")
def key_import(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Import the centre's existing secret key (ASCII-armoured, without passphrase)."""
    from commonwatch.access import audit
    from commonwatch.notify.pgp import PgpError

    rt = get_runtime()
    try:
        fpr = _keyring(rt).import_secret_key(path.read_text(encoding="utf-8"))
    except PgpError as exc:
        from commonwatch.cli import fail

        fail(f"{path}: {exc}")
    with rt.session("cli") as session:
        audit.record(session, "notify.key.import", "notify_key", fpr[-16:], after={"fingerprint": fpr})
    typer.echo(fpr)


@key_app.command("show")
def key_show() -> None:
    """Print the centre's key fingerprint and public key (to publish for recipients)."""
    rt = get_runtime()
    keyring = _keyring(rt)
    key = keyring.centre_key()
    if key is None:
        from commonwatch.cli import fail

        fail("the centre has no key yet; run: commonwatch notify key init")
    typer.echo(f"fingerprint: {key.fingerprint}", err=True)
    typer.echo(keyring.export_public(key.fingerprint))


@notify_app.command("deliveries")
def deliveries(status: str = typer.Option("", help="Only this status (pending, retry, sent, held, dead, ...)."),
               limit: int = typer.Option(50)) -> None:
    """List recent deliveries with their status and last error."""
    from sqlalchemy import select

    from commonwatch.notify.models import Delivery

    rt = get_runtime()
    with rt.session("cli") as session:
        stmt = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(Delivery.status == status)
        for d in session.scalars(stmt):
            typer.echo(f"{d.id}\t{d.status}\t{d.channel}\t{d.address}\t{d.event_count} events\t"
                       f"attempts {d.attempts}\t{d.last_error}")


@notify_app.command("resend")
def resend(delivery_id: int) -> None:
    """Send a held or dead delivery again (to its recipient, or to the organisation's current ones)."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.errors import CommonwatchError
    from commonwatch.notify import services

    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            result = services.resend(session, SYSTEM, delivery_id, rt.clock.now())
    except CommonwatchError as exc:
        from commonwatch.cli import fail

        fail(str(exc))
    typer.echo(result)


def register(root: typer.Typer) -> None:
    root.add_typer(notify_app, name="notify")
