"""CLI: ``feeds list``, ``feeds update-schema FILE``, ``feeds add``, ``feeds fetch``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from commonwatch.errors import CommonwatchError, Invalid
from commonwatch.runtime import get_runtime

feeds_app = typer.Typer(help="Threat feeds: the formats commonwatch reads and the feeds it fetches.",
                        no_args_is_help=True)


@feeds_app.command("list")
def feeds_list() -> None:
    """The feed names ``ingest --feed`` accepts, and the subscribed HTTP(S) feeds."""
    from sqlalchemy import select

    from commonwatch.feeds.models import FeedSubscription
    from commonwatch.feeds.registry import list_parsers
    from commonwatch.feeds.shadowserver import load_schema

    rt = get_runtime()
    table = Table(title="feeds")
    table.add_column("name")
    table.add_column("formats")
    table.add_column("description")
    for info in list_parsers():
        table.add_row(info.name, info.formats, info.description)
    out = Console()
    out.print(table)
    try:
        reports = load_schema(rt.settings.data_dir)
        out.print(f"shadowserver report types ({len(reports)}): {', '.join(sorted(reports))}", highlight=False)
    except Invalid as exc:
        out.print(f"shadowserver schema: {exc}", highlight=False)
    try:
        with rt.session("cli") as session:
            subs = session.scalars(select(FeedSubscription).order_by(FeedSubscription.name)).all()
    except Exception:
        subs = []
    if subs:
        t = Table(title="subscribed feeds")
        for col in ("name", "feed", "url", "every", "last fetched", "last status"):
            t.add_column(col)
        for s in subs:
            t.add_row(s.name, s.feed, s.url, f"{s.every_minutes} min",
                      s.last_fetched_at.isoformat() if s.last_fetched_at else "-", s.last_status or "-")
        out.print(t)


@feeds_app.command("update-schema")
def feeds_update_schema(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                                    help="Shadowserver's published schema JSON."),
                        output: Path | None = typer.Option(
                            None, "--output", help="Write this file instead of the operator's copy "
                            "(maintainers: src/commonwatch/feeds/data/shadowserver-schema.json)."),
                        keep_existing: bool = typer.Option(
                            False, "--keep-existing", help="Report types already installed keep their "
                            "mapping; only new ones are added."),
                        own_mapping: bool = typer.Option(
                            False, "--own-mapping", help="Write each report of the file as commonwatch maps "
                            "reports (extra.<column>, no validators, a classification type for every "
                            "report), as the shipped mapping is written.")) -> None:
    """Refresh the Shadowserver report mappings from Shadowserver's schema JSON (offline)."""
    from commonwatch.cli import fail
    from commonwatch.feeds.shadowserver import update_schema

    rt = get_runtime()
    try:
        target, added, changed = update_schema(path, rt.settings.data_dir, target=output,
                                               keep_existing=keep_existing, own=own_mapping)
    except Invalid as exc:
        fail(str(exc))
    typer.echo(f"installed {target}: {len(added)} new report type(s){': ' + ', '.join(added) if added else ''}; "
               f"{len(changed)} changed{': ' + ', '.join(changed) if changed else ''}")


@feeds_app.command("add")
def feeds_add(name: str = typer.Argument(..., help="A short name for this feed."),
              url: str = typer.Argument(..., help="The http(s) URL (must be on the outbound allowlist)."),
              feed: str = typer.Option(..., "--feed", "-f", help="Parser name (see: feeds list)."),
              every: int = typer.Option(60, help="Minutes between fetches.")) -> None:
    """Subscribe to a feed fetched over HTTP(S) on a schedule (by ``commonwatch serve``)."""
    from commonwatch.cli import fail
    from commonwatch.feeds.services import subscribe

    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            sub = subscribe(session, name, url, feed, every, rt.settings.outbound_allowlist, rt.settings.data_dir)
            typer.echo(f"subscribed {sub.name}: {sub.url} every {sub.every_minutes} min")
    except CommonwatchError as exc:
        fail(str(exc))


@feeds_app.command("fetch")
def feeds_fetch() -> None:
    """Fetch the subscribed feeds that are due now."""
    from commonwatch.feeds.services import fetch_due

    rt = get_runtime()
    for line in fetch_due(rt.engine, rt.sessionmaker, rt.settings, rt.clock):
        typer.echo(line)


def register(root: typer.Typer) -> None:
    root.add_typer(feeds_app, name="feeds")
