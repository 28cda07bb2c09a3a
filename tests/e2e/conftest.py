"""A real server on a loopback port and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import threading
import time

import pytest
import uvicorn

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


class LiveServer:
    def __init__(self, app):
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def e2e_workers() -> int:
    """How many worker processes serve the browser suite: ``COMMONWATCH_E2E_WORKERS`` if set, else
    2 under CI (the suite runs once against the multi-worker server there), else 1 (in process)."""
    configured = os.environ.get("COMMONWATCH_E2E_WORKERS", "")
    if configured:
        return int(configured)
    return 2 if os.environ.get("CI", "").lower() in ("1", "true", "yes") else 1


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "in_process_server: the test changes the served app's state (auth settings on app.state, the "
                   "injected clock's time) while it runs, so its server runs in the test's process")


@pytest.fixture
def live_url(request, app, world, settings):
    """The app on a loopback port: in this process (its injected clock), or with
    :func:`e2e_workers` N > 1 a real ``commonwatch serve --workers N`` on the same database, data
    dir and event store (the system clock, jobs off), except for tests marked ``in_process_server``."""
    workers = e2e_workers()
    if workers > 1 and request.node.get_closest_marker("in_process_server") is None:
        from tests.web.workers import WorkerServer

        multi = WorkerServer(settings.data_dir, settings.effective_database_url, workers=workers, jobs=False,
                             env={"COMMONWATCH_TIMEZONE": settings.timezone})
        url = multi.start()
        yield url
        multi.stop()
        return
    server = LiveServer(app)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US", timezone_id="Asia/Shanghai")
    p = context.new_page()
    p.set_default_timeout(20_000)
    yield p
    context.close()
