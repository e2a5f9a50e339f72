"""Put a finished run into the committed record: ``results/<experiment>/<run>/``.

What goes in is what the run needs to be judged and re-judged, and nothing it needed to train: config.yaml,
meta.json, eval/history.jsonl and eval/results.json, the TensorBoard event files, and the final policy in
the safe formats (NEAT: the champion as JSON; SB3: the policy weights alone, 16-bit with ``--half``, no
optimizer state). No checkpoints, no curriculum states, no videos. ``retrodojo evaluate``, ``compare`` and
``report`` read the copy as they read runs/.

    .venv/bin/python scripts/record_run.py runs/smb_ppo/ppo-s1-... [--half] [--trust-pickles] [--results results]

``--trust-pickles`` reads a final policy an earlier version pickled (only for runs you made yourself). A
record folder that exists already is left alone unless ``--replace``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEEP = ["config.yaml", "meta.json", "eval/history.jsonl", "eval/results.json", "neat.cfg"]


def record(run: Path, results: Path, half: bool = False, trust_pickles: bool = False, replace: bool = False) -> Path:
    """Copy what judging needs of ``run`` into ``results/<experiment>/<run name>/``; returns that folder."""
    from experiments.convert import export_policy
    from experiments.errors import UserError
    from experiments.run import read_meta

    meta = read_meta(run)
    if meta.get("status") not in ("finished", "extinct"):
        raise UserError(f"{run} has status {meta.get('status')!r}: only finished runs go into the record (resume "
                        "it first: retrodojo train --resume RUN).")
    target = results / str(meta.get("experiment") or run.parent.name) / run.name
    if target.exists():
        if not replace:
            raise UserError(f"{target} exists; give --replace to write it again.")
        shutil.rmtree(target)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name in KEEP:
        if (run / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / name, tmp / name)
    if (run / "tb").is_dir():
        shutil.copytree(run / "tb", tmp / "tb")
    export_policy(run, tmp / "final", which="final", half=half, trust_pickles=trust_pickles)
    tmp.replace(target)
    return target


def main() -> int:
    """Record each run given."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--half", action="store_true", help="16-bit policy weights (SB3), a half of the size")
    p.add_argument("--trust-pickles", action="store_true", help="read a final policy an earlier version pickled")
    p.add_argument("--replace", action="store_true")
    args = p.parse_args()
    from experiments.errors import UserError

    try:
        for run in args.runs:
            out = record(run, args.results, args.half, args.trust_pickles, args.replace)
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            print(f"recorded {run} -> {out} ({size / 1024:,.0f} KiB)")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
