"""``commonwatch serve`` with several worker processes.

uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``) binds the listening socket once and
starts N worker processes that all accept on it; SIGHUP replaces the workers one at a time, each new
one in service before the old one is told to stop. Every worker builds the app itself from the
settings (``worker_app``).

A stopping worker drops no connection (:class:`GracefulServer`, :class:`GracefulH11Protocol`):

1. it stops polling the listening socket, which stays open in the supervisor and the other workers,
   so connections still in the kernel's queue go to them;
2. it lets every connection its event loop has already accepted become a connection (uvicorn's own
   stop closes the asyncio server at once, and a connection accepted just before that is dropped
   with "Error on transport creation");
3. it answers the request in progress on every connection, and a request that arrives within
   :data:`GRACE_SECONDS` on a connection that holds none yet (just accepted, its bytes not read, or
   an idle keep-alive), each with ``Connection: close``; a connection still idle after that is
   closed.

The periodic jobs run in exactly one process: each worker's lifespan starts a :class:`JobsLeader`,
which holds an exclusive ``flock`` on ``<data dir>/jobs.lock`` while it runs the scheduler. The other
workers retry the lock every few seconds, so when the holder stops (a restart, a crash) another one
takes the jobs over. The lock is per machine: on several machines sharing one database run
``--no-jobs`` on all but one.

Sessions, CSRF tokens, sign-in limits and API tokens live in the database, so any worker answers any
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import multiprocess

log = logging.getLogger("commonwatch.serving")

#: Set by ``serve`` for its workers: run the periodic jobs (one of them, elected by the lock).
JOBS_ENV = "COMMONWATCH_SERVE_JOBS"
#: Tests set it to see which worker answered: every response carries ``X-Commonwatch-Worker: <pid>``.
WORKER_HEADER_ENV = "COMMONWATCH_SERVE_WORKER_HEADER"
WORKER_HEADER = b"x-commonwatch-worker"


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class JobsLeader:
    """Runs the scheduler only while holding the machine-wide jobs lock (one process of many)."""

    def __init__(self, state: Any, lock_path: Path, retry_seconds: float = 2.0):
        self.state = state
        self.lock_path = lock_path
        self.retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._fd: int | None = None
        self._scheduler = None
        self._thread = threading.Thread(target=self._loop, name="commonwatch-jobs-leader", daemon=True)

    @property
    def leading(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        # Try at once, so a single process starts its jobs as it did before there were workers.
        self._try_lead()
        if not self.leading:
            self._thread.start()

    def _try_lead(self) -> bool:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        from commonwatch.scheduler import Scheduler

        self._scheduler = Scheduler.from_capabilities(self.state)
        self._scheduler.start()
        log.info("this worker runs the periodic jobs", extra={"pid": os.getpid()})
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            if self._try_lead():
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self._scheduler is not None:
            self._scheduler.stop()
            self._scheduler = None
        if self._fd is not None:
            os.close(self._fd)  # releases the lock: another worker takes the jobs over
            self._fd = None


class WorkerHeader:
    """ASGI wrapper adding the worker's pid to every response (tests only: it names a process)."""

    def __init__(self, app: Any):
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_pid(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (WORKER_HEADER, self.pid)]}
            await send(message)

        return await self.app(scope, receive, send_with_pid)


def worker_app() -> Any:
    """The app one worker serves (uvicorn calls it in each worker process)."""
    from commonwatch.app import create_app
    from commonwatch.observability import configure_logging
    from commonwatch.runtime import get_runtime

    rt = get_runtime()
    configure_logging(rt.settings.log_level, rt.settings.log_format)
    app = create_app(rt.settings, clock=rt.clock, engine=rt.engine, run_jobs=os.environ.get(JOBS_ENV) == "1")
    if os.environ.get(WORKER_HEADER_ENV) == "1":
        return WorkerHeader(app)
    return app


#: How long a stopping worker waits for the request of a connection it accepted but holds no request
#: of (its bytes not yet arrived, or an idle keep-alive) before closing it.
GRACE_SECONDS = 5.0
CLOSE = (b"connection", b"close")


