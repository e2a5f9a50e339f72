"""Put a finished run into the committed record: ``results/<experiment>/<run>/``.

What goes in is what the run needs to be judged and re-judged, and nothing it needed to train: config.yaml,
meta.json, eval/history.jsonl and eval/results.json, the TensorBoard event files, and the final policy (and
``best/``, the best evaluation's, when the run kept one) in the safe formats (NEAT: the champion as JSON; SB3:
the policy weights alone, 16-bit with ``--half``, no optimizer state). No checkpoints, no curriculum states,
no videos. A TensorBoard tag logged more than ``--max-points`` times (NEAT logs every genome's episode:
~200,000 points, 12 MB, in an hour) keeps that many points, evenly spaced over the run. The tags judging
reads (eval/*, train/episode_*, curriculum/*, neat/*) keep up to ``--max-points``; the learner's diagnostics
(SB3's losses under train/, rollout/*, time/*, reward/*, actions/*) keep up to ``--diagnostic-points``: they
were half of the record's bytes, and 500 points draw their curves as well. meta.json's ``record_thinned``
says which tags and from how many; a tag under its limit is kept point for point. ``retrodojo evaluate``,
``compare`` and ``report`` read the copy as they read runs/.

    .venv/bin/python scripts/record_run.py runs/smb_ppo/ppo-s1-... [--half] [--trust-pickles] [--results results]
        [--max-points 4000] [--diagnostic-points 500]
    .venv/bin/python scripts/record_run.py --rethin results/*/*/   # a recorded run's tb/ to today's limits

``--trust-pickles`` reads a final policy an earlier version pickled (only for runs you made yourself). A
record folder that exists already is left alone unless ``--replace``. ``--no-policy`` records a run that
saved no retrodojo policy (benchmarks/atari_parity.py's reference side trains SB3 on another stack): its
curves and evaluations only, and meta.json's ``record_policy`` says so.

``--strip-policy --why TEXT`` takes the policies (final/ and best/) out of recorded runs whose claims rest on
their curves and evaluations alone, to keep results/ in its budget (results/README says which and why);
meta.json's ``record_policy`` becomes null and ``record_policy_note`` keeps the reason, which ``retrodojo
evaluate`` prints. ``--strip-best --why TEXT`` takes out best/ alone (say, when its fresh evaluation is no
better than the final policy's, which final/ keeps): ``record_best`` becomes null and ``record_best_note``
keeps the reason, which ``--checkpoint best`` prints.

A best/ policy (``checkpoint.keep_best``) that is the final one, tensor for tensor, is stored once: record
drops it and meta.json's ``record_best`` says "final", so ``--checkpoint best`` reads final/.
``--dedupe-best`` does the same to recorded folders.
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
DIAGNOSTIC_POINTS = 500
BUDGET_MIB = 100  # issue 20: the whole of results/
JUDGED = ("eval/", "train/episode_", "curriculum/", "neat/")
KEEP = ["config.yaml", "meta.json", "eval/history.jsonl", "eval/results.json", "neat.cfg"]


def tag_limit(tag: str, max_points: int = MAX_POINTS, diagnostic_points: int = DIAGNOSTIC_POINTS) -> int:
    """The most points the record keeps of ``tag``: ``max_points`` for what judging reads, else fewer."""
    return max_points if tag.startswith(JUDGED) else min(max_points, diagnostic_points)


def thin_events(src: Path, dst: Path, max_points: int = MAX_POINTS,
                diagnostic_points: int = DIAGNOSTIC_POINTS) -> dict[str, list[int]]:
    """Copy the TensorBoard event files under ``src`` to ``dst``, each tag kept to its ``tag_limit``.

    A tag with more points keeps that many of them, evenly spaced by index (the first and last included),
    with their steps and wall times; every other event is copied byte for byte. Returns
    ``{tag: [kept, logged]}`` for the thinned tags.
    """
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    thinned: dict[str, list[int]] = {}
    for f in sorted(src.rglob("events.out.tfevents.*")):
        raw = list(RawEventFileLoader(str(f)).Load())
        if not raw and f.stat().st_size:  # the loader skips what it cannot read: nothing read is not an event file
            from experiments.errors import UserError

            raise UserError(f"{f} is not a TensorBoard event file (no event could be read from its "
                            f"{f.stat().st_size:,} bytes): restore it from the run's copy, or remove it.")
        events = [event_pb2.Event.FromString(b) for b in raw]
        counts = Counter(v.tag for e in events for v in e.summary.value)
        limits = {tag: tag_limit(tag, max_points, diagnostic_points) for tag in counts}
        keep = {tag: set(np.linspace(0, n - 1, limits[tag]).round().astype(int).tolist())
                for tag, n in counts.items() if n > limits[tag]}
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


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 if it does not exist)."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0


def budget_folder(results: Path) -> Path:
    """The folder the budget holds: the repository's results/ for any folder inside it (results/parity is
    part of results/), else ``results`` itself."""
    results, repo = Path(results).resolve(), (ROOT / "results").resolve()
    return repo if results == repo or repo in results.parents else results


def _within_budget(tmp: Path, target: Path, results: Path, budget_mib: float) -> None:
    from experiments.errors import UserError

    results = budget_folder(results)
    after = folder_bytes(results) - folder_bytes(target)  # tmp is under results/ already; a replaced record goes
    if after > budget_mib * 2**20:
        raise UserError(f"recording {target.name} would put {results} at {after / 2**20:.1f} MiB, over its budget "
                        f"of {budget_mib:g} MiB (issue 20); nothing was written. Make room first: results/README says "
                        "which runs keep curves only (scripts/record_run.py --strip-policy --why ...), or record "
                        "this one with --no-policy if its policy is not needed, or raise --budget-mib knowingly.")


def record(run: Path, results: Path, half: bool = False, trust_pickles: bool = False, replace: bool = False,
           max_points: int = MAX_POINTS, diagnostic_points: int = DIAGNOSTIC_POINTS, policy: bool = True,
           budget_mib: float = BUDGET_MIB) -> Path:
    """Copy what judging needs of ``run`` into ``results/<experiment>/<run name>/``; returns that folder."""
    from experiments.errors import UserError
    from experiments.run import read_meta

    meta = read_meta(run)
    if meta.get("status") not in ("finished", "extinct"):
        raise UserError(f"{run} has status {meta.get('status')!r}: only finished runs go into the record (resume "
                        "it first: retrodojo train --resume RUN).")
    if policy and not (run / "final").exists():
        raise UserError(f"{run} has no final/ policy. Record a run that saved none (a reference stack's, such as "
                        "benchmarks/atari_parity.py --side reference) with --no-policy.")
    if not policy and (run / "final").exists():
        raise UserError(f"{run} saved a final policy: record it with the policy (leave out --no-policy).")
    target = results / str(meta.get("experiment") or run.parent.name) / run.name
    if target.exists() and not replace:
        raise UserError(f"{target} exists; give --replace to write it again.")
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:  # built beside the record and swapped in whole: a failure leaves the record as it was
        _build(run, tmp, max_points, diagnostic_points, policy, half, trust_pickles)
        _within_budget(tmp, target, results, budget_mib)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    try:
        tmp.rename(target)
    except BaseException:
        if old.exists():
            old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


def _build(run: Path, tmp: Path, max_points: int, diagnostic_points: int, policy: bool, half: bool,
           trust_pickles: bool) -> None:
    from experiments.convert import export_policy

    for name in KEEP:
        if (run / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / name, tmp / name)
    meta_file = tmp / "meta.json"
    recorded = json.loads(meta_file.read_text())
    if (run / "tb").is_dir():
        thinned = thin_events(run / "tb", tmp / "tb", max_points, diagnostic_points)
        if thinned:
            recorded["record_thinned"] = {"max_points": max_points, "diagnostic_points": diagnostic_points,
                                          "tags": thinned}
    if not policy:
        recorded["record_policy"] = None
    meta_file.write_text(json.dumps(recorded, indent=2) + "\n")
    if policy:
        export_policy(run, tmp / "final", which="final", half=half, trust_pickles=trust_pickles)
        if (run / "best" / "agent.json").is_file():  # checkpoint.keep_best: the policy of the best evaluation
            export_policy(run, tmp / "best", which="best", half=half, trust_pickles=trust_pickles)
            dedupe_best(tmp)


def same_policy(a: Path, b: Path) -> bool:
    """Whether the saved agents in ``a`` and ``b`` hold one policy: the same files, equal JSON, equal tensors
    (a safetensors file's header may order them differently) and equal bytes elsewhere."""
    from safetensors.numpy import load_file

    names = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file())
    if names != sorted(f.relative_to(b) for f in b.rglob("*") if f.is_file()):
        return False
    for name in names:
        x, y = a / name, b / name
        try:
            if name.suffix == ".json":
                same = json.loads(x.read_text()) == json.loads(y.read_text())
            elif name.suffix == ".safetensors":
                tx, ty = load_file(x), load_file(y)
                same = tx.keys() == ty.keys() and all(
                    tx[k].dtype == ty[k].dtype and np.array_equal(tx[k], ty[k]) for k in tx)
            else:
                same = x.read_bytes() == y.read_bytes()
        except Exception:  # noqa: BLE001 - an unreadable file is not shown to be the same policy
            return False
        if not same:
            return False
    return True


