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
from commonwatch.events.schema import FIELDS
from commonwatch.events.store import DIMENSIONS, StreamState, event_store
from commonwatch.i18n import _
from commonwatch.runtime import get_runtime
from commonwatch.terminal import TIME_RULE, print_table, show_time

#: The ``events`` command group; other capabilities' event commands (``rematch``) add themselves here.
events_app = typer.Typer(help="Security events: search, export, re-processing.", no_args_is_help=True)


# The page's filters, one definition for every command that selects events.
FROM = typer.Option(None, "--from", help="Earliest time.source, ISO 8601.")
TO = typer.Option(None, "--to", help="Latest time.source, exclusive; a bare date includes it.")
ORG = typer.Option(None, "--org", help="Organisation id, or none for unmatched events.")
SECTOR = typer.Option(None, "--sector", help="constituent.sector")
CII = typer.Option(None, "--cii", help="true or false")
TYPE = typer.Option(None, "--type", help="classification.type")
TAXONOMY = typer.Option(None, "--taxonomy", help="classification.taxonomy")
FEED = typer.Option(None, "--feed", help="feed.name; a trailing * matches a prefix")
IP = typer.Option(None, "--ip", help="An address or a network (CIDR), IPv4 or IPv6.")
ASN = typer.Option(None, "--asn", help="source.asn")
COUNTRY = typer.Option(None, "--country", help="source.geolocation.cc")
SEVERITY = typer.Option(None, "--severity", help="Exactly this severity.")
MIN_SEVERITY = typer.Option(None, "--min-severity", help="This severity or a higher one.")
TLP = typer.Option(None, "--tlp", help="TLP 2.0 label.")


def _filter(rt, params: dict[str, str | None], *extra_fields: str) -> search.EventFilter:
    """The filter of ``params`` (the page's parameter names); naive times in the installation's
    zone (:data:`terminal.TIME_RULE`). A bad value fails naming its option."""
    from commonwatch.cli import fail

    try:
        return search.parse_filter(params, naive_zone=rt.settings.timezone)
    except Invalid as exc:
        fail(_option_errors(exc, params, *extra_fields))
        raise  # unreachable: fail exits


def _option_errors(exc: Invalid, params: dict[str, str | None], *extra_fields: str) -> str:
    return "; ".join((f"--{e.field.replace('_', '-')}: " if e.field in params or e.field in extra_fields else "")
                     + e.reason for e in exc.errors)


def _params(time_from, time_to, org, sector, cii, type_, taxonomy, feed, ip, asn, country, severity,
            min_severity, tlp) -> dict[str, str | None]:
    return {"from": time_from, "to": time_to, "org": org, "sector": sector, "cii": cii, "type": type_,
            "taxonomy": taxonomy, "feed": feed, "ip": ip, "asn": asn, "country": country,
            "severity": severity, "min_severity": min_severity, "tlp": tlp}


@events_app.command("export", epilog=TIME_RULE)
def events_export(
    format: str = typer.Option("csv", "--format", "-f", help="csv, json, jsonl or intelmq"),
    output: Path = typer.Option(None, "-o", "--output", help="File to write (default: standard output).",
                                dir_okay=False),
    time_from: str = FROM, time_to: str = TO, org: str = ORG, sector: str = SECTOR, cii: str = CII,
    type_: str = TYPE, taxonomy: str = TAXONOMY, feed: str = FEED, ip: str = IP, asn: str = ASN,
    country: str = COUNTRY, severity: str = SEVERITY, min_severity: str = MIN_SEVERITY, tlp: str = TLP,
) -> None:
    """Export events matching the filters. The export is recorded in the audit log."""
    from commonwatch.cli import fail

    rt = get_runtime()
    params = _params(time_from, time_to, org, sector, cii, type_, taxonomy, feed, ip, asn, country, severity,
                     min_severity, tlp)
    f = _filter(rt, params, "format")
    try:
        with rt.session("cli") as session:
            prepared = export.prepare(session, rt.engine, SYSTEM, f, format,
                                      max_rows=rt.settings.events_export_max_rows)
    except Invalid as exc:
        fail(_option_errors(exc, params, "format"))
    state = StreamState()
    if output is None:
        for chunk in prepared.stream(state):
            sys.stdout.write(chunk)
        sys.stdout.flush()
    else:
        _write_atomically(output, prepared.stream(state))
    target = output or "standard output"
    typer.echo(f"exported {state.rows:,} event(s) as {prepared.format} to {target}", err=True)


