"""Periodic work inside the server: each capability's ``jobs.JOBS`` (send due notifications,
fetch feeds, check regulatory clocks). One thread runs the jobs one after another; a failing job
is logged and retried at its next interval. Of several server workers only the one
holding the jobs lock runs them (serving.JobsLeader); on other machines use ``--no-jobs``."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from commonwatch import capabilities

log = logging.getLogger("commonwatch.scheduler")


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[Any], Any]  # receives the app state (settings, sessionmaker, clock, jinja)


class Scheduler:
    def __init__(self, state: Any, jobs: list[Job]):
        self.state = state
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="commonwatch-jobs", daemon=True)
        self._next = {job.name: 0.0 for job in jobs}

    @classmethod
    def from_capabilities(cls, state: Any) -> Scheduler:
        jobs: list[Job] = []
        for _cap, module in capabilities.parts("jobs"):
            jobs.extend(module.JOBS)
        return cls(state, jobs)

    def start(self) -> None:
        if self.jobs:
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_due(self, now: float) -> None:
        for job in self.jobs:
            if self._stop.is_set() or now < self._next[job.name]:
                continue
            started = time.monotonic()
            try:
                result = job.run(self.state)
                log.info("job done", extra={"job": job.name, "pid": os.getpid(),
                                            "ms": round((time.monotonic() - started) * 1000),
                                            "result": str(result)[:200] if result is not None else ""})
            except Exception:
                log.exception("job failed", extra={"job": job.name, "pid": os.getpid()})
            self._next[job.name] = time.monotonic() + job.every_seconds

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due(time.monotonic())
            self._stop.wait(1.0)
