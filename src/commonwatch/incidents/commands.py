"""``commonwatch incidents ...``: check the clocks once, and validate an edited rules file."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Incident reporting: clocks and rules.", no_args_is_help=True)


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
