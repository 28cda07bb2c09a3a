"""CLI: ``commonwatch events ...``. ``events export`` writes a filtered selection as CSV, JSON,
JSON lines or IntelMQ JSON lines. Other event commands join :data:`events_app`."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import typer

from commonwatch.access.principal import SYSTEM
from commonwatch.errors import Invalid
from commonwatch.events import export, search
from commonwatch.events.store import StreamState
from commonwatch.i18n import _
from commonwatch.runtime import get_runtime

#: The ``events`` command group; other capabilities' event commands (``rematch``) add themselves here.
events_app = typer.Typer(help="Security events: search, export, re-processing.", no_args_is_help=True)


@events_app.command("export")
def events_export(
    format: str = typer.Option("csv", "--format", "-f", help="csv, json, jsonl or intelmq"),
    output: Path = typer.Option(None, "-o", "--output", help="File to write (default: standard output).",
                                dir_okay=False),
    time_from: str = typer.Option(None, "--from", help="Earliest time.source, ISO 8601 (no offset: UTC)."),
    time_to: str = typer.Option(None, "--to", help="Latest time.source, exclusive; a bare date includes it."),
    org: str = typer.Option(None, help="Organisation id, or none for unmatched events."),
    sector: str = typer.Option(None, help="constituent.sector"),
    cii: str = typer.Option(None, help="true or false"),
    type_: str = typer.Option(None, "--type", help="classification.type"),
    taxonomy: str = typer.Option(None, help="classification.taxonomy"),
    feed: str = typer.Option(None, help="feed.name; a trailing * matches a prefix"),
    ip: str = typer.Option(None, help="An address or a network (CIDR), IPv4 or IPv6."),
    asn: str = typer.Option(None, help="source.asn"),
    country: str = typer.Option(None, help="source.geolocation.cc"),
    severity: str = typer.Option(None, help="Exactly this severity."),
    min_severity: str = typer.Option(None, "--min-severity", help="This severity or a higher one."),
    tlp: str = typer.Option(None, help="TLP 2.0 label."),
) -> None:
    """Export events matching the filters. The export is recorded in the audit log."""
    from commonwatch.cli import fail

    rt = get_runtime()
    params = {"from": time_from, "to": time_to, "org": org, "sector": sector, "cii": cii, "type": type_,
              "taxonomy": taxonomy, "feed": feed, "ip": ip, "asn": asn, "country": country,
              "severity": severity, "min_severity": min_severity, "tlp": tlp}
    try:
        f = search.parse_filter(params)
        with rt.session("cli") as session:
            prepared = export.prepare(session, rt.engine, SYSTEM, f, format,
                                      max_rows=rt.settings.events_export_max_rows)
    except Invalid as exc:
        fail("; ".join((f"--{e.field.replace('_', '-')}: " if e.field in params or e.field == "format" else "")
                       + e.reason for e in exc.errors))
    state = StreamState()
    if output is None:
        for chunk in prepared.stream(state):
            sys.stdout.write(chunk)
        sys.stdout.flush()
    else:
        _write_atomically(output, prepared.stream(state))
    target = output or "standard output"
    typer.echo(f"exported {state.rows:,} event(s) as {prepared.format} to {target}", err=True)


@events_app.command("migrate-store")
def events_migrate_store(
    batch_rows: int = typer.Option(100_000, "--batch-rows", min=1, help="Events per committed batch."),
    to: str = typer.Option("parquet", "--to", help="The store to fill: parquet (event_store_dir) or clickhouse "
                                                  "(clickhouse_url, else chDB under event_store_dir)."),
) -> None:
    """Move the events table into the Parquet or the ClickHouse store, ids kept, in id order.

    Resumable: run it again after an interruption and it goes on where it stopped. At the end the
    counts of the table and the store are compared, in total and per day; a difference exits 1.
    The run is recorded in the audit log."""
    from commonwatch.access.audit import record
    from commonwatch.cli import fail
    from commonwatch.events.migrate import move_events
    from commonwatch.events.store import event_store

    rt = get_runtime()
    try:
        source = event_store(rt.engine, "sql", rt.settings)
        if to not in ("parquet", "clickhouse"):
            raise Invalid("to", _("“{value}” is not one of: {choices}").format(value=to, choices="parquet, clickhouse"))
        target = event_store(rt.engine, to, rt.settings)
        result = move_events(source, target, batch_rows=batch_rows, on_batch=lambda r, last: typer.echo(
            _("stored {moved:,} event(s), up to id {last}").format(moved=r.moved, last=last), err=True))
    except Invalid as exc:
        fail("; ".join(e.reason for e in exc.errors))
    with rt.session("cli") as session:
        record(session, "events.migrate-store", "events", "", after={
            "target": str(target.location), "kind": target.name, "resumed_after": result.resumed_after,
            "moved": result.moved,
            "batches": result.batches, "table": result.source_total, "store": result.target_total,
            "days": result.days, "day_mismatches": [list(m) for m in result.day_mismatches]})
    typer.echo(_("events in the table: {table:,}; in the store: {store:,}; over {days} day(s)").format(
        table=result.source_total, store=result.target_total, days=result.days))
    if not result.matches:
        for day, table, store in result.day_mismatches:
            typer.echo(_("{day}: {table:,} in the table, {store:,} in the store").format(
                day=day, table=table, store=store), err=True)
        fail(_("the counts differ: the table holds {table:,} event(s), the store {store:,}").format(
            table=result.source_total, store=result.target_total))
    typer.echo(_("moved {moved:,} event(s) this run; the counts match").format(moved=result.moved))


@events_app.command("retention")
def events_retention(
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be dropped; change nothing."),
) -> None:
    """Drop events older than ``event_retention_days`` a whole day at a time; events linked to an
    incident are kept. The run is recorded in the audit log."""
    from commonwatch.events.retention import apply_retention
    from commonwatch.events.store import event_store

    rt = get_runtime()
    with rt.session("cli") as session:
        result = apply_retention(session, event_store(session, settings=rt.settings), now=rt.clock.now(),
                                 retention_days=rt.settings.event_retention_days, dry_run=dry_run)
    for d in result.days:
        typer.echo(_("{day}: {dropped:,} dropped, {kept:,} kept (linked to an incident)").format(
            day=d.day, dropped=d.dropped, kept=d.kept))
    summary = (_("would drop {dropped:,} event(s) before {cutoff} (dry run)") if dry_run
               else _("dropped {dropped:,} event(s) before {cutoff}"))
    typer.echo(summary.format(dropped=result.dropped, cutoff=result.cutoff.isoformat()))


def _write_atomically(path: Path, chunks) -> None:
    """Write beside the target and rename at the end: a failed export leaves no half-written file."""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(root: typer.Typer) -> None:
    root.add_typer(events_app, name="events")
