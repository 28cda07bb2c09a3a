"""CLI: ``enrichment load FILE [--kind mmdb|iptoasn|rir]`` and ``enrichment status``."""

from __future__ import annotations

from pathlib import Path

import typer

from commonwatch.errors import Invalid
from commonwatch.runtime import get_runtime

enrichment_app = typer.Typer(help="Reference data for enrichment: AS numbers, AS names, countries.",
                             no_args_is_help=True)


@enrichment_app.command("load")
def enrichment_load(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
                    kind: str = typer.Option(None, help="mmdb, iptoasn or rir (default: detected).")) -> None:
    """Load a MaxMind MMDB, an iptoasn TSV or a RIR delegated-extended file; it replaces the
    previous file of the same kind. Then run ``events rematch`` to apply it to stored events."""
    from commonwatch.cli import fail
    from commonwatch.enrichment.services import load_file

    rt = get_runtime()
    try:
        with rt.session("cli") as session:
            result = load_file(session, path, kind, now=rt.clock.now())
    except Invalid as exc:
        fail(str(exc))
    typer.echo(f"loaded {result.ranges} range(s) of kind {result.kind} from {path.name}"
               + (f"; skipped {result.skipped}" if result.skipped else ""))
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)


@enrichment_app.command("status")
def enrichment_status() -> None:
    """The reference files loaded, newest first."""
    from sqlalchemy import select

    from commonwatch.enrichment.models import EnrichmentLoad

    rt = get_runtime()
    with rt.session("cli") as session:
        for load in session.scalars(select(EnrichmentLoad).order_by(EnrichmentLoad.id.desc()).limit(20)):
            typer.echo(f"{load.loaded_at:%Y-%m-%d %H:%M} {load.kind:<8} {load.ranges:>9} ranges  {load.file_name} "
                       f"sha256:{load.sha256[:12]}")


def register(root: typer.Typer) -> None:
    root.add_typer(enrichment_app, name="enrichment")
