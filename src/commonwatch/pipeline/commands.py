"""CLI: ``ingest PATH|URL --feed NAME``, ``worker``, ``events rematch --since``."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from commonwatch.errors import Invalid
from commonwatch.runtime import get_runtime

console = Console(stderr=True)


def _window(hours: float) -> timedelta:
    return timedelta(hours=hours)


def ingest(target: str = typer.Argument(..., help="A file, a folder, or an http(s) URL."),
           feed: str = typer.Option(..., "--feed", "-f", help="Feed name (see: commonwatch feeds list)."),
           window_hours: float = typer.Option(24.0, help="Deduplication window: the same observation within "
                                                         "one window is one event (0 = exact time)."),
           broker: str = typer.Option("", help="amqp://... to hand batches to workers (default: in-process, "
                                               "or COMMONWATCH_BROKER_URL)."),
           queue: str = typer.Option("commonwatch.batches", help="Queue the workers consume (with --broker).")
           ) -> None:
    """Ingest a feed file, folder or URL: parse, normalise, validate, deduplicate, enrich, match,
    classify and store, with a progress line and a summary."""
    from commonwatch.cli import fail
    from commonwatch.feeds.collect import fetch_url, sources_from_path
    from commonwatch.feeds.registry import get_parser
    from commonwatch.outbound import Policy
    from commonwatch.pipeline.runner import ingest_sources

    rt = get_runtime()
    _yield_cores(rt.settings)
    try:
        parser = get_parser(feed, rt.settings.data_dir)
    except Invalid as exc:
        fail(str(exc))
    body: Path | None = None
    if target.startswith(("http://", "https://")):
        try:
            result = fetch_url(target, Policy.of(rt.settings))
        except Invalid as exc:
            fail(str(exc))
        body = result.body
        path = body
    else:
        path = Path(target)
        if not path.exists():
            fail(f"{target} does not exist")
    try:
        limit = rt.settings.outbound_max_bytes if body else None
        sources = _named(sources_from_path(path, rt.clock.now(), limit=limit), target if body else None)
        broker_url = broker or (rt.settings.broker_url if rt.settings.broker_url.startswith("amqp") else "")
        if broker_url:
            _publish(rt, parser, sources, feed, target, broker_url, queue)
            return
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                      transient=True) as bar:
            task = bar.add_task(f"{feed}: starting")

            def show(p) -> None:
                bar.update(task, description=f"{feed}: {p.rows:,} rows, {p.rate:,.0f} rows/s, "
                                             f"{p.stored:,} stored, {p.quarantined:,} quarantined")
            summary = ingest_sources(rt.engine, rt.sessionmaker, sources, parser, feed_label=feed, source_label=target,
                                     clock=rt.clock, data_dir=rt.settings.data_dir, actor=_actor(),
                                     dedup_window=_window(window_hours), on_progress=show)
    finally:
        if body is not None:
            body.unlink(missing_ok=True)
    _print_summary(summary)
    if summary.status != "done":
        raise typer.Exit(1)


def _yield_cores(settings) -> None:
    """Run below the interactive server (``ingest_nice``; pipeline/priority.py), and say so."""
    from commonwatch.pipeline.priority import lower_priority

    if settings.ingest_nice:
        console.print(f"running at niceness {lower_priority(settings.ingest_nice)} (ingest_nice)", highlight=False)


def _named(sources, url: str | None):
    for s in sources:
        if url:
            # The temporary file's name means nothing to a reader; the URL (and zip member) does.
            s.name = url + "!" + s.name.split("!", 1)[1] if "!" in s.name else url
        yield s


def _actor() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


def _print_summary(s) -> None:
    table = Table(title=f"ingest run {s.run_id}: {s.feed} {s.source}", show_header=False)
    for label, value in (("status", s.status), ("rows read", f"{s.rows_read:,}"),
                         ("events stored", f"{s.events_stored:,}"),
                         ("duplicates (already stored or repeated)", f"{s.duplicates:,}"),
                         ("quarantined", f"{s.quarantined:,}")):
        table.add_row(label, value)
    Console().print(table)
    for note in s.notes:
        console.print(f"note: {note}", highlight=False)
    if s.quarantined:
        console.print(f"see the quarantined records: commonwatch quarantine list --run {s.run_id}", highlight=False)
    if s.error:
        console.print(f"[red]error:[/red] {s.error}", highlight=False)


def _publish(rt, parser, sources, feed: str, target: str, url: str, queue: str) -> None:
    from commonwatch.pipeline.amqp import publish_run

    run_id, count = publish_run(rt.engine, rt.sessionmaker, rt.clock, parser, sources, feed=feed, target=target,
                                url=url, queue=queue, actor=_actor())
    console.print(f"run {run_id}: {count} batch(es) queued on {url.split('@')[-1]}", highlight=False)


def worker(broker: str = typer.Option("", help="amqp://... (default: COMMONWATCH_BROKER_URL)"),
           window_hours: float = typer.Option(24.0, help="Deduplication window in hours."),
           queue: str = typer.Option("commonwatch.batches", help="Queue to consume.")) -> None:
    """Process queued batches from RabbitMQ until stopped (run as many as you like)."""
    from commonwatch.cli import fail
    from commonwatch.pipeline.amqp import run_worker
    from commonwatch.pipeline.runner import load_references

    rt = get_runtime()
    _yield_cores(rt.settings)
    url = broker or rt.settings.broker_url
    if not url.startswith("amqp"):
        fail("worker needs a RabbitMQ URL: --broker amqp://... or COMMONWATCH_BROKER_URL")
    refs = load_references(rt.engine, rt.sessionmaker, rt.settings.data_dir)
    console.print(f"worker consuming {queue} on {url.split('@')[-1]}", highlight=False)
    stats = run_worker(url, rt.engine, refs, rt.clock, queue=queue, dedup_window=_window(window_hours))
    console.print(f"worker stopped: {stats.batches} batches, {stats.stored} events stored, {stats.failed} failed",
                  highlight=False)


def rematch_command(since: str = typer.Option(..., help="Re-process events seen on or after this date/time "
                                                        "(ISO 8601, e.g. 2026-11-01).")) -> None:
    """Re-run enrichment, matching and classification on stored events (after the registry, the
    enrichment data or the taxonomy changed)."""
    from commonwatch.cli import fail
    from commonwatch.pipeline.rematch import rematch
    from commonwatch.pipeline.runner import load_references

    try:
        when = datetime.fromisoformat(since)
    except ValueError:
        fail(f"--since: “{since}” is not an ISO 8601 date or date and time")
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    rt = get_runtime()
    refs = load_references(rt.engine, rt.sessionmaker, rt.settings.data_dir)
    result = rematch(rt.engine, rt.sessionmaker, refs, when, actor=_actor(), clock=rt.clock)
    typer.echo(f"examined {result.examined} event(s), changed {result.changed}")


def quarantine_list(run: int = typer.Option(None, help="Only this ingest run."),
                    limit: int = typer.Option(50, help="At most this many records.")) -> None:
    """Show quarantined records: source, line, reason and the start of the raw record."""
    from sqlalchemy import select

    from commonwatch.pipeline.models import QuarantinedRecord

    rt = get_runtime()
    with rt.session("cli") as session:
        stmt = select(QuarantinedRecord).order_by(QuarantinedRecord.id.desc()).limit(limit)
        if run is not None:
            stmt = stmt.where(QuarantinedRecord.run_id == run)
        for q in session.scalars(stmt):
            typer.echo(f"{q.source}:{q.line}: {q.reason}\n    {q.raw[:200]}")


def register(root: typer.Typer) -> None:
    root.command("ingest")(ingest)
    root.command("worker")(worker)
    events = next((g.typer_instance for g in root.registered_groups if g.name == "events"), None)
    if events is None:
        events = typer.Typer(help="Security events.", no_args_is_help=True)
        root.add_typer(events, name="events")
    events.command("rematch")(rematch_command)
    quarantine = typer.Typer(help="Records that did not become events.", no_args_is_help=True)
    quarantine.command("list")(quarantine_list)
    root.add_typer(quarantine, name="quarantine")
