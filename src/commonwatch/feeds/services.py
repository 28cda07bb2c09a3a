"""Scheduled HTTP(S) feeds: subscribe, and fetch the ones that are due (conditional requests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch import outbound
from commonwatch.errors import Conflict, Invalid
from commonwatch.feeds.collect import fetch_url, sources_from_path
from commonwatch.feeds.models import FeedSubscription
from commonwatch.feeds.registry import get_parser
from commonwatch.i18n import _


def subscribe(session: Session, name: str, url: str, feed: str, every_minutes: int, allowlist: list[str],
              data_dir: Path | None = None) -> FeedSubscription:
    outbound.check(url, allowlist, "url")
    get_parser(feed, data_dir)  # an unknown feed name is refused now, not at the first fetch
    if every_minutes < 5:
        raise Invalid("every", _("must be at least 5 minutes"))
    if session.scalar(select(FeedSubscription).where(FeedSubscription.name == name)):
        raise Conflict(_("a feed named {name} exists").format(name=name))
    sub = FeedSubscription(name=name, url=url, feed=feed, every_minutes=every_minutes, enabled=True, etag="",
                           last_modified="", last_status="")
    session.add(sub)
    session.flush()
    return sub


def due(session: Session, now: datetime) -> list[FeedSubscription]:
    subs = session.scalars(select(FeedSubscription).where(FeedSubscription.enabled.is_(True))
                           .order_by(FeedSubscription.id)).all()
    return [s for s in subs if s.last_fetched_at is None
            or s.last_fetched_at + timedelta(minutes=s.every_minutes) <= now]


def fetch_due(engine, sessionmaker, settings, clock) -> list[str]:
    """Fetch every due subscription and ingest what changed; returns one status line per feed."""
    from commonwatch.pipeline.runner import ingest_sources

    lines = []
    with sessionmaker() as session:
        subs = [(s.id, s.name, s.url, s.feed, s.etag, s.last_modified) for s in due(session, clock.now())]
    for sid, name, url, feed, etag, last_modified in subs:
        status, new_etag, new_lm = "", etag, last_modified
        try:
            result = fetch_url(url, outbound.Policy.of(settings), etag=etag, last_modified=last_modified)
            new_etag, new_lm = result.etag, result.last_modified
            if result.not_modified:
                status = "not modified"
            else:
                try:
                    sources = sources_from_path(result.body, clock.now(), limit=settings.outbound_max_bytes)
                    renamed = (_rename(s, url) for s in sources)
                    summary = ingest_sources(engine, sessionmaker, renamed, get_parser(feed, settings.data_dir),
                                             feed_label=feed, source_label=url, clock=clock,
                                             data_dir=settings.data_dir, actor=f"feed:{name}")
                    status = (f"run {summary.run_id}: {summary.events_stored} stored, "
                              f"{summary.quarantined} quarantined")
                finally:
                    result.body.unlink(missing_ok=True)
        except Invalid as exc:
            status = f"failed: {exc}"
        with sessionmaker() as session:
            sub = session.get(FeedSubscription, sid)
            sub.etag, sub.last_modified, sub.last_status = new_etag, new_lm, status[:2000]
            sub.last_fetched_at = clock.now()
            session.info["actor"] = f"feed:{name}"
            session.commit()
        lines.append(f"{name}: {status}")
    return lines


def _rename(source, url: str):
    source.name = url
    return source
