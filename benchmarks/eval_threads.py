"""What one evaluation step's forward pass costs at each torch thread count, idle and beside a busy process.

    python benchmarks/eval_threads.py [--steps 300] [--json]

An evaluation asks the policy for one action at a time (batch 1). This times SB3's Nature CNN (the pixel
policies' feature extractor) on one 4x84x84 observation with 1 thread and with every core, first on the
machine as it is, then with one busy-looping process per core beside it (what a training run's env workers
and learner are to an evaluation). Prints milliseconds per forward pass (median of 5 rounds) and the
1-minute load average. experiments/evaluate.py plays on one thread because of these figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._proc import stamp  # noqa: E402


def _spin(stop) -> None:
    """Burn one core until ``stop`` is set."""
    while not stop.is_set():
        sum(range(10_000))


def forward_ms(threads: int, steps: int) -> float:
    """Median milliseconds of one batch-1 Nature CNN forward pass on ``threads`` threads (5 rounds)."""
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3.common.torch_layers import NatureCNN

    torch.manual_seed(0)
    net = NatureCNN(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), 512)
    x = torch.rand(1, 4, 84, 84)
    torch.set_num_threads(threads)
    rounds = []
    with torch.no_grad():
        for _ in range(20):
            net(x)
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(steps):
                net(x)
            rounds.append((time.perf_counter() - t0) / steps * 1000)
    return statistics.median(rounds)


def main(argv=None) -> int:
    """Print the table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="forward passes a round")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    counts = sorted({1, cores})
    rows = []
    for busy in (0, cores):
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        try:
            time.sleep(1.0 if busy else 0.0)
            for n in counts:
                ms = forward_ms(n, args.steps)
                rows.append({"busy_processes": busy, "threads": n, "ms_per_forward": round(ms, 3),
                             "load_1min": round(os.getloadavg()[0], 2)})
        finally:
            stop.set()
            for p in spinners:
                p.join()
    if args.json:
        print(json.dumps({**stamp(), "rows": rows}, indent=1))
        return 0
    print(f"{'busy processes':>15} {'threads':>8} {'ms/forward':>11} {'load':>6}")
    for r in rows:
        print(f"{r['busy_processes']:>15} {r['threads']:>8} {r['ms_per_forward']:>11.2f} {r['load_1min']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
