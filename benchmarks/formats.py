"""Sizes and load times of the saved-agent formats: the pickles earlier versions wrote against the safe ones.

    .venv/bin/python benchmarks/formats.py

PPO: SB3's ``model.zip`` (cloudpickled data + torch pickles) against ``policy.safetensors`` +
``optimizer.safetensors`` + ``model.json``, and the alternatives weighed (npz, ``torch.load(weights_only)``),
on the Nature CNN of an 84x84x4 pixel policy with 7 actions. NEAT: a 100-genome population of the smb config
(SMB's 13x16 tile grid + 5 last-action inputs, 5 outputs) after 10 generations, pickled + gzip against JSON
+ gzip. Each time is the best of 5.
"""

from __future__ import annotations

import gzip
import pickle
import random
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents import neat_state, safe_io  # noqa: E402
from agents.neat_config import load_neat_config  # noqa: E402
from agents.networks import ChannelsLastNatureCNN  # noqa: E402
from agents.sb3_format import unique_names, write_model  # noqa: E402


def best_of(fn, n: int = 5) -> float:
    """Best wall time of ``n`` calls, in ms."""
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


class Pixels(gym.Env):
    """An env with SMB's pixel observation and action count (the figures do not depend on the game)."""

    observation_space = gym.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    action_space = gym.spaces.Discrete(7)

    def reset(self, seed=None, options=None):
        """A random frame."""
        return self.observation_space.sample(), {}

    def step(self, action):
        """Another random frame."""
        return self.observation_space.sample(), 0.0, False, False, {}


def sb3(folder: Path) -> list[tuple[str, float, int]]:
    """(what, load ms, bytes) for the PPO policy in each format."""
    from safetensors.torch import load_file
    from stable_baselines3 import PPO

    model = PPO("CnnPolicy", Pixels(), n_steps=64, batch_size=64, n_epochs=1, device="cpu", verbose=0,
                policy_kwargs={"features_extractor_class": ChannelsLastNatureCNN, "net_arch": []})
    model.learn(64)
    model.save(folder / "model.zip")
    write_model(model, folder, "ppo", "CnnPolicy", optimizer=True)
    (folder / "half").mkdir()
    write_model(model, folder / "half", "ppo", "CnnPolicy", half=True)
    stored, _ = unique_names(model.policy)
    opt = model.policy.optimizer.state_dict()
    np.savez(folder / "policy.npz", **{k: v.numpy() for k, v in stored.items()})
    torch.save({"policy": stored, "optimizer": opt}, folder / "weights.pt")

    def npz():
        with np.load(folder / "policy.npz") as z:
            return {k: torch.from_numpy(z[k]) for k in z.files}

    size = lambda *names: sum((folder / n).stat().st_size for n in names)  # noqa: E731
    from agents.sb3_agents import PPOAgent, PPOSpec
    from wrappers.settings import EnvSpec

    agent = PPOAgent(PPOSpec(algo="ppo", device="cpu", hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1}),
                     EnvSpec(game="SuperMarioBros-Nes", profile="smb"), 0)
    return [
        ("SB3 model.zip (pickles), PPO.load", best_of(lambda: PPO.load(folder / "model.zip", device="cpu")),
         size("model.zip")),
        ("retrodojo: model built from the spec + safetensors",
         best_of(lambda: agent._read_model(folder, None, "cpu", training=True)),
         size("policy.safetensors", "optimizer.safetensors", "model.json")),
        ("safetensors policy + optimizer, read", best_of(lambda: (load_file(folder / "policy.safetensors"),
                                                                  load_file(folder / "optimizer.safetensors"))),
         size("policy.safetensors", "optimizer.safetensors", "model.json")),
        ("safetensors policy alone (final/)", best_of(lambda: load_file(folder / "policy.safetensors")),
         size("policy.safetensors", "model.json")),
        ("safetensors policy, float16", best_of(lambda: load_file(folder / "half" / "policy.safetensors")),
         size("half/policy.safetensors", "half/model.json")),
        ("npz policy alone, read", best_of(npz), size("policy.npz")),
        ("torch.load(weights_only=True), policy + optimizer",
         best_of(lambda: torch.load(folder / "weights.pt", weights_only=True)), size("weights.pt")),
    ]


def neat_population(folder: Path) -> list[tuple[str, float, int]]:
    """(what, load ms, bytes) for a NEAT population in each format."""
    import neat

    config, _ = load_neat_config("smb", 13 * 16 + 5, 5)
    population = neat.Population(config, seed=1)
    rng = random.Random(0)

    def evaluate(genomes, _config):
        for _, g in genomes:
            g.fitness = rng.random()

    population.run(evaluate, 10)
    champion = population.best_genome
    doc = neat_state.population_document(population, champion, config, next_genome_key=0, next_node_key=None,
                                         next_species_key=0, frames=0, solved=False)
    safe_io.write_json_gz(folder / "population.json.gz", doc)
    p = population
    next_gid = next(p.reproduction.genome_indexer)
    p.reproduction.genome_indexer = count(next_gid)
    reporters, p.species.reporters = p.species.reporters, None
    state = {"config": config, "population": p.population, "species": p.species, "best_genome": p.best_genome,
             "innovation_tracker": p.reproduction.innovation_tracker, "ancestors": p.reproduction.ancestors}
    with gzip.open(folder / "population.pkl.gz", "wb", compresslevel=3) as f:
        pickle.dump(state, f, protocol=pickle.HIGHEST_PROTOCOL)
    p.species.reporters = reporters

    def load_pickle():
        with gzip.open(folder / "population.pkl.gz", "rb") as f:
            return pickle.load(f)  # noqa: S301 - our own file, to measure

    def load_json():
        data = safe_io.read_json_gz(folder / "population.json.gz", "population")
        return neat_state.restore_population(data, config, folder / "population.json.gz")

    genes = sum(len(g.connections) for g in p.population.values())
    print(f"NEAT population: {len(p.population)} genomes, {genes:,} connections")
    return [("NEAT population, pickle + gzip (earlier versions)", best_of(load_pickle),
             (folder / "population.pkl.gz").stat().st_size),
            ("NEAT population, JSON + gzip, rebuilt and checked", best_of(load_json),
             (folder / "population.json.gz").stat().st_size)]


def main() -> None:
    """Print the table."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rows = sb3(Path(tmp)) + neat_population(Path(tmp))
    print(f"{'format':55s} {'load ms':>8s} {'bytes':>12s}")
    for what, ms, size in rows:
        print(f"{what:55s} {ms:8.1f} {size:12,d}")


if __name__ == "__main__":
    main()