def dedupe_best(recorded: Path, check_only: bool = False) -> int:
    """Drop a recorded run's best/ when it holds the final policy, saying so in meta.json (``record_best``:
    "final"), so that ``--checkpoint best`` reads final/; returns the bytes freed (0: nothing to drop;
    ``check_only``: the bytes it would free, nothing touched)."""
    from experiments.run import _write_json_atomic, read_meta

    best, final = recorded / "best", recorded / "final"
    if not (best.is_dir() and final.is_dir() and same_policy(best, final)):
        return 0
    meta = read_meta(recorded)  # a corrupt one is a UserError before anything is touched
    freed = folder_bytes(best)
    if check_only:
        return freed
    meta["record_best"] = "final"
    _write_json_atomic(recorded / "meta.json", meta)  # said first: a kill before the rmtree leaves both, true
    shutil.rmtree(best)
    return freed


def rethin(recorded: Path, max_points: int = MAX_POINTS, diagnostic_points: int = DIAGNOSTIC_POINTS) -> dict:
    """Thin a recorded run's ``tb/`` in place to today's limits; meta.json's ``record_thinned`` keeps each
    tag's count as logged during training, not as first recorded. Returns the new ``record_thinned``."""
    from experiments.run import read_meta

    meta_file = recorded / "meta.json"
    meta = read_meta(recorded)  # a corrupt one is a UserError that says so
    before = (meta.get("record_thinned") or {}).get("tags", {})
    tmp = recorded / ".tb.rethin"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        now = thin_events(recorded / "tb", tmp, max_points, diagnostic_points)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tags = {tag: [kept, before.get(tag, [0, logged])[1]] for tag, (kept, logged) in now.items()}
    tags.update({tag: v for tag, v in before.items() if tag not in tags})
    meta["record_thinned"] = {"max_points": max_points, "diagnostic_points": diagnostic_points, "tags": tags}
    old = recorded / ".tb.old"
    shutil.rmtree(old, ignore_errors=True)
    (recorded / "tb").rename(old)  # swapped whole, so a kill leaves either the old tb/ or the new one
    tmp.rename(recorded / "tb")
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(old)
    return meta["record_thinned"]


