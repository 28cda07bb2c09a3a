"""CLI: ``cii systems``, ``cii due``, ``cii remind``, ``cii import FILE --org N`` and ``cii export``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from commonwatch.errors import CommonwatchError
from commonwatch.runtime import get_runtime

cii_app = typer.Typer(help="CII protection: operators' systems, supervision due dates, asset inventory.",
                      no_args_is_help=True)


@cii_app.command("systems")
def systems(org: int = typer.Option(None, help="Only this organisation id.")) -> None:
    """List CII systems with their next MLPS assessment and inspection."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cii import services as cii
    from commonwatch.cii.supervision import due_items, load_supervision_rules

    rt = get_runtime()
    rules, today = load_supervision_rules(rt.settings.data_dir), cii.local_today(rt.clock.now())
    table = Table("id", "org", "system", "MLPS", "next assessment", "next inspection")
    with rt.session("cli") as session:
        for s in cii.list_systems(session, SYSTEM, org):
            due = due_items(s, today, rules)
            cells = [f"{d.state} {d.due_on or ''}".strip() for d in (due["mlps"], due["inspection"])]
            table.add_row(str(s.id), str(s.org_id), s.name, str(s.mlps_level), *cells)
    Console().print(table)


@cii_app.command("due")
def due() -> None:
    """Supervision items needing action (overdue, undated, due soon); exit status 1 if any is overdue."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cii import services as cii

    rt = get_runtime()
    with rt.session("cli") as session:
        items = cii.due_overview(session, SYSTEM, cii.local_today(rt.clock.now()), data_dir=rt.settings.data_dir,
                                 only_action=True)
        for r in items:
            d = r["due"]
            typer.echo(f"{d.state}\t{d.due_on or '-'}\t{d.kind}\t{r['system'].id}\t{r['system'].name} ({d.status})")
    if any(r["due"].state == "overdue" for r in items):
        raise typer.Exit(1)


@cii_app.command("remind")
def remind() -> None:
    """Make today's supervision reminders and mail them (what the server's job does)."""
    from commonwatch.cii.jobs import remind as run
    from commonwatch.notify.commands import notifier_for

    rt = get_runtime()
    state = type("State", (), {"settings": rt.settings, "sessionmaker": rt.sessionmaker, "clock": rt.clock,
                               "jinja": notifier_for(rt).env})()
    typer.echo(run(state))


@cii_app.command("import")
def import_file(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
                org: int = typer.Option(..., help="Organisation id the assets belong to."),
                system: int = typer.Option(None, help="System id (of that organisation)."),
                fmt: str = typer.Option("", "--format",
                                        help="csv, cyclonedx, spdx or nmap (guessed if omitted).")) -> None:
    """Import an inventory file; bad rows are quarantined and listed, a bad file is refused whole."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cii import services as cii
    from commonwatch.cli import fail

    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            batch = cii.import_assets(session, SYSTEM, org, fmt, path.read_bytes(), system_id=system,
                                      filename=path.name, now=rt.clock.now())
            typer.echo(f"import {batch.id}: {batch.added} added, {batch.unchanged} unchanged, "
                       f"{batch.quarantined} quarantined")
            for r in batch.bad_rows:
                typer.echo(f"  {r.location}\t{r.field}\t{r.reason}", err=True)
    except CommonwatchError as exc:
        fail(f"{path}: {exc}")


@cii_app.command("export")
def export(org: int = typer.Option(None, help="Only this organisation id.")) -> None:
    """Write the asset inventory as CSV to standard output."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cii import services as cii
    from commonwatch.exports import write_csv

    rt = get_runtime()
    with rt.session("cli") as session:
        write_csv(sys.stdout, cii.ASSET_EXPORT_COLUMNS, cii.export_rows(session, SYSTEM, cii.AssetFilter(org_id=org)))


def register(root: typer.Typer) -> None:
    root.add_typer(cii_app, name="cii")