class GracefulH11Protocol(H11Protocol):
    """uvicorn's h11 protocol whose stop (``shutdown``) closes no connection before answering the
    request on its way."""

    #: Set in a worker once it stops: a connection made after that drains at once.
    stopping = False
    _grace: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if GracefulH11Protocol.stopping:
            self.shutdown()

    def shutdown(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self._last_answer()  # the request in progress is answered, then the connection closed
            return
        # No request in progress: answer one arriving within the grace, then close.
        if self._grace is None:
            self._grace = self.loop.call_later(GRACE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()
        else:
            self._last_answer()

    def _last_answer(self) -> None:
        """The cycle's response is the connection's last: say so (``Connection: close``) if it has not
        started, and close after it."""
        cycle = self.cycle
        if cycle.keep_alive and not cycle.response_started:
            cycle.default_headers = [*cycle.default_headers, CLOSE]
        cycle.keep_alive = False

    def handle_events(self) -> None:
        super().handle_events()
        if self._grace is not None and self.cycle is not None:
            self._last_answer()  # a request during the grace: answered, with Connection: close

    def connection_lost(self, exc) -> None:
        if self._grace is not None:
            self._grace.cancel()
        super().connection_lost(exc)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, stopping as the module's docstring says; on a socket shared with other
    workers it takes one connection at a time (:meth:`_share_connections`)."""

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if sockets is not None and self.config.workers > 1:
            self._share_connections(sockets)

    def _share_connections(self, sockets) -> None:
        """Accept one connection per turn of the event loop instead of asyncio's up to ``backlog``
        (2048) at once. Every worker polls the shared socket; with asyncio's batch the first worker
        woken took every waiting connection (fifty clients connecting together all went to one
        worker, and kept-alive they stayed there while the other worker idled). One at a time, the
        workers take turns: a busy worker's loop comes round later, so the less busy one takes more."""
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(config=config, server_state=self.server_state,
                                              app_state=self.lifespan.state)

        def accept_one(sock) -> None:
            try:
                conn, _peer = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # another worker took it, or the client left
            except OSError as exc:  # out of file descriptors, say: the next turn tries again
                log.warning("accept failed", extra={"error": str(exc)})
                return
            conn.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(protocol, conn))
            self._accepting.add(task)
            task.add_done_callback(self._accepting.discard)

        self._accepting: set[asyncio.Task] = set()
        for sock in sockets:
            loop.remove_reader(sock.fileno())
            loop.add_reader(sock.fileno(), accept_one, sock)

    async def shutdown(self, sockets=None) -> None:
        loop = asyncio.get_running_loop()
        for server in self.servers:
            for sock in server.sockets or ():
                loop.remove_reader(sock.fileno())  # stop accepting; the socket stays open elsewhere
        GracefulH11Protocol.stopping = True
        # Connections accepted in the loop's last turn become transports, then connections
        # (connection_made is called soon after): let them, before the asyncio server closes.
        for _ in range(3):
            await asyncio.sleep(0)
        await super().shutdown(sockets)


class GracefulProcess(multiprocess.Process):
    """A supervisor's worker running :class:`GracefulServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GracefulServer(config=self.config)
        return self._server


def serve(host: str, port: int, workers: int, jobs: bool) -> None:
    """Serve on ``host:port`` with ``workers`` processes (1: in this process, as before)."""
    os.environ[JOBS_ENV] = "1" if jobs else "0"
    common = {"host": host, "port": port, "log_config": None, "proxy_headers": False,
              "timeout_graceful_shutdown": 30, "http": GracefulH11Protocol, "loop": "asyncio"}
    if workers <= 1:
        server = GracefulServer(uvicorn.Config(worker_app(), **common))
        server.run()
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
        return
    # A worker imports every capability before it answers the supervisor's health check: give it time.
    config = uvicorn.Config("commonwatch.serving:worker_app", factory=True, workers=workers,
                            timeout_worker_healthcheck=300, **common)
    # uvicorn's supervisor makes its workers with its module's ``Process``: make them graceful ones
    # (this process is the supervisor and nothing else).
    multiprocess.Process = GracefulProcess
    multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