def strip_policy(recorded: Path, why: str, check_only: bool = False, best_only: bool = False) -> int:
    """Take final/ and best/ (``best_only``: best/ alone) out of a recorded run and say why in its meta.json;
    returns the bytes freed (``check_only``: the bytes it would free, nothing touched)."""
    from experiments.errors import UserError
    from experiments.run import _write_json_atomic, read_meta

    flag = "--strip-best" if best_only else "--strip-policy"
    if not why.strip():
        raise UserError(f"{flag} needs --why TEXT: the reason a reader of meta.json will see.")
    if not (recorded / "meta.json").is_file() or not (recorded / "config.yaml").is_file():
        raise UserError(f"{recorded} is not a recorded run (no meta.json or config.yaml): give "
                        "results/EXPERIMENT/RUN folders.")
    if (recorded / "checkpoints").is_dir() or (recorded / "checkpoint").is_dir():
        raise UserError(f"{recorded} holds checkpoints: it is a training run, not its record (which keeps none). "
                        "Record it first (scripts/record_run.py RUN), then strip the copy under results/.")
    meta = read_meta(recorded)
    if best_only and meta.get("record_best") == "final":
        raise UserError(f"{recorded}'s best/ is its final policy, stored once in final/ already: nothing to strip.")
    if best_only and (recorded / "best").is_dir() and not (recorded / "final" / "agent.json").is_file():
        raise UserError(f"{recorded} has no final/ policy: without best/ it would keep none. Use --strip-policy "
                        "to take the policies out and say so.")
    gone = [recorded / name for name in (("best",) if best_only else ("final", "best")) if (recorded / name).is_dir()]
    if not gone:
        raise UserError(f"{recorded} keeps no {'best/' if best_only else 'policy (no final/ or best/)'} "
                        "already: nothing to strip.")
    freed = sum(folder_bytes(d) for d in gone)
    if check_only:
        return freed
    if best_only:
        meta["record_best"] = None
        meta["record_best_note"] = why.strip()
    else:
        meta["record_policy"] = None
        meta["record_policy_note"] = why.strip()
    _write_json_atomic(recorded / "meta.json", meta)  # whole: a kill leaves the old meta.json or the new
    for d in gone:  # meta.json says so first: a kill in between leaves a policy that a second pass takes out
        shutil.rmtree(d)
    return freed


