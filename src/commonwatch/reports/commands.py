"""CLI: ``reports rebuild --since`` (recompute the rollups from the event store) and
``reports build --period month --month 2026-11 [--output FILE]`` (a situation report as PDF or HTML)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from commonwatch.runtime import get_runtime

app = typer.Typer(help="Statistics and situation reports: rollups and reports.", no_args_is_help=True)


@app.command("rebuild")
def rebuild(since: str = typer.Option(..., help="A day of the first UTC month to recompute (YYYY-MM-DD)."),
            until: str = typer.Option("", help="Day after the last one (default: everything after since).")) -> None:
    """Recompute the part-day, daily and monthly rollups and the per-day hosts from the event store."""
    from commonwatch.cli import fail
    from commonwatch.events.store import event_store
    from commonwatch.reports.rollup import rebuild as do_rebuild

    try:
        start = datetime.fromisoformat(since).replace(tzinfo=UTC)
        end = datetime.fromisoformat(until).replace(tzinfo=UTC) if until else None
    except ValueError:
        fail(f"--since/--until: not a date (YYYY-MM-DD): {since!r} {until!r}")
    rt = get_runtime()
    with rt.engine.begin() as conn:
        done = do_rebuild(conn, event_store(conn, settings=rt.settings), start, end, zone=rt.settings.timezone)
    typer.echo(f"rebuilt from {done.since.date().isoformat()}: {done.hour_rows:,} part-day and {done.day_rows:,} "
               f"daily rows, {done.host_rows:,} host-days from {done.events:,} events, "
               f"{done.answers:,} answered warnings")


@app.command("build")
def build(period: str = typer.Option("month", help="week, month or year."),
          month: str = typer.Option("", help="The month (YYYY-MM) for --period month."),
          week: str = typer.Option("", help="The week (YYYY-Www) for --period week."),
          year: str = typer.Option("", help="The year (YYYY) for --period year."),
          output: Path = typer.Option(None, help="Write here (.pdf or .html); default: commonwatch-PERIOD-START.pdf"),
          tz: str = typer.Option("", help="Time zone of the period's days (default: the setting)."),
          ) -> None:
    """Build a situation report: figures, charts, tables and the change against the previous period."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.cli import fail
    from commonwatch.errors import CommonwatchError
    from commonwatch.reports import render
    from commonwatch.reports import services as svc

    value = {"month": month, "week": week, "year": year}.get(period, "")
    if not value:
        fail(f"--period {period}: give --{period} (e.g. --month 2026-11)" if period in ("month", "week", "year")
             else f"--period: {period!r} is not one of: week, month, year")
    rt = get_runtime()
    zone = svc.zone_name(tz or rt.settings.timezone)
    try:
        with rt.session("cli") as session:
            report = svc.build_report(session, SYSTEM, period, value, zone, rt.clock.now())
            target = output or Path(f"commonwatch-{period}-{report.period.start.isoformat()}.pdf")
            if target.suffix.lower() == ".html":
                from importlib import resources

                from commonwatch.reports.pages import card
                from commonwatch.web.templating import make_environment

                query = {"since": report.period.start.isoformat(), "tz": zone}
                css = resources.files("commonwatch.reports").joinpath("static/reports.css").read_text("utf-8")
                html = make_environment(rt.settings.data_dir, zone).get_template("reports/report_file.html").render(
                    report=report, cards=[card(r, query) for r in report.results], css=css, lang="en")
                target.write_text(html, encoding="utf-8")
            else:
                target.write_bytes(render.report_pdf(report))
    except CommonwatchError as exc:
        fail(str(exc))
    typer.echo(f"{target}: {report.title} {report.period.label()} ({len(report.results)} indicators)")
    for line in report.summary:
        typer.echo(f"  {line}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="reports")
