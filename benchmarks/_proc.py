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
