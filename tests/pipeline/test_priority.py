"""The ingest runs below the interactive server: every thread of the process takes ``ingest_nice``,
the ones started before the call too (Polars' pool is up by then). Real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from commonwatch.pipeline.demo import samples_dir

PROBE = textwrap.dedent("""
    import threading, os
    from pathlib import Path
    from commonwatch.pipeline.priority import lower_priority
    started, done = threading.Event(), threading.Event()
    def pool_thread():
        started.set()
        done.wait()
    t = threading.Thread(target=pool_thread, daemon=True)  # an error below must not leave it waiting
    t.start()
    started.wait()
    now = lower_priority(int(os.environ["WANT"]))
    later = threading.Thread(target=lambda: print("later", os.getpriority(os.PRIO_PROCESS, 0)))
    later.start(); later.join()
    for tid in sorted(os.listdir("/proc/self/task")):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            policy = os.sched_getscheduler(int(tid))
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended since the listing
            continue
        print("thread", tid, stat.rsplit(")", 1)[1].split()[16])
        print("policy", policy)
    print("now", now)
    done.set(); t.join()
""")


def _nice_of(lines: list[str], kind: str) -> list[int]:
    return [int(ln.split()[-1]) for ln in lines if ln.startswith(kind)]


def test_every_thread_takes_the_niceness():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    want = min(base + 5, 19)
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, "WANT": str(want)}, capture_output=True,
                         text=True, check=True, timeout=120).stdout.splitlines()
    threads = _nice_of(out, "thread")
    assert len(threads) >= 2 and threads == [want] * len(threads)
    assert _nice_of(out, "later") == [want] and _nice_of(out, "now") == [want]
    assert set(_nice_of(out, "policy")) == {os.SCHED_BATCH}  # every thread a batch one


def test_never_raises_the_priority():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, "WANT": "0"}, capture_output=True,
                         text=True, check=True, timeout=120).stdout.splitlines()
    assert _nice_of(out, "now") == [base] and set(_nice_of(out, "thread")) == {base}


def test_the_ingest_command_says_its_niceness(tmp_path):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    env = {**os.environ, "COMMONWATCH_DATA_DIR": str(tmp_path / "data"), "COMMONWATCH_INGEST_NICE": "19"}
    env.pop("COMMONWATCH_DATABASE_URL", None)
    env.pop("COMMONWATCH_EVENT_STORE_DIR", None)
    cmd = [os.path.join(os.path.dirname(sys.executable), "commonwatch")]
    subprocess.run([*cmd, "init"], env=env, check=True, capture_output=True, timeout=300)
    done = subprocess.run([*cmd, "ingest", str(samples_dir() / "threatfox.json"), "--feed", "threatfox"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "running at niceness 19 (ingest_nice)" in done.stderr
    off = subprocess.run([*cmd, "ingest", str(samples_dir() / "threatfox.json"), "--feed", "threatfox"],
                         env={**env, "COMMONWATCH_INGEST_NICE": "0"}, capture_output=True, text=True, timeout=300,
                         check=False)
    assert off.returncode == 0, off.stderr
    assert "niceness" not in off.stderr and base <= 19
