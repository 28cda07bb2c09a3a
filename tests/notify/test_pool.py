"""Sending from a pool of processes, in batches: every delivery exactly once, the ledger the same
as when one process sends them one by one."""

from __future__ import annotations

from sqlalchemy import func, select

from commonwatch.notify.models import Delivery
from tests.notify.conftest import event_row, insert_events
from tests.notify.test_faults import _keys_in


def _many_deliveries(nenv, n: int) -> list[str]:
    """``n`` events of one organisation, one per message: ``n`` deliveries; their keys."""
    nenv.nset = nenv.nset.model_copy(update={"max_events_per_message": 1})
    rows = [event_row(nenv.world.org_a, at=nenv.clock.now(), ip=f"198.51.100.{i}", severity="high")
            for i in range(1, n + 1)]
    with nenv.session() as s:
        insert_events(s, rows)
    return sorted(r["event_key"] for r in rows)


def test_a_pool_of_sending_processes_sends_every_delivery_exactly_once(nenv, sink):
    keys = _many_deliveries(nenv, 7)
    nenv.nset = nenv.nset.model_copy(update={"send_process_min": 1, "send_processes": 2, "send_commit_batch": 3})
    report = nenv.notifier().run()
    assert report.assembled == 7 and report.sent == 7 and len(sink.messages) == 7
    assert sorted(_keys_in(sink)) == keys
    with nenv.session() as s:
        rows = s.scalars(select(Delivery).order_by(Delivery.id)).all()
        assert [(d.status, d.attempts, d.encrypted or d.signed) for d in rows] == [("sent", 1, True)] * 7
        assert all(d.handoff_at is not None and d.address == "noc@alpha.example" and d.event_count == 1
                   for d in rows)
    again = nenv.notifier().run()
    assert again.sent == 0 and len(sink.messages) == 7


def test_a_batch_records_each_outcome_of_its_own(nenv, sink):
    """One process, batches of four: a refusal in the middle of a batch is that delivery's retry."""
    _many_deliveries(nenv, 5)
    nenv.nset = nenv.nset.model_copy(update={"send_processes": 1, "send_workers": 1, "send_commit_batch": 4})
    sink.handler.refuse = 1
    report = nenv.notifier().run()
    assert (report.sent, report.retry) == (4, 1) and len(sink.messages) == 4
    with nenv.session() as s:
        statuses = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        assert statuses == {"sent": 4, "retry": 1}
