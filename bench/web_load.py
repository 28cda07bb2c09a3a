#!/usr/bin/env python3
"""The web tier under load: wrk against `commonwatch serve --workers W` and `--workers 1` in one run.

    .venv/bin/python bench/web_load.py [--connections 50] [--seconds 15] [--events 1000000]
                                       [--workers 0 (one per core)] [--keep DIR]

Loads the demo into a fresh data dir (SQLite, the Parquet event store: the defaults), ingests N
events of a Shadowserver scan_http report inside the demo's networks, then for each server (the
multi-worker one, then the single process) drives four paths with wrk (C connections, 2 threads,
S seconds each) on loopback:

- ``/api/v1/events?limit=50`` with an admin's API token,
- ``/events`` signed in (an admin's session cookie),
- ``/warnings`` signed in as a constituent,
- ``/`` (the overview) signed in as an admin,

after a few requests to each path (a warm-up, not measured), first idle, then while another N-row
ingest runs beside it (``commonwatch ingest``, a process of its own; the phase ends when wrk ends,
the ingest is stopped if it is still running). Prints
requests/s, p50 and p99 and errors (non-2xx, socket errors) for each, and the multi-worker
figure over the single-process one and over the issue's single-process figure (74 req/s).

Both servers run with ``--no-jobs`` unless ``--jobs``: the notifications for a million ingested
events would otherwise run in one worker throughout, a workload of its own beside the reads.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WRK = shutil.which("wrk") or "/usr/bin/wrk"
#: The demo's IPv4 networks (constituency/demo.py): every event lands in a constituent's network.
DEMO_NETS = ("198.51.100.0", "198.18.0.0", "192.0.2.0")
#: Issue 22's measurement of the single-process server (one worker, before this work) on this
#: machine: /api/v1/events?limit=50, wrk -t2 -c50 -d45s, demo plus 1,000,000 events.
ISSUE_API_RPS = 74.0


def log(msg: str) -> None:
    print(f"[web_load] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_report(path: Path, rows: int, seed: int, day: str) -> None:
    """A scan_http report of ``rows`` distinct observations (address, port) inside the demo networks."""
    import polars as pl

    rng = np.random.default_rng(seed)
    bases = np.array([int.from_bytes(socket.inet_aton(n), "big") for n in DEMO_NETS], dtype=np.int64)
    # distinct (address, port) pairs: 3 x 256 addresses x 60,000 ports is room for 46M rows
    pair = rng.choice(3 * 256 * 60_000, size=rows, replace=False)
    ip = bases[pair // (256 * 60_000)] + (pair // 60_000) % 256
    port = 1024 + pair % 60_000
    dotted = [socket.inet_ntoa(int(v).to_bytes(4, "big")) for v in ip]
    secs = rng.integers(0, 86400, rows)
    base = int(time.mktime(time.strptime(day, "%Y-%m-%d"))) - time.timezone
    frame = pl.DataFrame({
        "timestamp": pl.Series((secs + base) * 1_000_000).cast(pl.Datetime("us")).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "ip": dotted, "port": port, "hostname": [""] * rows, "tag": ["http"] * rows, "asn": [""] * rows,
        "geo": ["CN"] * rows, "region": [""] * rows, "city": [""] * rows, "naics": [0] * rows, "sic": [0] * rows,
        "http": ["HTTP/1.1"] * rows, "http_code": [200] * rows, "http_reason": ["OK"] * rows,
        "content_type": ["text/html"] * rows, "connection": ["close"] * rows, "www_authenticate": [""] * rows,
        "set_cookie": [""] * rows, "server": np.array(["nginx", "Apache/2.4.41", "Boa/0.94.14rc21"])[secs % 3],
        "content_length": rng.integers(100, 90000, rows), "transfer_encoding": [""] * rows,
        "http_date": ["Tue, 24 Nov 2026 01:00:00 GMT"] * rows, "sector": [""] * rows, "severity": ["medium"] * rows})
    frame.write_csv(path)


def cli(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "commonwatch"), *args], env=env, capture_output=True, text=True, check=True,
                          **kw)


def sign_ins(demo_output: str) -> dict[str, tuple[str, str]]:
    """role -> (email, password) from `commonwatch demo`'s listing."""
    found: dict[str, tuple[str, str]] = {}
    for line in demo_output.splitlines():
        parts = line.split()
        if len(parts) == 3 and "@" in parts[1]:
            found.setdefault(parts[0], (parts[1], parts[2]))
    return found


def session_cookie(url: str, email: str, password: str) -> str:
    """A signed-in session; tried a few times (a sign-in writes, and on SQLite the ingest of the
    phase before may still hold the write lock for a moment)."""
    status = 0
    for _attempt in range(10):
        with httpx.Client(base_url=url, timeout=60) as c:
            page = c.get("/login")
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            resp = c.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": "/"})
            if resp.status_code == 303:
                return resp.cookies["cw_session"]
            status = resp.status_code
        time.sleep(3)
    raise RuntimeError(f"sign-in of {email} failed: {status}")


