"""The planner keeps events on a warning list out of warnings (recorded as ``listed``) unless the
policy in rules/warning_lists.yaml lets that list's hits through."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from commonwatch.intel import warninglists as wl
from tests.conftest import START


def _misp(tmp_path, name, kind, entries):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "version": 1, "description": "", "type": kind, "list": entries}),
                    encoding="utf-8")
    return path


def test_listed_events_are_not_warned_unless_the_policy_says_so(nenv, tmp_path):
    from commonwatch.notify.models import EventWarning
    from tests.notify.conftest import event_row, insert_events

    w = nenv.world
    data = nenv.settings.data_dir
    wl.load_file(_misp(tmp_path, "resolvers", "cidr", ["198.51.100.53/32"]), data, START)
    now = nenv.clock.now()
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=now - timedelta(hours=1), ip="198.51.100.53", severity="high"),
                          event_row(w.org_a, at=now - timedelta(hours=1), ip="198.51.100.54", severity="high")])
    report = nenv.notifier().run().plan
    assert (report.warned, report.suppressed) == (1, 1)
    with nenv.session() as s:
        assert sorted(s.scalars(select(EventWarning.disposition))) == ["listed", "warn"]
    # The policy can let a list's hits through.
    rules = data / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    shipped = wl.rules_path("warning_lists.yaml", None).read_text(encoding="utf-8")
    (rules / "warning_lists.yaml").write_text(shipped.replace("lists: {}", "lists: {resolvers: warn}"),
                                              encoding="utf-8")
    nenv.clock.advance(timedelta(hours=1))
    with nenv.session() as s:
        insert_events(s, [event_row(w.org_a, at=nenv.clock.now(), ip="198.51.100.53", port=53, kind="open-resolver",
                                    severity="high", created_at=nenv.clock.now())])
    assert nenv.notifier().run().plan.warned == 1
