"""CLI: ``vulns import PATH...`` (CVE 5 record/folder/zip, NVD page, OSV, CSAF, KEV, EPSS) and
``vulns match`` (the inventory against the records, into findings)."""

from __future__ import annotations

import gzip
from pathlib import Path

import typer

from commonwatch.runtime import get_runtime

vulns_app = typer.Typer(help="Vulnerabilities: advisory intake and matching against the asset inventory.",
                        no_args_is_help=True)


def _kind_of(path: Path, kind: str | None) -> str:
    if kind:
        return kind
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "epss"
    if "known_exploited" in name or name in ("kev.json",):
        return "kev"
    return "records"


@vulns_app.command("import")
def import_(paths: list[str] = typer.Argument(..., help="Files, cvelistV5 folders, release/delta zips, or URLs "
                                                       "on the outbound allowlist."),
            kind: str = typer.Option(None, help="records, kev or epss when the name does not say."),
            match: bool = typer.Option(True, help="Match the inventory against what was added or updated.")
            ) -> None:
    """Import vulnerability records, the KEV catalogue or EPSS scores; bad documents are quarantined
    with the reason; a refused archive stores nothing."""
    from commonwatch.cli import fail
    from commonwatch.vulns import services as svc
    from commonwatch.vulns.intake import IntakeError

    rt = get_runtime()
    total = svc.ImportReport()
    for target in paths:
        if target.startswith(("http://", "https://")):
            from commonwatch.errors import Invalid

            try:
                with rt.session("vulns-import") as session:
                    k = kind or _kind_of(Path(target.rsplit("/", 1)[-1]), None)
                    typer.echo(f"{target}: {svc.import_url(session, target, rt.settings, rt.clock.now(), k)}")
            except (Invalid, IntakeError) as exc:
                fail(f"{target}: {exc}")
            continue
        path = Path(target)
        if not path.exists():
            fail(f"{path}: no such file or folder")
        k = _kind_of(path, kind)
        try:
            with rt.session("vulns-import") as session:
                now = rt.clock.now()
                if k == "kev":
                    typer.echo(f"{path}: {svc.import_kev(session, path.read_bytes(), now)} KEV entries")
                elif k == "epss":
                    raw = path.read_bytes()
                    if path.name.lower().endswith(".gz"):
                        raw = gzip.decompress(raw)
                    typer.echo(f"{path}: {svc.import_epss(session, raw.decode('utf-8'), now)} EPSS scores")
                else:
                    rep = svc.import_path(session, path, now)
                    total.merge(rep)
                    typer.echo(f"{path}: {rep.added} added, {rep.updated} updated, {rep.unchanged} unchanged, "
                               f"{rep.stale} older than held, {rep.quarantined} quarantined")
                    for reason in rep.reasons[:20]:
                        typer.echo(f"  quarantined: {reason}", err=True)
        except (IntakeError, OSError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            fail(f"{path}: {exc}")
    if match and total.keys:
        with rt.session("vulns-match") as session:
            s = svc.run_match(session, rt.clock.now(), record_keys=total.keys)
        typer.echo(f"match: {len(s.new)} new finding(s), {s.seen} seen again, {s.suppressed_by_vex} suppressed by VEX")


@vulns_app.command("match")
def match_cmd(org: list[int] = typer.Option(None, "--org", help="Only these organisations (repeatable).")) -> None:
    """Match every asset against every record and bring the findings up to date."""
    from commonwatch.vulns import services as svc

    rt = get_runtime()
    with rt.session("vulns-match") as session:
        s = svc.run_match(session, rt.clock.now(), org_ids=org or None)
    typer.echo(f"{len(s.new)} new finding(s), {s.seen} seen again, {s.closed} no longer matched, "
               f"{s.suppressed_by_vex} suppressed by VEX, {len(s.rejected)} identifier(s) refused")
    for what, value, reason in s.rejected[:20]:
        typer.echo(f"  refused {what} {value!r}: {reason}", err=True)


@vulns_app.command("provider")
def provider_cmd(location: str = typer.Argument(..., help="A CSAF provider: the URL of its provider-metadata.json "
                                                          "(on the outbound allowlist) or a local mirror folder."),
                 match: bool = typer.Option(True, help="Match the inventory against what was added or updated.")
                 ) -> None:
    """Read a CSAF provider's advisories (directory or ROLIE); an URL is polled by the scheduled
    intake from then on. Advisories failing the schema or a mandatory test, or whose hash or
    OpenPGP signature is wrong (R18–R20), are quarantined with the test id and the reason."""
    from commonwatch.cli import fail
    from commonwatch.errors import Invalid
    from commonwatch.vulns import services as svc
    from commonwatch.vulns.csaf_provider import import_provider
    from commonwatch.vulns.intake import IntakeError

    rt = get_runtime()
    try:
        with rt.session("vulns-provider") as session:
            now = rt.clock.now()
            if location.startswith(("http://", "https://")):
                status, keys = svc.fetch_source(session, location, rt.settings, now, "csaf-provider")
                typer.echo(f"{location}: {status}")
            else:
                rep = import_provider(session, Path(location), rt.settings, now)
                status, keys = rep.summary(), rep.keys
                typer.echo(f"{location}: {status}")
                for reason in rep.reasons[:20] + rep.failures[:20]:   # quarantined, then distribution failures
                    typer.echo(f"  {reason}", err=True)
            if match and keys:
                s = svc.run_match(session, now, record_keys=keys)
                typer.echo(f"match: {len(s.new)} new finding(s), {s.suppressed_by_vex} suppressed by VEX")
    except (Invalid, IntakeError, OSError) as exc:
        fail(f"{location}: {exc}")


@vulns_app.command("poll")
def poll_cmd() -> None:
    """Fetch every subscribed URL source now (what the vulns-sources job does) and match the delta."""
    from commonwatch.vulns import services as svc

    rt = get_runtime()
    with rt.session("vulns-poll") as session:
        rep = svc.poll_sources(session, rt.settings, rt.clock.now())
    for line in rep.lines:
        typer.echo(line)
    if rep.match:
        typer.echo(f"match: {len(rep.match.new)} new finding(s) from {len(set(rep.keys))} changed record(s)")


def register(root: typer.Typer) -> None:
    root.add_typer(vulns_app, name="vulns")
