"""CLI: ``datasec scan PATH|DATABASE_URL`` and ``datasec remind``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from commonwatch.errors import CommonwatchError, Invalid
from commonwatch.runtime import get_runtime

datasec_app = typer.Typer(help="Data security: personal-information scans and cross-border reminders.",
                          no_args_is_help=True)


def _is_url(target: str) -> bool:
    return "://" in target and not Path(target).exists()


@datasec_app.command("scan")
def scan(target: str = typer.Argument(..., help="A file (CSV, TSV, JSON, JSON lines, Parquet, XLSX, text, .gz, "
                                                "zip) or a SQLAlchemy database URL."),
         org: int = typer.Option(None, help="Record the findings for this organisation id."),
         asset: int = typer.Option(None, help="Attach the scan to this data asset (with --org)."),
         full: bool = typer.Option(False, help="Database: read every row instead of a sample."),
         sample_rows: int = typer.Option(10_000, help="Database: rows read from each table when sampling."),
         table: list[str] = typer.Option(None, "--table", help="Database: scan only this table (repeatable)."),
         kind: str = typer.Option(None, help="File format if the name does not say: csv, tsv, json, jsonl, "
                                             "parquet, xlsx, text."),
         output: str = typer.Option("table", "--format", help="table or json")) -> None:
    """Find personal information; prints counts and masked samples, never a full identifier."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cli import fail
    from commonwatch.datasec import services as ds
    from commonwatch.datasec.scanner import scan_database, scan_path

    rt = get_runtime()
    today = ds.local_today(rt.clock.now())
    data_dir = rt.settings.data_dir
    try:
        if _is_url(target):
            report = scan_database(target, today=today, data_dir=data_dir, sample_rows=None if full else sample_rows,
                                   tables=table or None)
        else:
            path = Path(target)
            if not path.is_file():
                fail(f"{target}: no such file (a database is given as a URL, e.g. postgresql://host/db)")
            report = scan_path(path, today=today, data_dir=data_dir, kind=kind)
    except Invalid as exc:
        fail(str(exc))
    except MemoryError:
        fail(f"{target}: ran out of memory")
    scan_id = None
    if org is not None:
        try:
            with rt.session("cli") as session:
                scan_id = ds.record_scan(session, SYSTEM, org, report, rt.clock.now(), asset_id=asset,
                                         data_dir=data_dir).id
        except CommonwatchError as exc:
            fail(f"the scan was not recorded: {exc}")
    if output == "json":
        sys.stdout.write(json.dumps({**report.as_dict(), "scan_id": scan_id}, ensure_ascii=False, indent=2) + "\n")
        return
    _print(report, scan_id)


def _print(report, scan_id: int | None) -> None:
    out = Console()
    out.print(f"{report.source}: {report.rows:,} rows in {len(report.parts)} part(s)"
              + (" (sampled)" if report.sampled else ""), highlight=False)
    if not report.confirmed:
        out.print("no personal information found", highlight=False)
    else:
        t = Table(show_lines=False)
        for col in ("part", "field", "detector", "count", "rows", "share", "confidence", "sensitive (PIPL 28)",
                    "masked samples"):
            t.add_column(col)
        for f in report.confirmed:
            t.add_row(f.part, f.field, f.detector, f"{f.count:,}", f"{f.rows:,}", f"{f.share:.1%}",
                      f"{f.confidence:.2f}", (f.sensitive_category or "") + (
                          f" (+{f.minors:,} under 14)" if f.minors else ""), ", ".join(f.samples))
        out.print(t)
    if report.possible:
        out.print("possible matches (failed their check digit; not counted as personal information):",
                  highlight=False)
        for f in report.possible:
            out.print(f"  {f.part} {f.field} {f.detector}: {f.count:,} ({', '.join(f.samples)})", highlight=False)
    if scan_id:
        out.print(f"recorded as scan {scan_id}", highlight=False)


@datasec_app.command("remind")
def remind() -> None:
    """Make the due reminders about security-assessment validity and extension windows (the job, once)."""
    from commonwatch.datasec import services as ds

    rt = get_runtime()
    with rt.session("datasec-reminders") as session:
        made = ds.run_reminders(session, ds.local_today(rt.clock.now()), rt.settings.data_dir)
    typer.echo(f"{made} reminder(s) made")


def register(root: typer.Typer) -> None:
    root.add_typer(datasec_app, name="datasec")
