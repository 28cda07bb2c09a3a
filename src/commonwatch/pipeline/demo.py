"""Demo: load a small iptoasn table, then ingest the shipped sample feeds (every parser) so the
event pages show realistic early-warning data. Idempotent: skipped once the demo has ingested."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy import select

from commonwatch.db import make_sessionmaker
from commonwatch.pipeline.models import IngestRun

#: sample file (or glob) -> feed name
SAMPLES: list[tuple[str, str]] = [
    ("2026-11-24-*.csv", "shadowserver"),
    ("urlhaus.csv", "urlhaus"),
    ("feodotracker.csv", "feodotracker"),
    ("feodotracker.json", "feodotracker"),
    ("threatfox.json", "threatfox"),
    ("spamhaus-drop.txt", "spamhaus-drop"),
    ("spamhaus-edrop.txt", "spamhaus-edrop"),
    ("openphish.txt", "openphish"),
    ("phishtank.csv", "phishtank"),
    ("phishtank.json", "phishtank"),
    ("intelmq.jsonl", "intelmq"),
    ("generic-c2.csv", "generic:{dir}/generic-c2.yaml"),
]
DEMO_IPTOASN = "198.51.100.0\t198.51.100.255\t64500\tCN\tNORTHERN-DEMO-TELECOM\n" \
               "203.0.113.0\t203.0.113.255\t64501\tCN\tEASTERN-DEMO-GRID\n" \
               "198.18.0.0\t198.18.0.255\t64502\tCN\tDEMO-COMMERCIAL-BANK\n" \
               "192.0.2.0\t192.0.2.255\t64496\tCN\tDEMO-CITY-DATA\n" \
               "185.220.101.0\t185.220.101.255\t64510\tDE\tDEMO-DE-HOSTING\n" \
               "103.252.118.0\t103.252.118.255\t64520\tSG\tDEMO-SG-CLOUD\n"


def samples_dir() -> Path:
    return Path(str(resources.files("commonwatch.feeds").joinpath("samples")))


def sample_inputs() -> list[tuple[Path, str]]:
    """(file, feed name) for every shipped sample."""
    base = samples_dir()
    out = []
    for pattern, feed in SAMPLES:
        for path in sorted(base.glob(pattern)):
            out.append((path, feed.format(dir=base)))
    return out


def load(ctx) -> None:
    from commonwatch.enrichment.services import load_file
    from commonwatch.feeds.collect import sources_from_path
    from commonwatch.feeds.registry import get_parser
    from commonwatch.pipeline.runner import ingest_sources, load_references

    session = ctx.session
    if session.scalar(select(IngestRun.id).where(IngestRun.actor == "demo").limit(1)) is not None:
        return
    table = ctx.settings.path("demo", "ip2asn-demo.tsv")
    table.write_text(DEMO_IPTOASN, encoding="utf-8")
    load_file(session, table, "iptoasn", now=ctx.clock.now())
    # The pipeline writes through its own transactions: make the registry visible to them first.
    session.commit()
    engine = session.get_bind()
    factory = make_sessionmaker(engine)
    refs = load_references(engine, factory, ctx.settings.data_dir)
    for path, feed in sample_inputs():
        ingest_sources(engine, factory, sources_from_path(path, ctx.clock.now()),
                       get_parser(feed, ctx.settings.data_dir), feed_label=feed.split(":")[0], source_label=path.name,
                       clock=ctx.clock, data_dir=ctx.settings.data_dir, actor="demo", refs=refs)
