"""The audit log is a list like the others: sorted by its columns, paged by keyset, filtered by a
shareable URL, and a bad sort key is refused."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from commonwatch.access import audit
from commonwatch.access.models import AuditEntry
from commonwatch.db import session_scope
from tests.conftest import sign_in


def test_the_audit_log_sorts_pages_and_filters(client, app, world):
    with session_scope(app.state.sessionmaker, actor="test") as s:
        for i in range(120):
            audit.record(s, f"probe.{'zyx'[i % 3]}", "probe", i)
    sign_in(client, world.users["auditor"])
    with app.state.sessionmaker() as s:
        total = s.scalar(select(func.count()).select_from(AuditEntry))
    first = client.get("/audit")
    assert first.status_code == 200 and f'data-count="{total}"' in first.text
    seqs = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', first.text)]
    assert len(seqs) == 100 and seqs == sorted(seqs, reverse=True)
    older = re.search(r'href="(/audit\?cursor=[^"]+)" rel="next"', first.text).group(1)
    rest = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', client.get(older.replace("&amp;", "&")).text)]
    assert rest == sorted(rest, reverse=True) and len(seqs) + len(rest) == total and not set(seqs) & set(rest)
    probes = client.get("/audit?entity=probe&sort=action&dir=asc")
    rows = re.findall(r"<td>(probe\.[xyz])</td>", probes.text)
    assert len(rows) == 100 and rows == sorted(rows) and rows[0] == "probe.x"
    assert 'data-count="120"' in probes.text
    assert client.get("/audit?sort=before").status_code == 422
