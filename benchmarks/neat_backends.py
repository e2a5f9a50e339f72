"""NEAT's Ray backend against the local one: seconds per generation, same config, same seed, this machine.

The experiment is the demo's (configs/experiments/smb_neat.yaml: population 100, SMB's tile grid, feed-forward
networks) with 2 workers: local processes, or 2 Ray actors on a local Ray started for the measurement. Both
backends play the same genomes (the episodes are deterministic), so the difference is the backend's cost:
batching, pickling genomes and records, Ray's scheduling. Each round runs both, alternating which goes first;
the first generation of each run (worker start-up) is left out. Also reported: the per-genome cost, the model
docs/scaling.md builds on. Usage:
    python benchmarks/neat_backends.py [--generations 8] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import run_isolated  # noqa: E402


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


def main() -> None:
    """Measure both backends in alternating rounds; print (or --json) medians and the overhead."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {"experiment": "smb_neat (population 100, tiles)", "generations": args.generations, "rounds": args.rounds,
           "by_workers": {}}
    for workers in args.workers:
        per = {"local": [], "ray": []}
        evals = {"local": [], "ray": []}
        same = True
        for r in range(args.rounds):
            order = ("local", "ray") if r % 2 == 0 else ("ray", "local")
            got = {b: run_isolated(_run, b, args.generations, workers) for b in order}
            same = same and got["local"]["best_fitness"] == got["ray"]["best_fitness"]
            for b in order:
                per[b].extend(got[b]["seconds"][1:])
                evals[b].extend(got[b]["evaluation_seconds"][1:])
        med = {b: statistics.median(v) for b, v in per.items()}
        out["by_workers"][workers] = {
            "seconds_per_generation": {b: round(m, 3) for b, m in med.items()},
            "evaluation_seconds": {b: round(statistics.median(v), 3) for b, v in evals.items()},
            "all_seconds": {b: [round(s, 2) for s in v] for b, v in per.items()},
            "ray_overhead": round(med["ray"] / med["local"] - 1, 4), "same_champions": same,
            "worker_seconds_per_genome": round(statistics.median(evals["local"]) * workers / 100, 4)}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for workers, w in out["by_workers"].items():
        print(f"NEAT smb_neat, population 100, {workers} workers, {args.rounds} rounds x {args.generations - 1} "
              "generations:")
        for b in ("local", "ray"):
            print(f"  {b:>5}: {w['seconds_per_generation'][b]:.2f} s per generation (median), of which "
                  f"{w['evaluation_seconds'][b]:.2f} s playing genomes")
        print(f"  Ray overhead: {w['ray_overhead']:+.1%} (goal <= 10%); same champions both ways: "
              f"{w['same_champions']}")


if __name__ == "__main__":
    main()
