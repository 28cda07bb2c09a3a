"""CII services: operators' systems and their asset inventory.

``asset_frame`` is the one way other capabilities (the vulnerability matcher) read assets: one
query, returned as a Polars frame with stable column names and types."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from commonwatch import db
from commonwatch.access.principal import Principal
from commonwatch.cii.models import Asset, CiiSystem

#: The columns of ``asset_frame``, in order, with their types. Kept stable: readers rely on them.
ASSET_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "asset_id": pl.Int64(),
    "org_id": pl.Int64(),
    "system_id": pl.Int64(),
    "mlps_level": pl.Int8(),
    "cpe": pl.Utf8(),
    "purl": pl.Utf8(),
    "version": pl.Utf8(),
}


def asset_frame(session: Session, principal: Principal, org_ids: Iterable[int] | None = None) -> pl.DataFrame:
    """Every asset ``principal`` may read (optionally only those of ``org_ids``), one row each:
    asset_id, org_id, system_id (null when the asset belongs to no system), mlps_level (the
    system's, null without one), cpe, purl, version (each null when unknown)."""
    stmt = select(
        Asset.id, Asset.org_id, Asset.system_id, CiiSystem.mlps_level, Asset.cpe, Asset.purl, Asset.version
    ).outerjoin(CiiSystem, CiiSystem.id == Asset.system_id)
    stmt = db.scope(stmt, principal, Asset)
    if org_ids is not None:
        stmt = stmt.where(Asset.org_id.in_(list(org_ids)))
    rows = session.execute(stmt.order_by(Asset.id)).all()
    return pl.DataFrame(rows, schema=ASSET_FRAME_SCHEMA, orient="row")
