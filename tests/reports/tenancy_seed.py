"""B's figures in the rollups for the tenancy walk (its feed and type carry SECRET-B), and the
path parameters of the statistics routes: the centre's dashboards and reports are not a
constituent's (A is answered 403/404)."""

from __future__ import annotations

import numpy as np

from commonwatch.reports.models import EventCount, HostSet
from commonwatch.reports.rollup import DAY, HOUR, MONTH


def seed(session, world, clock) -> dict[str, object]:
    hour = int(clock.now().timestamp()) // 3600 - 1
    now = clock.now()
    month = (now.year - 1970) * 12 + now.month - 1
    for grain, bucket in ((HOUR, hour), (DAY, hour // 24), (MONTH, month)):
        for dim, value in (("type", "SECRET-B-type"), ("feed", "SECRET-B-feed"), ("org", str(world.org_b))):
            session.add(EventCount(grain=grain, dim=dim, bucket=bucket, value=value, type="SECRET-B-type",
                                   org_id=world.org_b, partner_org_id=0, n=7))
    for grain, bucket in ((DAY, hour // 24), (MONTH, month)):
        session.add(HostSet(grain=grain, bucket=bucket, type="SECRET-B-type", org_id=world.org_b, partner_org_id=0,
                            n=1, hosts=np.array([99], dtype="<i8").tobytes()))
    session.flush()
    return {"kind": "coordinator", "period": "month", "value": clock.now().strftime("%Y-%m")}
