"""Periodic work of the pipeline: ingest runs whose process is gone are marked interrupted (at
the server's start, the first run of every job, and every five minutes after)."""

from __future__ import annotations

from typing import Any

from commonwatch.pipeline.runner import mark_interrupted
from commonwatch.scheduler import Job


def interrupted_runs(state: Any) -> str:
    ids = mark_interrupted(state.engine, state.clock)
    return f"{len(ids)} runs marked interrupted" if ids else "none"


JOBS = [Job("ingest-interrupted", 300, interrupted_runs)]
