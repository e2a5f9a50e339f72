"""Put a finished run into the committed record: ``results/<experiment>/<run>/``.

What goes in is what the run needs to be judged and re-judged, and nothing it needed to train: config.yaml,
meta.json, eval/history.jsonl and eval/results.json, the TensorBoard event files, and the final policy (and
``best/``, the best evaluation's, when the run kept one) in the safe formats (NEAT: the champion as JSON; SB3:
the policy weights alone, 16-bit with ``--half``, no optimizer state). No checkpoints, no curriculum states,
no videos. A TensorBoard tag logged more than ``--max-points`` times (NEAT logs every genome's episode:
~200,000 points, 12 MB, in an hour) keeps that many points, evenly spaced over the run; meta.json's
``record_thinned`` says which tags and from how many, and everything else (eval/*, neat/*, curriculum/*,
time/*) is kept point for point. ``retrodojo evaluate``, ``compare`` and ``report`` read the copy as they read
runs/.

    .venv/bin/python scripts/record_run.py runs/smb_ppo/ppo-s1-... [--half] [--trust-pickles] [--results results]
        [--max-points 4000]

``--trust-pickles`` reads a final policy an earlier version pickled (only for runs you made yourself). A
record folder that exists already is left alone unless ``--replace``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_POINTS = 4000
KEEP = ["config.yaml", "meta.json", "eval/history.jsonl", "eval/results.json", "neat.cfg"]


def thin_events(src: Path, dst: Path, max_points: int = MAX_POINTS) -> dict[str, list[int]]:
    """Copy the TensorBoard event files under ``src`` to ``dst``, each tag kept to ``max_points`` points.

    A tag with more points keeps ``max_points`` of them, evenly spaced by index (the first and last
    included), with their steps and wall times; every other event is copied byte for byte. Returns
    ``{tag: [kept, logged]}`` for the thinned tags.
    """
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    thinned: dict[str, list[int]] = {}
    for f in sorted(src.rglob("events.out.tfevents.*")):
        raw = list(RawEventFileLoader(str(f)).Load())
        events = [event_pb2.Event.FromString(b) for b in raw]
        counts = Counter(v.tag for e in events for v in e.summary.value)
        keep = {tag: set(np.linspace(0, n - 1, max_points).round().astype(int).tolist())
                for tag, n in counts.items() if n > max_points}
        seen: Counter = Counter()
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = RecordWriter(out.open("wb"))
        for data, e in zip(raw, events):
            values = list(e.summary.value)
            kept = []
            for v in values:
                if v.tag not in keep or seen[v.tag] in keep[v.tag]:
                    kept.append(v)
                seen[v.tag] += 1
            if values and not kept:
                continue
            if len(kept) != len(values):
                del e.summary.value[:]
                e.summary.value.extend(kept)
                data = e.SerializeToString()
            writer.write(data)
        writer.close()
        for tag in keep:
            k, n = thinned.get(tag, [0, 0])
            thinned[tag] = [k + len(keep[tag]), n + counts[tag]]
    return thinned


def record(run: Path, results: Path, half: bool = False, trust_pickles: bool = False, replace: bool = False,
           max_points: int = MAX_POINTS) -> Path:
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
        thinned = thin_events(run / "tb", tmp / "tb", max_points)
        if thinned:
            meta_file = tmp / "meta.json"
            recorded = json.loads(meta_file.read_text())
            recorded["record_thinned"] = {"max_points": max_points, "tags": thinned}
            meta_file.write_text(json.dumps(recorded, indent=2) + "\n")
    export_policy(run, tmp / "final", which="final", half=half, trust_pickles=trust_pickles)
    if (run / "best" / "agent.json").is_file():  # checkpoint.keep_best: the policy of the best evaluation
        export_policy(run, tmp / "best", which="best", half=half, trust_pickles=trust_pickles)
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
    p.add_argument("--max-points", type=int, default=MAX_POINTS, help="most points kept of one TensorBoard tag")
    args = p.parse_args()
    if args.max_points < 2:
        p.error(f"--max-points {args.max_points}: keep at least 2 points of a tag (its first and last)")
    from experiments.errors import UserError

    try:
        for run in args.runs:
            out = record(run, args.results, args.half, args.trust_pickles, args.replace, args.max_points)
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            print(f"recorded {run} -> {out} ({size / 1024:,.0f} KiB)")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
