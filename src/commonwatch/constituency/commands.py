"""CLI: ``org import FILE [--partial]``, ``org export [--format csv|json]``, ``org list``."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from commonwatch.access.principal import SYSTEM
from commonwatch.constituency import transfer
from commonwatch.errors import Invalid
from commonwatch.runtime import get_runtime

org_app = typer.Typer(help="The constituency registry.", no_args_is_help=True)


@org_app.command("import")
def org_import(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
               format: str = typer.Option(None, help="csv or json (default: from the name or content)"),
               partial: bool = typer.Option(False, help="Keep the good rows even if some are bad.")) -> None:
    """Import organisations from CSV or JSON. Any bad row: nothing changes, every bad row reported."""
    from commonwatch.cli import fail

    rt = get_runtime()
    raw = path.read_bytes()
    if len(raw) > rt.settings.max_import_bytes:
        fail(f"{path} is larger than the import limit ({rt.settings.max_import_bytes} bytes)")
    try:
        records, errors = transfer.read_file(raw, format, path.name)
    except Invalid as exc:
        fail(f"{path}: {exc}")
    with rt.session("cli") as session:
        report = transfer.import_records(session, records, errors, now=rt.clock.now(), partial=partial,
                                         source=str(path))
    for error in report.errors:
        typer.echo(f"{path}:{error.line}: {error.field}: {error.reason}", err=True)
    if report.applied:
        typer.echo(f"imported {path}: {report.created} created, {report.updated} updated, "
                   f"{len(report.errors)} rejected", err=True)
    else:
        typer.echo(f"nothing imported: {len(report.errors)} bad row(s); fix them or use --partial", err=True)
    if report.errors:
        raise typer.Exit(1)


@org_app.command("export")
def org_export(format: str = typer.Option("json", help="csv or json"),
               output: Path = typer.Option(None, "-o", "--output", help="File to write (default stdout).")) -> None:
    """Export the registry with networks, AS numbers, domains and contacts."""
    rt = get_runtime()
    with rt.session("cli") as session:
        text = transfer.export_csv(session, SYSTEM) if format == "csv" else transfer.export_json(session, SYSTEM)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def register(root: typer.Typer) -> None:
    root.add_typer(org_app, name="org")
