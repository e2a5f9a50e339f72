"""The fight table of docs/results.md (its ``fights`` report blocks) for any runs, beside a random policy.

    .venv/bin/python scripts/random_policy.py boxing_ppo --episodes 20 --json > runs/boxing_random.json
    .venv/bin/python scripts/fight_table.py runs/boxing_ppo runs/boxing_ppo_lstm runs/boxing_a2c \
        --random runs/boxing_random.json [--window 100000]

For each experiment (runs grouped by experiment name and algo, seeds pooled): the last evaluation
(`eval/return`, the score margin, and the win rate over its bouts with a 95% Wilson interval; greedy or
sampled actions as the run evaluated) and the training bouts of the last ``--window`` frames (sampled
actions: `train/episode_return`, `train/episode_win_rate`, points landed and taken), as the mean over seeds
with each seed's value (experiments/fights.py). ``--random`` adds the row of `scripts/random_policy.py
--json`. Runs that have not finished are left out of the table and named under it (``--unfinished`` puts
them in).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.fights import run_row, table  # noqa: E402


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
        rows = [run_row(r, args.window) for r in find_runs(args.paths)]
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
    print(table(rows, random, args.window), end="")
    for r in left:
        print(f"\nNot in the table: {r['run']} ({r['status']} at {r['frames']:,.0f} frames).")


if __name__ == "__main__":
    main()
