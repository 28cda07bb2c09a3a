"""B-owned events for the tenancy walk: every text field carries SECRET-B."""

from __future__ import annotations

from datetime import timedelta

from tests.events.eventdata import event_row, insert_events, stored_ids


def seed(session, world, clock) -> dict[str, int]:
    at = clock.now() - timedelta(hours=1)
    row = event_row(0, at=at, org_id=world.org_b, key_prefix="secret-b",
                    feed_name="SECRET-B-feed", feed_provider="SECRET-B provider",
                    source_ip="203.0.113.9", source_as_name="SECRET-B-AS", source_asn=64501,
                    source_fqdn="secret-b.example", source_url="http://secret-b.example/SECRET-B",
                    classification_identifier="SECRET-B-id", malware_name="secret-b",
                    extra={"note": "SECRET-B extra"}, constituent_sector="energy", constituent_cii=True)
    from commonwatch.net import ip_key

    row["source_ip_bin"] = ip_key("203.0.113.9")
    insert_events(session, [row])
    return {"event_id": stored_ids(session, [row])[row["event_key"]]}
