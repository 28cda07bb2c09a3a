"""The ingest's CPU priority: a bulk ingest runs below the interactive server.

A million-row ingest keeps every core busy for a while; the people on the web pages should not
wait for it. ``commonwatch ingest`` and ``commonwatch worker`` therefore raise their own niceness
at start (``ingest_nice``, default 10). Niceness weighs processes against each other only inside
one scheduling group: under systemd give the feed units a lower ``CPUWeight=`` as well
(docs/install.md), and a shell's processes form an autogroup of their own.
"""

from __future__ import annotations

import os


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # no /proc (not Linux): the calling thread only
        return [0]


def lower_priority(nice: int) -> int:
    """Raise every thread of this process to niceness ``nice`` (never lower it) under the batch
    scheduling policy (``SCHED_BATCH``, where the system has it), and return the niceness now in
    force. On Linux niceness is per thread, and a thread pool started before this
    call (Polars', say) keeps its own: each thread is set by its id; threads started later take
    their starter's."""
    nice = max(nice, os.getpriority(os.PRIO_PROCESS, 0))
    batch = getattr(os, "SCHED_BATCH", None)
    for tid in _thread_ids():
        try:
            if batch is not None:  # a CPU-bound batch: its wake-ups do not preempt a request's thread
                os.sched_setscheduler(tid, batch, os.sched_param(0))
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (ProcessLookupError, PermissionError):  # a thread that ended meanwhile
            continue
    return os.getpriority(os.PRIO_PROCESS, 0)

