"""CLI: ``cooperation partners export|import``, ``cooperation requests list|show|status|record``,
``cooperation remind`` and ``cooperation counts``. Request commands act as a named user, so need-to-know
and the audit log apply to the command line as to the pages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from commonwatch.errors import CommonwatchError
from commonwatch.runtime import get_runtime

coop_app = typer.Typer(help="International cooperation: partner CERTs and assistance requests.", no_args_is_help=True)
partners_app = typer.Typer(help="The partner directory.", no_args_is_help=True)
requests_app = typer.Typer(help="Cybercrime-assistance requests (need-to-know).", no_args_is_help=True)
coop_app.add_typer(partners_app, name="partners")
coop_app.add_typer(requests_app, name="requests")


def _principal(session, email: str):
    from sqlalchemy import select

    from commonwatch.access.models import User
    from commonwatch.access.principal import Principal, Role
    from commonwatch.cli import fail

    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        fail(f"{email}: no such active user")
    return Principal(user_id=user.id, email=user.email, role=Role(user.role), via="cli")


@partners_app.command("export")
def partners_export(fmt: str = typer.Option("json", "--format", help="json or csv"),
                    output: Path = typer.Option(None, "--output", "-o",
                                                help="File to write (default stdout).")) -> None:
    """Write the directory as JSON (with agreements) or spreadsheet-safe CSV."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cli import fail
    from commonwatch.cooperation import services as coop
    from commonwatch.exports import csv_text

    if fmt not in ("json", "csv"):
        fail("--format must be json or csv")
    rt = get_runtime()
    with rt.session("cli") as session:
        records = coop.export_records(session, SYSTEM)
    text = (csv_text(coop.EXPORT_FIELDS, coop.export_csv_rows(records)) if fmt == "csv"
            else json.dumps({"items": records}, ensure_ascii=False, indent=1) + "\n")
    if output:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(records)} partner(s) written to {output}")
    else:
        sys.stdout.write(text)


@partners_app.command("import")
def partners_import(path: Path = typer.Argument(..., help="A .json or .csv file in the export's shape.")) -> None:
    """Create or update partners by name and country; all or nothing."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cli import fail
    from commonwatch.cooperation import services as coop
    from commonwatch.textio import decode_bytes

    if not path.is_file():
        fail(f"{path}: no such file")
    rt = get_runtime()
    try:
        fmt = "json" if path.suffix.lower() == ".json" else "csv"
        records = coop.parse_import(decode_bytes(path.read_bytes()), fmt)
        with rt.session("cli") as session:
            result = coop.import_records(session, SYSTEM, records, coop.local_today(rt.clock.now()))
    except CommonwatchError as exc:
        fail(f"{path}: {exc}")
    typer.echo(f"{result['created']} created, {result['updated']} updated")


@coop_app.command("remind")
def remind() -> None:
    """Make the due agreement-renewal reminders (the job, once)."""
    from commonwatch.cooperation import services as coop

    rt = get_runtime()
    with rt.session("cooperation-renewals") as session:
        made = coop.run_renewal_reminders(session, coop.local_today(rt.clock.now()), rt.settings.data_dir)
    typer.echo(f"{made} reminder(s) made")


@coop_app.command("counts")
def counts(year: int = typer.Option(None), period: str = typer.Option("month", help="month or year")) -> None:
    """Cross-border exchanges and assistance requests by country, kind and outcome (JSON)."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cli import fail
    from commonwatch.cooperation import services as coop

    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            out = coop.counts(session, SYSTEM, year=year, period=period)
    except CommonwatchError as exc:
        fail(str(exc))
    sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=1) + "\n")


@requests_app.command("list")
def requests_list(as_user: str = typer.Option(..., "--as", help="The e-mail of the coordinator or admin acting."),
                  status: str = typer.Option(None)) -> None:
    """The requests this user may see (the listing is audited)."""
    from commonwatch.cooperation import services as coop

    rt = get_runtime()
    with rt.session("cli") as session:
        principal = _principal(session, as_user)
        session.info["actor"] = principal.actor
        for r in coop.list_requests(session, principal, status=status):
            typer.echo(f"{r.ref}\t{r.direction}\t{r.country}\t{r.kind}\t{r.status}\t{r.deadline or '-'}\t{r.subject}")


@requests_app.command("status")
def requests_status(ref: str, status: str, as_user: str = typer.Option(..., "--as"),
                    reason: str = typer.Option("", help="Required to decline."), ground: str = typer.Option(""),
                    note: str = typer.Option("")) -> None:
    """Move a request on in its workflow."""
    from sqlalchemy import select

    from commonwatch.cli import fail
    from commonwatch.cooperation import services as coop
    from commonwatch.cooperation.models import AssistanceRequest

    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            principal = _principal(session, as_user)
            session.info["actor"] = principal.actor
            rid = session.scalar(select(AssistanceRequest.id).where(AssistanceRequest.ref == ref))
            req = coop.get_request(session, principal, rid)
            coop.transition(session, principal, req, status, rt.clock.now(), note=note, reason=reason, ground=ground,
                            data_dir=rt.settings.data_dir)
            typer.echo(f"{req.ref}: {req.status}")
    except CommonwatchError as exc:
        fail(f"{ref}: {exc}" if str(exc) else f"{ref}: not found")


@requests_app.command("record")
def requests_record(ref: str, output: Path = typer.Option(..., "--output", "-o"),
                    as_user: str = typer.Option(..., "--as")) -> None:
    """Write the bilingual PDF record of a request (the view is audited)."""
    from sqlalchemy import select

    from commonwatch.cli import fail
    from commonwatch.cooperation import services as coop
    from commonwatch.cooperation.models import AssistanceRequest

    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            principal = _principal(session, as_user)
            session.info["actor"] = principal.actor
            rid = session.scalar(select(AssistanceRequest.id).where(AssistanceRequest.ref == ref))
            req = coop.get_request(session, principal, rid)
            pdf = coop.request_record(req, coop.assignees(session, req), coop.request_rules(rt.settings.data_dir),
                                      rt.clock.now())
    except CommonwatchError as exc:
        fail(f"{ref}: {exc}" if str(exc) else f"{ref}: not found")
    output.write_bytes(pdf)
    typer.echo(f"{ref}: record written to {output}")


def register(root: typer.Typer) -> None:
    root.add_typer(coop_app, name="cooperation")
