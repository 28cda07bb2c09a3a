"""intel: the centre's STIX identity gets a kept UUIDv4; commonwatch's custom properties move into
its STIX 2.1 extension (stored objects rewritten), and indicators commonwatch produced get the name
and description STIX validators expect.

Revision ID: 0008_intel_stix_extension
Revises: 0005_intel
Create Date: 2026-12-02
"""

import json
import uuid

import sqlalchemy as sa
from alembic import op

revision = '0008_intel_stix_extension'
down_revision = '0005_intel'
branch_labels = None
depends_on = None

# Written out here (not imported) so the migration keeps meaning what it meant when it was written.
EXTENSION = "extension-definition--c22005f3-9b10-46b6-b6f7-50f17b65034a"
LEGACY = {"x_commonwatch_evidence": ("evidence", None), "x_misp_type": ("misp", "attribute_type"),
          "x_misp_category": ("misp", "category"), "x_misp_to_ids": ("misp", "to_ids"),
          "x_misp_event_uuid": ("misp", "event_uuid")}
MAPPED = {"type", "spec_version", "id", "created", "modified", "name", "description", "pattern", "pattern_type",
          "valid_from", "valid_until", "indicator_types", "labels", "kill_chain_phases", "confidence", "revoked",
          "object_marking_refs", "created_by_ref"}

objects = sa.table("intel_objects", sa.column("id", sa.Integer), sa.column("stix_id", sa.String),
                   sa.column("type", sa.String), sa.column("latest", sa.Boolean), sa.column("body", sa.Text))
indicators = sa.table("indicators", sa.column("stix_id", sa.String), sa.column("name", sa.String),
                      sa.column("description", sa.Text), sa.column("extra", sa.JSON))
state = sa.table("intel_state", sa.column("key", sa.String), sa.column("value", sa.Text))


def convert_object(obj: dict) -> dict:
    """One stored object in the new form (the same information, under the extension)."""
    if not any(key in obj for key in LEGACY):
        return obj
    props: dict = {}
    for key, (part, name) in LEGACY.items():
        if key in obj:
            if name is None:
                props[part] = obj[key]
            else:
                props.setdefault(part, {})[name] = obj[key]
    out = {k: v for k, v in obj.items() if k not in LEGACY}
    extensions = dict(out.get("extensions") or {})
    extensions[EXTENSION] = {"extension_type": "property-extension", **props}
    out["extensions"] = extensions
    if out.get("type") == "indicator":
        evidence, misp = props.get("evidence"), props.get("misp")
        if evidence and not out.get("description"):
            out["description"] = (f"Promoted from {evidence.get('events')} events reported by "
                                  f"{evidence.get('feeds')} feed(s), first seen {evidence.get('first_seen')}.")
        if misp:
            out.setdefault("name", f"MISP {misp.get('attribute_type')} attribute")
            if not out.get("description"):
                out["description"] = (f"MISP attribute {misp.get('attribute_type')} "
                                      f"({misp.get('category') or 'no category'}) in event {misp.get('event_uuid')}.")
    return out


def convert(conn) -> int:
    """Rewrite the stored objects that carry the old custom properties; returns how many."""
    like = sa.or_(objects.c.body.like('%"x_commonwatch_evidence"%'), objects.c.body.like('%"x_misp_%'))
    done = 0
    for row in conn.execute(sa.select(objects.c.id, objects.c.stix_id, objects.c.type, objects.c.latest,
                                      objects.c.body).where(like)).all():
        obj = json.loads(row.body)
        new = convert_object(obj)
        if new is obj:
            continue
        conn.execute(objects.update().where(objects.c.id == row.id).values(
            body=json.dumps(new, ensure_ascii=False, separators=(",", ":"))))
        if row.type == "indicator" and row.latest:
            conn.execute(indicators.update().where(indicators.c.stix_id == row.stix_id).values(
                name=new.get("name", ""), description=new.get("description", ""),
                extra={k: v for k, v in new.items() if k not in MAPPED}))
        done += 1
    return done


def upgrade() -> None:
    conn = op.get_bind()
    if conn.execute(sa.select(state.c.key).where(state.c.key == "centre.identity")).first() is None:
        conn.execute(state.insert().values(key="centre.identity", value=str(uuid.uuid4())))
    convert(conn)


def downgrade() -> None:
    pass  # the new form carries the same information; older versions read it as unmapped properties
