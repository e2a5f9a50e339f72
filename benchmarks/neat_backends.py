"""NEAT's Ray backend against the local one: seconds per generation, same config, same seed, this machine.

The experiment is the demo's (configs/experiments/smb_neat.yaml: population 100, SMB's tile grid, feed-forward
networks) with 2 workers: local processes, or 2 Ray actors on a local Ray started for the measurement (as
`agent.ray_address: local` starts it: no dashboard, no logs to the driver). Both backends play the same
genomes (the episodes are deterministic), so the difference is the backend's cost: batching, pickling
genomes and records, Ray's scheduling and its own processes. Each round runs both, alternating which goes
first; the first ``--skip`` generations of each run are left out.

The overhead is paired: generation g of the Ray run plays the same genomes as generation g of the local run
of the same round, so each round gives one figure (Ray's seconds over local's, summed over the same
generations), and the report gives their median, min and max over the rounds, and the spread of the
per-generation ratios; a single median of pooled generations hides how much rounds differ. Also reported:
the per-genome cost, the model docs/scaling.md builds on, and what Ray ran with. Usage:
    python benchmarks/neat_backends.py [--workers 2] [--generations 8] [--rounds 3] [--skip 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import run_isolated, stamp  # noqa: E402


def _run(backend: str, generations: int, workers: int, q) -> None:
    from experiments import runner
    from experiments.run import read_scalars
    from experiments.spec import load_spec

    sets = [f"budget.generations={generations}", f"agent.workers={workers}", f"agent.backend={backend}", "seeds=[7]",
            "eval.every_frames=1000000000", "agent.ray_address=local"]
    spec = load_spec("smb_neat", sets)
    with tempfile.TemporaryDirectory() as tmp:
        (folder,) = runner.train(spec, runs_dir=tmp)
        secs = [v for _, v in read_scalars(folder, "neat/generation_seconds")]
        evals = [v for _, v in read_scalars(folder, "neat/evaluation_seconds")]
        fits = [v for _, v in read_scalars(folder, "neat/best_fitness")]
        frames = [s for s, _ in read_scalars(folder, "neat/generation")]
    if backend == "ray":
        import ray

        ray.shutdown()
    q.put({"seconds": secs, "evaluation_seconds": evals, "best_fitness": fits, "frames": frames})


def _spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4)}


def _ray_settings() -> dict:
    import os

    import ray

    return {"version": ray.__version__, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "(unset: token auth on "
                                                                        "for a new local cluster)"),
            "dashboard": "off (agents.neat_backends.connect_ray)", "log_to_driver": False}


def main() -> None:
    """Measure both backends in alternating rounds; print (or --json) the overhead and its spread."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--skip", type=int, default=1, help="first generations of each run left out (default 1)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.generations <= args.skip:
        ap.error("--generations must be more than --skip")
    out = {"experiment": "smb_neat (population 100, tiles)", "generations": args.generations, "rounds": args.rounds,
           "skip": args.skip, "ray": _ray_settings(), "by_workers": {}}
    for workers in args.workers:
        per = {"local": [], "ray": []}
        evals = {"local": [], "ray": []}
        by_round, by_generation = [], []
        same = True
        for r in range(args.rounds):
            order = ("local", "ray") if r % 2 == 0 else ("ray", "local")
            got = {b: run_isolated(_run, b, args.generations, workers) for b in order}
            same = same and got["local"]["best_fitness"] == got["ray"]["best_fitness"]
            kept = {b: got[b]["seconds"][args.skip:] for b in order}
            for b in order:
                per[b].extend(kept[b])
                evals[b].extend(got[b]["evaluation_seconds"][args.skip:])
            by_round.append(sum(kept["ray"]) / sum(kept["local"]) - 1)
            by_generation.extend(r_ / l_ - 1 for r_, l_ in zip(kept["ray"], kept["local"]))
        med = {b: statistics.median(v) for b, v in per.items()}
        out["by_workers"][workers] = {
            "seconds_per_generation": {b: round(m, 3) for b, m in med.items()},
            "evaluation_seconds": {b: round(statistics.median(v), 3) for b, v in evals.items()},
            "all_seconds": {b: [round(s, 2) for s in v] for b, v in per.items()},
            "ray_overhead": round(statistics.median(by_round), 4),
            "ray_overhead_by_round": [round(o, 4) for o in by_round],
            "ray_overhead_spread": _spread(by_round),
            "ray_overhead_by_generation": _spread(by_generation),
            "same_champions": same,
            "worker_seconds_per_genome": round(statistics.median(evals["local"]) * workers / 100, 4)}
    if args.json:
        print(json.dumps({**stamp(), **out}, indent=2))
        return
    for workers, w in out["by_workers"].items():
        print(f"NEAT smb_neat, population 100, {workers} workers, {args.rounds} rounds x "
              f"{args.generations - args.skip} generations (the first {args.skip} left out):")
        for b in ("local", "ray"):
            print(f"  {b:>5}: {w['seconds_per_generation'][b]:.2f} s per generation (median), of which "
                  f"{w['evaluation_seconds'][b]:.2f} s playing genomes")
        sr, sg = w["ray_overhead_spread"], w["ray_overhead_by_generation"]
        print(f"  Ray overhead: {sr['median']:+.1%} (median of the rounds; min {sr['min']:+.1%}, max "
              f"{sr['max']:+.1%}; per generation {sg['min']:+.1%} to {sg['max']:+.1%}), goal <= 10%; same "
              f"champions both ways: {w['same_champions']}")
    print(f"  Ray {out['ray']['version']}, RAY_AUTH_MODE {out['ray']['RAY_AUTH_MODE']}")


if __name__ == "__main__":
    main()
