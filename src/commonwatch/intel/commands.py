"""CLI: ``intel import FILE``, ``intel export``, ``intel events`` (promotion and sightings now),
``intel poll`` (partners' TAXII collections and MISP instances now)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from commonwatch.access.principal import SYSTEM
from commonwatch.errors import Invalid
from commonwatch.runtime import get_runtime

intel_app = typer.Typer(help="Intelligence exchange: STIX 2.1, TAXII 2.1, MISP.", no_args_is_help=True)


@intel_app.command("import")
def intel_import(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
                 format: str = typer.Option("stix", help="stix (a STIX 2.1 bundle) or misp (MISP event JSON)"),
                 tlp: str = typer.Option("AMBER", help="TLP for objects that carry no marking")) -> None:
    """Import a file; good objects are kept, every bad one is reported with its reason (exit 1)."""
    from commonwatch.cli import fail
    from commonwatch.intel import exchange, services
    from commonwatch.intel import tlp as tlpmod

    rt = get_runtime()
    raw = path.read_bytes()
    if len(raw) > rt.settings.max_import_bytes:
        fail(f"{path} is larger than the import limit ({rt.settings.max_import_bytes} bytes)")
    try:
        label = tlpmod.normalise(tlp)
    except ValueError:
        fail(f"--tlp must be one of {', '.join(tlpmod.LEVELS)}")
    origin = services.Origin(f"cli:{path.name}"[:200], None, None, default_tlp=label, may_update_any=True)
    unmapped: list = []
    try:
        with rt.session("cli") as session:
            if format == "misp":
                report, unmapped = exchange.import_misp_json(session, raw, origin, rt.clock.now())
            else:
                report = services.import_bundle(session, raw, origin, rt.clock.now(), rt.settings.data_dir)
    except Invalid as exc:
        fail(f"{path}: {exc}")
    for r in report.results:
        if r.status == "failed":
            typer.echo(f"{path}: object {r.index + 1} {r.stix_id or ''}: {r.reason}", err=True)
        elif r.unmapped:
            typer.echo(f"{path}: object {r.index + 1} {r.stix_id}: kept, not mapped: {', '.join(r.unmapped)}",
                       err=True)
    for u in unmapped:
        typer.echo(f"{path}: MISP attribute {u['uuid']} ({u['type']}) not imported: {u['reason']}", err=True)
    typer.echo(f"{path}: {report.count('added')} added, {report.count('unchanged')} already held, "
               f"{report.count('failed')} refused", err=True)
    if report.failures:
        raise typer.Exit(1)


@intel_app.command("export")
def intel_export(format: str = typer.Option("stix", help="stix, misp or csv"),
                 q: str = typer.Option("", help="Search text"), status: str = typer.Option("", help="live|expired"),
                 output: Path = typer.Option(None, "-o", "--output", help="File to write (default stdout).")) -> None:
    """Export indicators (as the centre sees them; TLP:RED only reaches named people, so not here)."""
    from commonwatch.exports import csv_text
    from commonwatch.intel import exchange, services

    rt = get_runtime()
    now = rt.clock.now()
    with rt.session("cli") as session:
        rows = services.indicator_rows_for_export(session, SYSTEM, services.IndicatorFilter(q=q, status=status), now)
        if format in ("stix", "misp"):  # files for sharing: what decay has expired stays out
            rows = services.unexpired(session, rows, now, rt.settings.data_dir)
        if format == "csv":
            text = csv_text(services.CSV_HEADER, services.csv_rows(rows))
        elif format == "misp":
            text = json.dumps({"Event": json.loads(exchange.misp_event(session, rows, info="commonwatch export",
                                                                       now=now).to_json())}, ensure_ascii=False)
        else:
            centre = services.centre(session, rt.settings)
            text = json.dumps(services.export_bundle(session, SYSTEM, [r.stix_id for r in rows], centre=centre),
                              ensure_ascii=False, indent=1)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@intel_app.command("events")
def intel_events() -> None:
    """Promote events to indicators by rule and record sightings, from the stored watermark on."""
    from commonwatch.intel.jobs import process_events

    rt = get_runtime()
    result = process_events(rt.sessionmaker, rt.settings, rt.clock)
    typer.echo(f"{result.events} events, {result.promoted} indicators promoted, {result.sightings} sightings; "
               f"watermark {result.watermark}", err=True)


@intel_app.command("poll")
def intel_poll() -> None:
    """Poll every partner TAXII collection and MISP instance that is due."""
    from commonwatch.intel.exchange import poll_due

    rt = get_runtime()
    for name, result in poll_due(rt.sessionmaker, rt.settings, rt.clock).items():
        typer.echo(f"{name}: {result}", err=True)


lists_app = typer.Typer(help="Warning lists of known benign values (MISP warninglist JSON or one per line).",
                        no_args_is_help=True)
intel_app.add_typer(lists_app, name="warninglists")


@lists_app.command("load")
def warninglists_load(path: Path = typer.Argument(..., help="a MISP warninglist .json, or a plain list"),
                      type: str = typer.Option("", help="for a plain list: string, cidr, hostname, substring, regex"),
                      name: str = typer.Option("", help="the list's name (default: the file's, or its stem)")) -> None:
    """Check a list file and store it in <data dir>/warninglists (a list of the same name is replaced)."""
    from commonwatch.access import audit
    from commonwatch.cli import fail
    from commonwatch.intel import warninglists

    rt = get_runtime()
    try:
        meta = warninglists.load_file(path, rt.settings.data_dir, rt.clock.now(), name=name or None, kind=type or None)
    except Invalid as exc:
        fail(f"{path}: {exc}")
    with rt.session("cli") as session:
        audit.record(session, "intel.warninglist.load", "warninglists", meta.name,
                     after={"type": meta.type, "entries": meta.entries, "version": meta.version, "source": meta.source})
    typer.echo(f"{meta.name}: {meta.entries} {meta.type} entries (version {meta.version})")


@lists_app.command("list")
def warninglists_list() -> None:
    """The stored lists: name, type, entries, version, when loaded."""
    from commonwatch.intel import warninglists

    rt = get_runtime()
    for w in warninglists.stored(rt.settings.data_dir):
        typer.echo(f"{w.name}\t{w.type}\t{w.entries}\tv{w.version}\t{w.loaded_at}")


@lists_app.command("remove")
def warninglists_remove(name: str) -> None:
    """Remove a stored list."""
    from commonwatch.access import audit
    from commonwatch.cli import fail
    from commonwatch.intel import warninglists

    rt = get_runtime()
    if not warninglists.remove(rt.settings.data_dir, name):
        fail(f"no warning list named {name}")
    with rt.session("cli") as session:
        audit.record(session, "intel.warninglist.remove", "warninglists", name)
    typer.echo(f"removed {name}")


def register(root: typer.Typer) -> None:
    root.add_typer(intel_app, name="intel")
