"""Plot NEAT's best progress per generation for one or more runs (the figure in docs/results.md).

    .venv/bin/python scripts/plot_neat_progress.py RUN_DIR [RUN_DIR ...] [--names NAME ...] --out FILE.png

Reads each run's TensorBoard log: ``neat/best_progress`` where the run has it, otherwise the maximum of
``train/episode_progress`` between consecutive generations' frame counts. Prints a table of generation,
minutes and best progress at a few points, and the run's first success if it has one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from experiments.compare import series
from experiments.run import find_runs


def generation_frames(run: Path) -> np.ndarray:
    """The frame count at the end of each generation of a NEAT run."""
    return series(run, "neat/generation")[0]


def best_progress(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generation index, elapsed minutes and best episode progress of each generation of a NEAT run."""
    gen_frames = generation_frames(run)
    frames, best = series(run, "neat/best_progress")
    if len(frames) != len(gen_frames):
        ep_frames, progress = series(run, "train/episode_progress")
        edges = np.concatenate([[0], gen_frames])
        best = np.array([progress[(ep_frames > lo) & (ep_frames <= hi)].max(initial=0.0)
                         for lo, hi in zip(edges[:-1], edges[1:])])
    t_frames, elapsed = series(run, "time/elapsed_s")
    minutes = np.interp(gen_frames, t_frames, elapsed) / 60.0 if len(t_frames) else np.full(len(gen_frames), np.nan)
    return np.arange(len(gen_frames)), minutes, best


def main(argv: list[str] | None = None) -> int:
    """Print the table and write the PNG."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", default="neat_progress.png")
    ap.add_argument("--flag", type=float, default=None,
                    help="draw a line at this progress (SMB's progress is the scroll position: the flagpole is "
                         "reached at 3,000-3,030 on 1-1, so a run's success is marked on its curve instead)")
    ap.add_argument("--names", nargs="*", default=None, help="a legend name for each RUN_DIR argument")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    names = args.names or [None] * len(args.runs)
    runs = [(run, name) for path, name in zip(args.runs, names, strict=True) for run in find_runs([path])]
    succeeded = False
    for run, name in runs:
        gens, minutes, best = best_progress(run)
        meta = json.loads((run / "meta.json").read_text())
        label = f"{name or meta.get('experiment', run.parent.name)}, seed {meta.get('seed', '?')}"
        (line,) = ax.plot(gens, best, lw=1, alpha=0.8, label=label)
        first = meta.get("first_success")
        if first and len(gens):  # the generation whose episodes include the first one at the goal
            g = min(int(np.searchsorted(generation_frames(run), first["frames"])), len(gens) - 1)
            ax.plot(gens[g], best[g], marker="*", ms=12, color=line.get_color(), ls="none")
            succeeded = True
        running = np.maximum.accumulate(best)
        print(f"{run}: {len(gens)} generations, {minutes[-1]:.1f} min, best {running[-1]:.0f}, "
              f"first success {meta.get('first_success')}")
        for g in sorted({len(gens) * k // 4 for k in range(1, 5)}):
            print(f"  generation {g - 1:4d}  {minutes[g - 1]:5.1f} min  best so far {running[g - 1]:.0f}")
    if args.flag is not None:
        ax.axhline(args.flag, color="k", ls="--", lw=0.8, label=f"x {args.flag:,.0f}")
    if succeeded:
        ax.plot([], [], marker="*", ms=10, color="k", ls="none", label="at the flag (the run's first success)")
    ax.set_xlabel("generation")
    ax.set_ylabel("best progress of the generation (x, pixels)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
