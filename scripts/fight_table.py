"""The fight table of docs/results.md: greedy evaluations and training bouts of runs, beside a random policy.

    .venv/bin/python scripts/random_policy.py boxing_ppo --episodes 20 --json > runs/boxing_random.json
    .venv/bin/python scripts/fight_table.py runs/boxing_ppo runs/boxing_ppo_lstm runs/boxing_a2c \
        --random runs/boxing_random.json [--window 100000]

For each experiment (runs grouped by experiment name and algo, seeds pooled): the last greedy evaluation
(`eval/return`, the score margin, and `eval/win_rate`) and the training bouts of the last ``--window`` frames
(sampled actions: `train/episode_return`, `train/episode_win_rate`, points landed and taken), as the mean
over seeds with each seed's value. ``--random`` adds the row of `scripts/random_policy.py --json`. Runs that
have not finished are left out of the table and named under it (``--unfinished`` puts them in).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import numpy as np


def run_row(run, window: float) -> dict:
    """One run's figures: its last greedy evaluation and its training bouts over the last ``window`` frames."""
    from experiments.compare import series, value_at
    from experiments.run import read_history, read_meta

    meta = read_meta(run)
    last = (read_history(run) or [{}])[-1]
    end = float(meta.get("frames") or last.get("frames") or 0)
    row = {"experiment": meta.get("experiment"), "algo": meta.get("algo"), "seed": meta.get("seed"),
           "frames": end, "status": meta.get("status"), "eval_margin": last.get("return"),
           "eval_win_rate": last.get("win_rate")}
    for key, tag in [("train_margin", "train/episode_return"), ("train_win_rate", "train/episode_win_rate"),
                     ("train_for", "train/episode_points_for"), ("train_against", "train/episode_points_against")]:
        row[key] = value_at(*series(run, tag), end, window)  # the mean over (end - window, end]
    return row


def _cell(values, fmt: str) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    each = " / ".join(format(v, fmt) for v in vals)
    return f"**{format(float(np.mean(vals)), fmt)}** ({each})" if len(vals) > 1 else each


def table(rows: list[dict], random: dict | None, window: float) -> str:
    """The markdown table, one line per experiment and algo, seeds in brackets."""
    groups = defaultdict(list)
    for r in sorted(rows, key=lambda r: (r["experiment"], r["seed"])):
        groups[(r["experiment"], r["algo"])].append(r)
    lines = [f"| experiment | seeds | frames | greedy eval: margin | greedy eval: win rate | "
             f"training bouts (last {window:,.0f} frames): margin | win rate | points landed / taken |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (name, algo), rs in groups.items():
        seeds = ", ".join(str(r["seed"]) for r in rs)
        frames = " / ".join(f"{r['frames'] / 1e6:.2f}M" for r in rs)
        pts = "; ".join(f"{r['train_for']:.0f} / {-r['train_against']:.0f}" for r in rs
                         if r["train_for"] is not None and r["train_against"] is not None)
        lines.append(f"| {name} ({algo}) | {seeds} | {frames} | {_cell([r['eval_margin'] for r in rs], '.1f')} | "
                     f"{_cell([r['eval_win_rate'] for r in rs], '.2f')} | "
                     f"{_cell([r['train_margin'] for r in rs], '.1f')} | "
                     f"{_cell([r['train_win_rate'] for r in rs], '.2f')} | {pts or '-'} |")
    if random:
        m = random["mean"]
        lines.append(f"| random policy ({random['episodes']} bouts, the eval protocol) | - | - | "
                     f"{m.get('return', float('nan')):.1f} (std {random.get('return_std', float('nan')):.1f}) | "
                     f"{m.get('win_rate', float('nan')):.2f} | - | - | "
                     f"{m.get('points_for', 0):.0f} / {-m.get('points_against', 0):.0f} |")
    return "\n".join(lines)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    """Print the table (or --json the rows)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", help="run folders or folders holding runs")
    ap.add_argument("--random", help="the JSON of scripts/random_policy.py --json")
    ap.add_argument("--window", type=float, default=100_000)
    ap.add_argument("--unfinished", action="store_true", help="put runs that have not finished in the table")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from experiments.run import find_runs
    from wrappers.errors import UserError, read_json_file

    try:
        rows = [dict(run_row(r, args.window), run=str(r)) for r in find_runs(args.paths)]
        random = read_json_file(args.random, "random-policy result", "Write it with `.venv/bin/python "
                                "scripts/random_policy.py EXPERIMENT --json > FILE`") if args.random else None
    except UserError as e:
        _fail(str(e))
    if not rows:
        _fail(f"no run folders under {', '.join(args.paths)}: give run folders or folders holding them.")
    left = [] if args.unfinished else [r for r in rows if r["status"] != "finished"]
    rows = [r for r in rows if r not in left]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(table(rows, random, args.window))
    for r in left:
        print(f"\nNot in the table: {r['run']} ({r['status']} at {r['frames']:,.0f} frames).")


if __name__ == "__main__":
    main()