class Server:
    def __init__(self, env: dict[str, str], workers: int, jobs: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(env["COMMONWATCH_DATA_DIR"]).parent / f"serve-{workers}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([str(BIN / "commonwatch"), "serve", "--port", str(self.port),
                                      "--workers", str(workers), "--jobs" if jobs else "--no-jobs"], env=env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("the server did not start")
        # every worker up: wait until as many distinct pids have answered
        seen: set[int] = set()
        with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=10) as c:
            while len(seen) < workers and time.monotonic() < deadline:
                seen.add(c.get(f"{self.url}/healthz").json()["worker"])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def warm_up(url: str, paths: list[tuple[str, str, str]], workers: int) -> None:
    """A few requests to each path on fresh connections, so every worker has loaded its templates
    and read the store once before wrk's clock starts (not measured)."""
    with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_keepalive_connections=0)) as c:
        for _name, path, header in paths:
            key, _sep, value = header.partition(": ")
            for _ in range(3 * workers):
                c.get(path, headers={key: value})


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else float("nan")


def worker_cpu(server: Server) -> dict[int, float]:
    """CPU seconds used so far by each worker process of ``server`` (its children; the process
    itself when it has none: one worker)."""
    pids = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    out: dict[int, float] = {}
    for pid in pids or [str(server.proc.pid)]:
        try:
            if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue  # multiprocessing's helper, not a worker
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(pid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def cpu_shares(before: dict[int, float], after: dict[int, float]) -> str:
    """Each worker's CPU seconds in a phase: equal shares mean the connections were spread."""
    return "/".join(f"{after[p] - before.get(p, 0.0):.1f}" for p in sorted(after))


def run_wrk(url: str, header: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run([WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                          "-H", header, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    if not rps:  # nothing answered within the run: no latency to state
        return {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": errors}
    return {"rps": rps, "p50": _ms(p50.group(1)) if p50 else float("nan"),
            "p99": _ms(p99.group(1)) if p99 else float("nan"), "errors": errors}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=0, help="the multi-worker server's workers (0: one per core)")
    ap.add_argument("--keep", type=Path, help="use (and keep) this data dir instead of a temporary one")
    ap.add_argument("--skip-ingest", action="store_true", help="only the idle phase")
    ap.add_argument("--jobs", action="store_true",
                    help="let the servers run the periodic jobs too (by default not: the notifications for the "
                         "ingested rows would run in one worker throughout, another workload than the reads)")
    ap.add_argument("--prepare-only", action="store_true", help="load the demo and the events into --keep, no load")
    args = ap.parse_args()
    if not Path(WRK).exists():
        print("bench/web_load.py needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    from commonwatch.serving import default_workers

    workers = args.workers or default_workers()
    load_start = _loadavg()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cw-webload-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "COMMONWATCH_DATA_DIR": str(work / "data"), "COMMONWATCH_MFA_REQUIRED_ROLES": "",
           "COMMONWATCH_LOG_LEVEL": "WARNING", "COMMONWATCH_LOGIN_MAX_FAILURES": "1000"}
    env.pop("COMMONWATCH_EVENT_STORE_DIR", None)
    env.pop("COMMONWATCH_DATABASE_URL", None)
    try:
        t0 = time.perf_counter()
        listing = work / "demo-sign-ins.txt"
        if args.keep and listing.exists():  # a kept data dir: the demo is in it already
            demo_output = listing.read_text()
        else:
            demo = cli(env, "demo")
            demo_output = demo.stdout + demo.stderr
            listing.write_text(demo_output)
        people = sign_ins(demo_output)
        admin, constituent = people["admin"], people["constituent"]
        log(f"demo loaded ({time.perf_counter() - t0:.0f}s); sign-ins: {admin[0]}, {constituent[0]}")
        loaded = work / "loaded"
        if not loaded.exists():
            report = work / "2026-11-24-scan_http-demo-geo.csv"
            write_report(report, args.events, seed=1, day="2026-11-24")
            t0 = time.perf_counter()
            cli(env, "ingest", str(report), "--feed", "shadowserver")
            log(f"{args.events:,} events ingested in {time.perf_counter() - t0:.0f}s")
            loaded.touch()
        ingests = 0
        if args.prepare_only:
            return 0
        token = cli(env, "token", "create", admin[0], "--name", "web_load").stdout.strip()
        results: dict[tuple[int, str, str], dict[str, float]] = {}
        for w in (workers, 1):
            server = Server(env, w, jobs=args.jobs)
            try:
                admin_cookie = f"Cookie: cw_session={session_cookie(server.url, *admin)}"
                paths = [("events API", "/api/v1/events?limit=50", f"Authorization: Bearer {token}"),
                         ("events page", "/events", admin_cookie),
                         ("warnings (constituent)", "/warnings",
                          f"Cookie: cw_session={session_cookie(server.url, *constituent)}"),
                         ("overview", "/", admin_cookie)]
                warm_up(server.url, paths, w)
                for name, path, header in paths:
                    cpu0 = worker_cpu(server)
                    results[(w, "idle", name)] = run_wrk(server.url + path, header, args.connections, args.seconds)
                    log(f"workers={w} idle {name}: {results[(w, 'idle', name)]}, worker CPU s "
                        f"{cpu_shares(cpu0, worker_cpu(server))}")
                if not args.skip_ingest:
                    for name, path, header in paths:
                        # new rows each time (another day): an ingest of the same rows would store nothing
                        ingests += 1
                        day = time.strftime("%Y-%m-%d", time.gmtime(time.mktime((2026, 11, 24 + ingests, 12, 0, 0,
                                                                                  0, 0, 0))))
                        report = work / f"{day}-scan_http-demo-geo.csv"
                        write_report(report, args.events, seed=100 + ingests, day=day)
                        # as docs/install.md runs it: the ingest lowers its own priority (ingest_nice)
                        ingest = subprocess.Popen([str(BIN / "commonwatch"), "ingest", str(report), "--feed",
                                                   "shadowserver"], env=env,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        time.sleep(2)  # past its start-up, into the rows
                        cpu0 = worker_cpu(server)
                        results[(w, "ingest", name)] = run_wrk(server.url + path, header, args.connections,
                                                               args.seconds)
                        shares = cpu_shares(cpu0, worker_cpu(server))
                        still = ingest.poll() is None
                        if still:
                            ingest.send_signal(signal.SIGINT)
                        ingest.wait(120)
                        log(f"workers={w} during ingest {name}: {results[(w, 'ingest', name)]}, worker CPU s {shares}"
                            f"{'' if still else ' (the ingest ended before wrk did)'}")
            finally:
                server.stop()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nweb_load: {args.events:,} events, wrk -t2 -c{args.connections} -d{args.seconds}s, "
          f"{workers} workers against 1 (os.cpu_count()={os.cpu_count()}); load average at the start "
          f"{load_start}, at the end {_loadavg()}")
    from commonwatch.config import Settings

    nice = Settings(data_dir=work / "data").ingest_nice
    print(f"the ingest beside the load: `commonwatch ingest` as docs/install.md runs it, at niceness {nice} "
          f"(ingest_nice; COMMONWATCH_INGEST_NICE), in the same scheduling group as the servers")
    print(f"{'phase':<7} {'path':<24} {'req/s W':>9} {'p50 ms':>8} {'p99 ms':>8} {'err':>4} | "
          f"{'req/s 1':>8} {'p50 ms':>8} {'p99 ms':>8} {'err':>4} | {'x req/s':>7} {'p99 ratio':>9}")
    for (w, phase, name), r in results.items():
        if w != workers:
            continue
        one = results[(1, phase, name)]
        print(f"{phase:<7} {name:<24} {r['rps']:>9.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>4} | "
              f"{one['rps']:>8.1f} {one['p50']:>8.1f} {one['p99']:>8.1f} {one['errors']:>4} | "
              f"{_ratio(r['rps'], one['rps']):>7.2f} {_ratio(r['p99'], one['p99']):>9.2f}")
    multi = [r for (w, phase, _n), r in results.items() if w == workers and phase == "ingest"]
    ratios = [_ratio(r["rps"], results[(1, p, n)]["rps"]) for (w, p, n), r in results.items() if w == workers]
    if multi:
        worst = "none answered on a path" if any(not r["rps"] for r in multi) else \
            f"{max(r['p99'] for r in multi):.0f} ms"
        print(f"RESULT worst p99 during the ingest {worst} (goal <= 300 ms), "
              f"errors {sum(r['errors'] for r in results.values())} (goal 0), "
              f"lowest req/s ratio {min(ratios):.2f} against the same run's single process")
    api = [(p, r["rps"]) for (w, p, n), r in results.items() if w == workers and n == "events API"]
    if api:
        print("RESULT events API against the issue's single-process figure (74 req/s, on this machine): "
              + ", ".join(f"{p} {rps:.1f} req/s = {rps / ISSUE_API_RPS:.1f}x" for p, rps in api) + " (goal >= 4x)")
    if workers > 1 and ratios:
        # throughput per added core: (W-worker / 1-worker - 1) / (W - 1); the goal is >= 0.8
        per_core = [(r - 1) / (workers - 1) for r in ratios if r == r]
        if per_core:
            print(f"RESULT per added core: {min(per_core):.2f}-{max(per_core):.2f}x of one process's throughput "
                  f"(goal >= 0.8; os.cpu_count()={os.cpu_count()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