def main() -> int:
    """Record each run given."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--half", action="store_true", help="16-bit policy weights (SB3), a half of the size")
    p.add_argument("--trust-pickles", action="store_true", help="read a final policy an earlier version pickled")
    p.add_argument("--replace", action="store_true")
    p.add_argument("--max-points", type=int, default=MAX_POINTS, help="most points kept of a tag judging reads")
    p.add_argument("--diagnostic-points", type=int, default=DIAGNOSTIC_POINTS,
                   help="most points kept of a diagnostic tag (losses, rollout/, time/, reward/)")
    p.add_argument("--budget-mib", type=float, default=BUDGET_MIB,
                   help="refuse a record that would put RESULTS over this many MiB (issue 20: 100)")
    p.add_argument("--no-policy", action="store_true", help="a run that saved no retrodojo policy: curves only")
    p.add_argument("--rethin", action="store_true", help="RUNS are recorded folders: thin their tb/ in place")
    p.add_argument("--strip-policy", action="store_true",
                   help="RUNS are recorded folders: take their final/ and best/ out (give --why)")
    p.add_argument("--dedupe-best", action="store_true",
                   help="RUNS are recorded folders: drop a best/ that holds the final policy (stored once)")
    p.add_argument("--strip-best", action="store_true",
                   help="RUNS are recorded folders: take their best/ out, keep final/ (give --why)")
    p.add_argument("--why", default="", help="with --strip-policy or --strip-best: the reason, kept in meta.json")
    args = p.parse_args()
    if sum((args.strip_policy, args.strip_best, args.rethin, args.dedupe_best)) > 1:
        p.error("--strip-policy, --strip-best, --rethin and --dedupe-best are passes over the record: give one "
                "at a time")
    if args.why and not (args.strip_policy or args.strip_best):
        p.error("--why goes with --strip-policy or --strip-best (the reason kept in meta.json)")
    if not args.budget_mib > 0:
        p.error(f"--budget-mib {args.budget_mib:g}: give the budget of the results folder in MiB (100 for results/)")
    for flag, n in (("--max-points", args.max_points), ("--diagnostic-points", args.diagnostic_points)):
        if n < 2:
            p.error(f"{flag} {n}: keep at least 2 points of a tag (its first and last)")
    from experiments.errors import UserError

    if args.strip_policy or args.strip_best:
        args.runs = list(dict.fromkeys(args.runs))  # a folder named twice is stripped once
        try:
            for run in args.runs:  # all checked before any is touched
                strip_policy(run, args.why, check_only=True, best_only=args.strip_best)
            for run in args.runs:
                freed = strip_policy(run, args.why, best_only=args.strip_best)
                print(f"stripped {'best/ of ' if args.strip_best else ''}{run}: {freed / 1024:,.0f} KiB freed")
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.dedupe_best:
        try:
            for run in args.runs:  # all checked before any is touched
                if not (run / "meta.json").is_file() or not (run / "config.yaml").is_file():
                    raise UserError(f"{run} is not a recorded run (no meta.json or config.yaml): give "
                                    "results/EXPERIMENT/RUN folders.")
                dedupe_best(run, check_only=True)
            for run in args.runs:
                freed = dedupe_best(run)
                print(f"{run}: " + (f"best/ is the final policy, stored once: {freed / 1024:,.0f} KiB freed" if freed
                                    else "kept as it is (no best/, or a best/ that differs from final/)"))
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.rethin:
        for run in args.runs:  # all checked before any is touched
            if not (run / "tb").is_dir() or not (run / "meta.json").is_file():
                p.error(f"{run} is not a recorded run (no tb/ or meta.json): give results/EXPERIMENT/RUN folders")
        for run in args.runs:
            size = sum(f.stat().st_size for f in (run / "tb").rglob("*") if f.is_file())
            try:
                rethin(run, args.max_points, args.diagnostic_points)
            except UserError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            after = sum(f.stat().st_size for f in (run / "tb").rglob("*") if f.is_file())
            print(f"rethinned {run}: tb {size / 1024:,.0f} -> {after / 1024:,.0f} KiB")
        return 0
    try:
        for run in args.runs:
            out = record(run, args.results, args.half, args.trust_pickles, args.replace, args.max_points,
                         args.diagnostic_points, policy=not args.no_policy, budget_mib=args.budget_mib)
            held = budget_folder(args.results)
            print(f"recorded {run} -> {out} ({folder_bytes(out) / 1024:,.0f} KiB; {held} now "
                  f"{folder_bytes(held) / 2**20:.1f} of {args.budget_mib:g} MiB)")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