#: The columns ``events search`` shows: what the events page shows.
SEARCH_COLUMNS = ("id", "time.source", "classification.type", "source.ip", "source.port", "source.asn",
                  "source.geolocation.cc", "source.fqdn", "feed.name", "severity", "constituent.org_id")


@events_app.command("search", epilog=TIME_RULE)
def events_search(
    limit: int = typer.Option(50, "--limit", min=1, max=search.MAX_PAGE_SIZE, help="Events per page."),
    cursor: str = typer.Option(None, "--cursor", help="Go on after this cursor (printed by the page before)."),
    sort: str = typer.Option(None, "--sort", help="Order by one of: " + ", ".join(search.SORT_KEYS)
                             + " (default time; severity and tlp by rank, org by organisation id, source by "
                             "address; ties by id)."),
    direction: str = typer.Option(None, "--dir", help="desc (default: newest or largest first) or asc."),
    time_from: str = FROM, time_to: str = TO, org: str = ORG, sector: str = SECTOR, cii: str = CII,
    type_: str = TYPE, taxonomy: str = TAXONOMY, feed: str = FEED, ip: str = IP, asn: str = ASN,
    country: str = COUNTRY, severity: str = SEVERITY, min_severity: str = MIN_SEVERITY, tlp: str = TLP,
) -> None:
    """One page of events matching the filters, newest first or in the order of --sort, as the
    events page shows them; the count and the next page's cursor go to standard error (a cursor
    continues the order it was printed in: give the same --sort and --dir)."""
    from commonwatch.cli import fail

    rt = get_runtime()
    f = _filter(rt, _params(time_from, time_to, org, sector, cii, type_, taxonomy, feed, ip, asn, country,
                            severity, min_severity, tlp))
    try:
        order = search.parse_sort(sort, direction)
        with rt.session("cli") as session:
            page = event_store(session).search_page(SYSTEM, f, limit=limit, after=cursor or None, sort=order)
    except Invalid as exc:
        fail(_option_errors(exc, {"cursor": cursor, "sort": sort, "dir": direction}))
    columns = {f.name: f.column for f in FIELDS} | {"id": "id"}
    tz = rt.settings.timezone
    rows = ([show_time(getattr(e, columns[name]), tz) if name == "time.source" else getattr(e, columns[name])
             for name in SEARCH_COLUMNS] for e in page.items)
    print_table(SEARCH_COLUMNS, rows)
    total = f"{page.total:,}" if page.total_exact else f"more than {page.total:,}"
    typer.echo(f"{total} event(s) match" + (f"; next page: --cursor {page.next_cursor}" if page.next_cursor
                                              else ""), err=True)


@events_app.command("count", epilog=TIME_RULE)
def events_count(
    by: str = typer.Option("type", "--by", help="Comma-separated: hour, day and any of "
                           + ", ".join(DIMENSIONS) + "."),
    time_from: str = FROM, time_to: str = TO, org: str = ORG, sector: str = SECTOR, cii: str = CII,
    type_: str = TYPE, taxonomy: str = TAXONOMY, feed: str = FEED, ip: str = IP, asn: str = ASN,
    country: str = COUNTRY, severity: str = SEVERITY, min_severity: str = MIN_SEVERITY, tlp: str = TLP,
) -> None:
    """Events matching the filters counted per value of ``--by``, largest first (hour and day
    buckets are UTC, as the statistics keep them)."""
    from commonwatch.cli import fail

    rt = get_runtime()
    f = _filter(rt, _params(time_from, time_to, org, sector, cii, type_, taxonomy, feed, ip, asn, country,
                            severity, min_severity, tlp))
    keys = [k.strip() for k in by.split(",") if k.strip()]
    try:
        with rt.session("cli") as session:
            counted = event_store(session).counts(SYSTEM, keys, f=f)
    except Invalid as exc:
        fail(_option_errors(exc, {"by": by}))
    print_table([*keys, "events"], ([*row.key, row.count] for row in counted))


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
