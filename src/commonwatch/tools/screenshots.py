"""Screenshots of the main pages for the README: ``python -m commonwatch.tools.screenshots``.

Loads the demo into a fresh SQLite database in a temporary folder, serves it on a loopback port,
signs in as the demo coordinator in a headless Chromium (Playwright, from the ``test`` extra; the
machine's ``chromium`` or ``COMMONWATCH_CHROMIUM``) and writes one PNG per page and language at
1280 px, plus the incident page at a phone's 390 px, into ``docs/screenshots/`` (or ``--out``).
The PNGs are reduced to a 256-colour palette to keep the repository small.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

#: (file stem, page path); "incident" is the first incident of the list
PAGES = [
    ("overview", "/"),
    ("events", "/events"),
    ("warnings", "/notify"),
    ("incidents", "/incidents"),
    ("incident", "incident"),
    ("reports-dashboard", "/reports/dashboard/coordinator"),
    ("cii", "/cii/systems"),
    ("cooperation", "/cooperation"),
]
LANGUAGES = ("en", "zh-CN")
WIDE = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
COORDINATOR = "coordinator@centre.example"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_binary() -> str:
    """The Chromium to drive: ``COMMONWATCH_CHROMIUM``, else the machine's ``chromium``."""
    path = os.environ.get("COMMONWATCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        sys.exit("screenshots need Chromium: apt-get install chromium, or set COMMONWATCH_CHROMIUM")
    return path


def small_png(png: bytes) -> bytes:
    """The screenshot as a 256-colour PNG (a page is mostly flat colour: a third of the size)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def serve_demo(root: Path):
    """A demo database under ``root`` served on a loopback port: (url, server, thread)."""
    import uvicorn

    os.environ["COMMONWATCH_EVENT_STORE_DIR"] = str(root / "event-store")
    # the throwaway demo signs its coordinator in with the password alone (no second factor to enrol)
    os.environ["COMMONWATCH_MFA_REQUIRED_ROLES"] = ""
    from commonwatch.app import create_app
    from commonwatch.clock import SystemClock
    from commonwatch.config import Settings, get_settings
    from commonwatch.demo import load_demo
    from commonwatch.migrate import upgrade
    from commonwatch.runtime import Runtime

    get_settings.cache_clear()
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'demo.db'}",
                        timezone="Asia/Shanghai", log_format="text")
    clock = SystemClock()
    rt = Runtime(settings, clock)
    upgrade(rt.engine)
    load_demo(rt)
    config = uvicorn.Config(create_app(settings, clock=clock, engine=rt.engine), host="127.0.0.1", port=0,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sys.exit("the demo server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server, thread


def first_incident(page, url: str) -> str:
    """The path of the first incident on the incidents list."""
    page.goto(f"{url}/incidents")
    href = page.locator("main a[href^='/incidents/']").evaluate_all(
        "as => as.map(a => a.getAttribute('href')).filter(h => /^\\/incidents\\/\\d+$/.test(h))")
    if not href:
        sys.exit("the demo has no incident to show")
    return href[0]


def take(out: Path, url: str) -> list[Path]:
    """Sign in, then write every page's screenshot; returns the files written."""
    from playwright.sync_api import sync_playwright

    from commonwatch.demo import DEMO_PASSWORD

    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_binary(), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=WIDE, locale="en-US", timezone_id="Asia/Shanghai")
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/login")
        page.fill("#email", COORDINATOR)
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        incident = first_incident(page, url)
        for lang in LANGUAGES:
            page.goto(f"{url}/lang/{lang}?next=/")
            for stem, path in PAGES:
                page.goto(url + (incident if path == "incident" else path), wait_until="networkidle")
                written.append(out / f"{stem}-{lang}.png")
                written[-1].write_bytes(small_png(page.screenshot()))
        page.goto(f"{url}/lang/en?next={incident}", wait_until="networkidle")
        page.set_viewport_size(PHONE)
        written.append(out / "incident-en-390px.png")
        written[-1].write_bytes(small_png(page.screenshot()))
        page.click("nav.mainnav .navtoggle")
        written.append(out / "menu-en-390px.png")
        written[-1].write_bytes(small_png(page.screenshot()))
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commonwatch.tools.screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNG files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="commonwatch-shots-") as tmp:
        url, server, thread = serve_demo(Path(tmp))
        try:
            files = take(args.out, url)
        finally:
            server.should_exit = True
            thread.join(10)
    for path in files:
        print(f"{path}  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
