"""Run a measurement in a fresh process (one emulator per process) and get its figure back."""

from __future__ import annotations

import multiprocessing as mp
import queue


def run_isolated(target, *args):
    """Call ``target(*args, q)`` in a spawned process; return what it puts on ``q``; raise if it dies."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    try:
        while True:
            try:
                return q.get(timeout=2.0)
            except queue.Empty:
                if not p.is_alive():
                    raise RuntimeError(f"measurement process {target.__name__}{args} died "
                                       f"(exit code {p.exitcode}); its error is above") from None
    finally:
        p.join(timeout=60)


def stamp() -> dict:
    """When and where a measurement ran, for its JSON output: a re-run is held against the same machine."""
    import os
    import platform
    import subprocess
    import time

    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = float("nan")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    from experiments.run import cpu_model

    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{os.cpu_count()} CPUs ({cpu_model()}), {mem:.0f} GiB, "
                       f"{platform.system()} {platform.release()}",
            "load_1min_at_end": round(os.getloadavg()[0], 2), "git_commit": commit or "unknown"}
