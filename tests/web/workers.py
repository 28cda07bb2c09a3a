"""A real ``commonwatch serve --workers N`` on a loopback port, as a subprocess (tests' helper)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerServer:
    """``commonwatch serve`` with ``workers`` processes on the given data dir and database; its
    responses carry the answering worker's pid (X-Commonwatch-Worker); its log goes to ``log_path``."""

    def __init__(self, data_dir: Path, database_url: str, workers: int = 2, jobs: bool = True,
                 env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "serve.log"
        self.env = {**os.environ, "COMMONWATCH_DATA_DIR": str(data_dir), "COMMONWATCH_DATABASE_URL": database_url,
                    "COMMONWATCH_SERVE_WORKER_HEADER": "1", "COMMONWATCH_LOG_FORMAT": "json",
                    "COMMONWATCH_MFA_REQUIRED_ROLES": "", **(env or {})}
        self.args = [sys.executable, "-m", "commonwatch.cli", "serve", "--port", str(self.port),
                     "--workers", str(workers), "--jobs" if jobs else "--no-jobs"]
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600, warm: tuple[str, ...] = ("/login",)) -> str:
        """Start the server and return its URL once every worker answers: each one has answered
        /healthz and each of ``warm`` (its first page builds templates and imports pages, which on
        a loaded machine can take longer than a browser test waits for a page)."""
        data_dir = self.log_path.parent
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the server did not start: {self.log_path.read_text()[-3000:]}")
        # The other workers may still be importing: until they listen the kernel hands every
        # connection to those that do. Ask over new connections until each worker has answered
        # every warm-up path.
        answered: dict[str, set[str]] = {}
        with fresh_client(base_url=self.url) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited: {self.log_path.read_text()[-3000:]}")
                for path in ("/healthz", *warm):
                    try:
                        resp = c.get(path)
                    except httpx.HTTPError:
                        continue
                    if resp.status_code == 200:
                        answered.setdefault(resp.headers["x-commonwatch-worker"], set()).add(path)
                done = [pid for pid, paths in answered.items() if len(paths) == 1 + len(warm)]
                if len(done) >= self.workers:
                    return self.url
                time.sleep(0.05)
        raise RuntimeError(f"not every worker answered: {answered} {self.log_path.read_text()[-3000:]}")

    def restart(self) -> None:
        """SIGHUP: the supervisor replaces its workers one by one."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()


def fresh_client(**kwargs) -> httpx.Client:
    """A client that opens a new connection for every request, so requests spread over workers."""
    kwargs.setdefault("timeout", 30)
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), **kwargs)
