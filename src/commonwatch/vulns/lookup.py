"""Global search over vulnerabilities: a CVE identifier finds the advisories that name it and
whether the searcher's assets have findings for it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from commonwatch.access.principal import Principal
from commonwatch.db import scope
from commonwatch.i18n import _
from commonwatch.vulns.models import VulnFinding, VulnRecord
from commonwatch.web.globalsearch import HITS_PER_KIND, Hit, Query


def find(db: Session, principal: Principal, query: Query) -> list[Hit]:
    if query.kind != "cve" or not principal.has("vulns.read"):
        return []
    # Advisories are public records; findings are the organisations' own and scoped.
    records = db.scalars(select(VulnRecord).where(func.upper(VulnRecord.vuln_id) == query.value)
                         .limit(HITS_PER_KIND)).all()
    findings = db.scalar(scope(select(func.count(VulnFinding.id)), principal, VulnFinding)
                         .where(func.upper(VulnFinding.vuln_id) == query.value)) or 0
    hits = [Hit(_("Vulnerabilities"), f"{r.vuln_id} {r.title}".strip(), "/vulns?status=all", r.source)
            for r in records]
    if findings:
        hits.append(Hit(_("Vulnerabilities"), _("findings: {n}").format(n=findings),
                        "/vulns?status=all", query.value))
    return hits
