"""``commonwatch incidents ...``: list the cases, check the clocks once, and validate an edited rules file."""

from __future__ import annotations

from pathlib import Path

import typer

from commonwatch.terminal import TIME_RULE, print_table, show_time

app = typer.Typer(help="Incident reporting: clocks and rules.", no_args_is_help=True)


@app.command("list", epilog=TIME_RULE)
def incidents_list(status: str = typer.Option("", help="Only this status (new, assigned, ..., closed)."),
                   level: str = typer.Option("", help="Only this level."),
                   org: int = typer.Option(None, "--org", help="Only this organisation's (its id)."),
                   open_only: bool = typer.Option(False, "--open", help="Only cases not closed."),
                   search: str = typer.Option("", "--search", help="A part of the title or the reference."),
                   limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most this many cases.")) -> None:
    """Incidents newest first (by discovery), as the incidents page lists them: reference, level,
    status, organisation, discovered, title."""
    from commonwatch.access.principal import SYSTEM
    from commonwatch.incidents.services import IncidentFilter, org_name, search_incidents
    from commonwatch.runtime import get_runtime

    rt = get_runtime()
    f = IncidentFilter(q=search, status=status, level=level, org_id=org, open_only=open_only)
    with rt.session("cli") as session:
        rows, total = search_incidents(session, SYSTEM, f, per_page=limit)
        names: dict[int, str] = {}
        print_table(("ref", "level", "status", "organisation", "discovered", "title"),
                    ((i.ref, i.level, i.status, names.setdefault(i.org_id, org_name(session, i.org_id)),
                      show_time(i.discovered_at, rt.settings.timezone), i.title) for i in rows))
    typer.echo(f"{len(rows)} of {total} incident(s)", err=True)


@app.command("check-clocks")
def check_clocks() -> None:
    """Raise deadline alerts for every clock at risk or missed (the server does this every minute)."""
    from commonwatch.incidents import alerts
    from commonwatch.incidents.rules import load_incident_rules
    from commonwatch.runtime import get_runtime

    rt = get_runtime()
    rules = load_incident_rules(rt.settings.data_dir)
    with rt.session("system clocks") as session:
        result = alerts.check_clocks(session, rt.clock.now(), rules)
    typer.echo(str(result))


@app.command("rules-check")
def rules_check(data_dir: Path | None = typer.Option(None, help="Data dir whose rules/ copies to check "
                                                                "(default: the configured one).")) -> None:
    """Load and validate the incident rules files in force; print what is used or the problem found."""
    from commonwatch.cli import fail
    from commonwatch.incidents.rules import load_incident_rules
    from commonwatch.rules import RulesError
    from commonwatch.runtime import get_runtime

    directory = data_dir or get_runtime().settings.data_dir
    try:
        rules = load_incident_rules(directory)
    except RulesError as exc:
        fail(str(exc))
        return
    provisional = sum(1 for i in rules.grading.indicators if i.provisional)
    typer.echo(f"grading:   {rules.grading.origin} ({len(rules.grading.indicators)} indicators, "
               f"{provisional} provisional)")
    typer.echo(f"reporting: {rules.reporting.origin} ({len(rules.reporting.duties)} parallel duties)")
    typer.echo(f"taxonomy:  {rules.taxonomy.origin} ({len(rules.taxonomy.categories)} categories)")
    typer.echo(f"sharing:   {rules.sharing.origin}")
    typer.echo("ok")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="incidents")
