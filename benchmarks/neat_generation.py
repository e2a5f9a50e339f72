"""NEAT speed with the original tutorial's settings: seconds per generation and network activations/s.

The tutorial evolved Mario with neat-python at 165 s per generation of 30 genomes. Here the same NEAT
config (configs/neat/tutorial.cfg: population 30, recurrent networks, ~5,000 initial connections, seven
aggregation functions) plays SMB 1-1 through retrodojo: grayscale at 1/8 size (28x30 = 840 inputs, as the
tutorial fed it), raw buttons (one output each, pressed above 0.5), an end after 250 frames without
progress (the tutorial's stuck counter), 2 worker processes. A generation's time covers evaluation,
reproduction, speciation and the checkpoint; the first generation (worker start-up) is left out.

Activation: the compiled numpy network against neat-python's RecurrentNetwork on seeded tutorial genomes
(840 inputs, 12 outputs as the tutorial's config, ~5,000 connections); the median genome is reported. Usage:
    python benchmarks/neat_generation.py [--generations N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import run_isolated, stamp  # noqa: E402

TUTORIAL_SECONDS = 165.0


def experiment(generations: int) -> dict:
    """The experiment mapping: tutorial NEAT settings on SMB 1-1."""
    return {
        "name": "neat_tutorial_bench", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"frame_skip": 4, "obs": "pixels", "resize": [28, 30], "grayscale": True, "frame_stack": 1,
                "stuck_frames": 250, "actions": "buttons"},
        "agent": {"algo": "neat", "config": "tutorial", "workers": 2},
        "budget": {"frames": 10**9, "generations": generations}, "seeds": [1],
        "eval": {"every_frames": 10**9, "episodes": 1},
    }


def _generations(generations: int, q) -> None:
    from experiments import runner
    from experiments.run import read_scalars
    from experiments.spec import validate_spec

    spec = validate_spec(experiment(generations), "neat_generation.py")
    with tempfile.TemporaryDirectory() as tmp:
        (folder,) = runner.train(spec, runs_dir=tmp)
        q.put({key: [v for _, v in read_scalars(folder, tag)] for key, tag in (
            ("seconds", "neat/generation_seconds"), ("frames", "neat/generation"),
            ("connections", "neat/champion_connections"))})


def benchmark_activation(genome, config, n: int = 1000, seed: int = 0) -> dict:
    """Measures activations per second of CompiledNetwork against neat-python's own network.

    Both networks are driven with the same cycle of random uint8 "pixel" frames; the
    compiled network receives numpy arrays, neat's network lists of Python floats (its
    fastest input form), and input conversion is excluded for neat only.

    Args:
        genome: Genome to compile.
        config: The ``neat.Config`` the genome belongs to.
        n: Number of timed activations per network.
        seed: Seed for the random frames.

    Returns:
        Dict with ``compiled_per_s``, ``neat_per_s``, ``speedup``, ``compile_ms``,
        ``num_nodes``, ``num_connections`` and ``feed_forward``.
    """
    import numpy as np

    gc = config.genome_config
    frames = np.random.default_rng(seed).integers(0, 256, size=(16, len(gc.input_keys)), dtype=np.uint8)
    frame_lists = frames.astype(np.float64).tolist()
    from neat.nn import FeedForwardNetwork, RecurrentNetwork

    from agents.neat_network import CompiledNetwork

    reference_type = FeedForwardNetwork if gc.feed_forward else RecurrentNetwork
    reference = reference_type.create(genome, config)

    t0 = time.perf_counter()
    net = CompiledNetwork.create(genome, config)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(n):
        net.activate(frames[i % 16])
    compiled_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(n):
        reference.activate(frame_lists[i % 16])
    neat_s = time.perf_counter() - t0

    return {
        "compiled_per_s": n / compiled_s,
        "neat_per_s": n / neat_s,
        "speedup": neat_s / compiled_s,
        "compile_ms": compile_s * 1e3,
        "num_nodes": net.num_nodes,
        "num_connections": net.num_connections,
        "feed_forward": net.feed_forward,
    }


def _activation(genomes: int, q) -> None:
    import random

    import neat

    from agents.neat_config import load_neat_config

    # Seeded genomes: the speed-up depends on which of the seven aggregations a genome's 12 nodes drew
    # (8x to 11x), so one unseeded genome made the figure jump between runs.
    out = []
    for seed in range(genomes):
        random.seed(seed)
        config, _ = load_neat_config("tutorial", 840, 12)
        config.genome_config.innovation_tracker = neat.InnovationTracker()
        genome = config.genome_type(1)
        genome.configure_new(config.genome_config)
        out.append(benchmark_activation(genome, config, n=2000))
    q.put(out)


def main() -> None:
    """Measure and print (or --json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=6, help="generations to run (the first is left out)")
    ap.add_argument("--genomes", type=int, default=5, help="seeded tutorial genomes to time activation on")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gens = run_isolated(_generations, args.generations)
    acts = run_isolated(_activation, args.genomes)
    act = sorted(acts, key=lambda a: a["speedup"])[len(acts) // 2]  # the median genome
    secs = gens["seconds"][1:] or gens["seconds"]
    out = {
        "game": "SuperMarioBros-Nes", "state": "Level1-1", "config": "configs/neat/tutorial.cfg", "pop_size": 30,
        "inputs": 840, "workers": 2, "generation_seconds": [round(s, 2) for s in gens["seconds"]],
        "seconds_per_generation": round(statistics.median(secs), 2),
        "speedup_vs_tutorial": round(TUTORIAL_SECONDS / statistics.median(secs), 1),
        "activation": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in act.items()},
        "activation_speedup": round(act["speedup"], 1),
        "activation_speedups": [round(a["speedup"], 1) for a in acts],
    }
    if args.json:
        print(json.dumps({**stamp(), **out}, indent=2))
        return
    print(f"NEAT, tutorial settings, SMB 1-1, population 30, 840 inputs, 2 workers: "
          f"{out['seconds_per_generation']:.1f} s per generation (median of {len(secs)}; the tutorial: "
          f"{TUTORIAL_SECONDS:.0f} s, {out['speedup_vs_tutorial']:.0f}x)")
    print(f"  generations: {', '.join(f'{s:.1f}' for s in gens['seconds'])} s")
    a = out["activation"]
    print(f"activation, {a['num_connections']} connections, {a['num_nodes']} nodes: compiled "
          f"{a['compiled_per_s']:,.0f}/s, neat-python {a['neat_per_s']:,.0f}/s: {out['activation_speedup']:.1f}x "
          f"(median of {len(acts)} genomes: {', '.join(f'{x:.1f}' for x in out['activation_speedups'])})")


if __name__ == "__main__":
    main()
