"""The ``commonwatch`` command. Each capability adds its sub-commands through ``commands.register``."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from commonwatch import __version__, capabilities
from commonwatch.runtime import get_runtime
from commonwatch.terminal import TIME_RULE

# Plain help (no boxes or <type> placeholders): it is read in terminals and piped into pagers and files.
app = typer.Typer(help="commonwatch: a platform for cybersecurity coordination centres.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None, epilog=TIME_RULE)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print a clear error on stderr and exit non-zero (stdout stays clean for scripts)."""
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (SQLite or PostgreSQL)."""
    from commonwatch.migrate import upgrade

    rt = get_runtime()
    upgrade(rt.engine)
    console.print(f"database is up to date: {rt.engine.url.render_as_string(hide_password=True)}", highlight=False)


@db_app.command("current")
def db_current() -> None:
    """Show the schema revisions the database is at, and whether that is current."""
    from commonwatch.migrate import current_heads, expected_heads

    rt = get_runtime()
    have, want = current_heads(rt.engine), expected_heads()
    typer.echo(f"at: {', '.join(sorted(have)) or '(empty)'}")
    typer.echo(f"current: {'yes' if have == want else 'no, run: commonwatch db upgrade'}")


@app.command()
def init() -> None:
    """Create the data dir and the database schema. Safe to run again."""
    rt = _create_schema()
    console.print(f"data dir: {rt.settings.data_dir}", highlight=False)
    console.print(f"database: {rt.engine.url.render_as_string(hide_password=True)}", highlight=False)
    _warn_of_events_left_in_table(rt)
    console.print("next: commonwatch user add EMAIL --role admin, then commonwatch serve", highlight=False)


def _create_schema():
    from commonwatch.migrate import upgrade

    rt = get_runtime()
    rt.settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(rt.engine)
    return rt


def _warn_of_events_left_in_table(rt) -> None:
    """Say so when events wait in the database's table for ``events migrate-store``: the
    configured store does not read them."""
    from commonwatch.events.migrate import events_left_in_table

    left = events_left_in_table(rt.engine, rt.settings)
    if left:
        console.print(f"[yellow]warning:[/yellow] {left} event(s) are still in the database's events table, which "
                      f"the configured event store ({rt.settings.event_store}) does not read; move them with: "
                      "commonwatch events migrate-store", highlight=False)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on."),
          port: int = typer.Option(8000, help="Port to listen on."),
          jobs: bool = typer.Option(True, help="Run the periodic work (notifications, feeds, clocks)."),
          workers: int = typer.Option(0, min=0, help="Worker processes; 0: one per core. SIGHUP restarts them "
                                                   "one by one (with more than one).")) -> None:
    """Serve the web pages, the REST API and TAXII."""
    from commonwatch.migrate import is_current
    from commonwatch.observability import configure_logging

    rt = get_runtime()
    configure_logging(rt.settings.log_level, rt.settings.log_format)
    if not is_current(rt.engine):
        fail("the database schema is not current; run: commonwatch db upgrade")
    _warn_of_events_left_in_table(rt)
    from commonwatch.serving import default_workers
    from commonwatch.serving import serve as serve_workers

    serve_workers(host, port, workers or default_workers(), jobs)


@app.command()
def demo(serve_after: bool = typer.Option(False, "--serve", help="Serve once the demo is loaded."),
         port: int = typer.Option(8000)) -> None:
    """Initialise the database and load the demo constituency (idempotent); print the sign-ins."""
    import logging

    from commonwatch.demo import load_demo

    rt = _create_schema()
    # The demo's own arranging (a case's deadline already at risk) is not news to the one who loads it.
    quiet = logging.getLogger("commonwatch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        sign_ins = load_demo(rt)
    finally:
        quiet.setLevel(level)
    console.print()
    console.print(f"[bold]commonwatch demo[/bold] — sign in at http://127.0.0.1:{port} with:", highlight=False)
    for role, email, password in sign_ins:
        console.print(f"  {role:<12} {email:<34} {password}", highlight=False)
    console.print()
    if serve_after:
        # `make run` shows the sign-ins and the address above, then only warnings (its workers too).
        import os

        os.environ.setdefault("COMMONWATCH_LOG_LEVEL", "WARNING")
        rt.settings.log_level = os.environ["COMMONWATCH_LOG_LEVEL"]
        serve(host="127.0.0.1", port=port, jobs=True, workers=0)


def _register_capabilities() -> None:
    for _cap, module in capabilities.parts("commands"):
        module.register(app)


_register_capabilities()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
