"""Beyond one machine, on a real two-node Ray cluster on this machine: NEAT's Ray backend against the local
one, a worker killed mid-generation, a node without the ROM, and many runs as Ray tasks.

The cluster is `ray start --head` on 127.0.0.1 with a second node joining it (`ray start --address`), once
for the whole module: starting Ray costs seconds and most of a GiB.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import meta, tb_scalars

ray = pytest.importorskip("ray")

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node (2 CPUs) and a worker node (1 CPU) joined to it, both on 127.0.0.1."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # A Ray started earlier on this machine (ray.init) may have left ~/.ray/auth_token, which turns token
    # authentication on for a new head but not for a node joining it: the test cluster runs without it.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    common = ["--include-dashboard=false", "--disable-usage-stats"]
    try:
        _ray_start([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    *common], env)
        _ray_start([RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1"], env)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def _ray_start(cmd: list[str], env: dict, attempts: int = 3) -> None:
    """`ray start`, tried again after a pause: a node joining a head that is still starting can fail."""
    for _ in range(attempts):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        if proc.returncode == 0:
            return
        time.sleep(5)
    raise RuntimeError(f"{' '.join(cmd)} failed {attempts} times:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _neat_experiment(tmp_path: Path, backend: str, address: str | None = None, generations: int = 3) -> Path:
    agent = {"algo": "neat", "config": "smb", "pop_size": 8, "workers": 2, "last_action": True,
             "backend": backend}
    if address:
        agent["ray_address"] = address
    path = tmp_path / f"neat_{backend}.yaml"
    path.write_text(yaml.safe_dump({
        "name": f"neat_{backend}", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 120},
        "agent": agent, "budget": {"frames": 10_000_000, "generations": generations}, "seeds": [5],
        "eval": {"every_frames": 10**9, "episodes": 1}}))
    return path


def test_the_cluster_has_two_nodes(cluster):
    from agents.neat_backends import connect_ray

    connect_ray(cluster)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    assert ray.cluster_resources()["CPU"] == 3


@pytest.mark.slow
def test_ray_and_local_backends_evolve_the_same_champions(cluster, tmp_path):
    from experiments.cli import main

    fits = {}
    for backend in ("local", "ray"):
        runs = tmp_path / "runs"
        assert main(["train", str(_neat_experiment(tmp_path, backend, cluster)), "--runs-dir", str(runs)]) == 0
        (run,) = (runs / f"neat_{backend}").iterdir()
        assert meta(run)["status"] == "finished"
        fits[backend] = [v for _, v in tb_scalars(run, "neat/best_fitness")]
        frames = [s for s, _ in tb_scalars(run, "neat/best_fitness")]
        assert (run / "final" / "champion.json").is_file()
        fits[backend + "_frames"] = frames
    assert len(fits["local"]) == 3 and fits["local"] == fits["ray"]
    assert fits["local_frames"] == fits["ray_frames"]  # the same episodes, so the same frames


def _setup(game: str = "SuperMarioBros-Nes"):
    from agents.neat_backends import WorkerSetup
    from agents.neat_config import load_neat_config
    from wrappers import EnvSpec
    from wrappers.profile import load_profile

    spec = EnvSpec(game=game, state="Level1-1" if game.startswith("Super") else None, profile="smb"
                   if game.startswith("Super") else "sonic2", actions="right_only" if game.startswith("Super")
                   else None, obs="tiles" if game.startswith("Super") else "pixels", frame_stack=1,
                   stuck_frames=120, resize=(28, 30))
    config, _ = load_neat_config("smb", 13 * 16 if game.startswith("Super") else 840,
                                 5 if game.startswith("Super") else 8, pop_size=12)
    path = Path(os.environ["RETRODOJO_HOME"]) / "neat_test.cfg"
    config.save(str(path))
    profile = load_profile(spec.profile, game=game)
    return WorkerSetup(env_spec=spec.model_dump(), profile=profile, config_text=path.read_text(), seed=0,
                       discrete=True, input_scale=1.0, last_action=False), config


def _genomes(config, n: int):
    import neat

    pop = neat.Population(config, seed=1)
    return [(key, g, 1) for key, g in list(pop.population.items())[:n]]


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_worker_killed_mid_generation_loses_no_genome(cluster, kind):
    from agents.neat_backends import LocalBackend, RayBackend

    setup, config = _setup()
    tasks = _genomes(config, 12)
    backend = RayBackend(setup, 2, cluster, batches_per_worker=3) if kind == "ray" else LocalBackend(setup, 2)
    try:
        results = backend.evaluate(tasks)
        first = next(results)
        victim = backend.pids()[0]
        os.kill(victim, signal.SIGKILL)
        rest = list(results)
        keys = [first[0]] + [r[0] for r in rest]
        assert sorted(keys) == sorted(t[0] for t in tasks)  # every genome, each once
        assert len(backend.notes) >= 1 and "died mid-generation" in backend.notes[0]
        assert victim not in backend.pids()
        # and the next generation runs on the repaired pool
        assert sorted(r[0] for r in backend.evaluate(tasks[:4])) == sorted(t[0] for t in tasks[:4])
    finally:
        backend.close()


def test_a_node_without_the_rom_says_which_node_and_what_to_run(cluster):
    """The driver checks the ROM before a run starts; a worker on a machine without it says so too (here the
    game is one whose ROM no node has, Sonic 2, so the worker's own check is the one that fires)."""
    from agents.neat_backends import RayBackend, WorkerSetupError

    setup, _ = _setup("SonicTheHedgehog2-Genesis")
    with pytest.raises(WorkerSetupError) as e:
        RayBackend(setup, 1, cluster)
    import re

    found = re.search(r"node [0-9.]+ \(Ray node ([0-9a-f]{8})\)", str(e.value))
    assert found and any(n["NodeID"].startswith(found.group(1)) for n in ray.nodes())
    assert "No ROM for SonicTheHedgehog2-Genesis" in str(e.value) and "retrodojo roms import PATH" in str(e.value)


@pytest.mark.slow
def test_many_seeds_as_ray_tasks_write_ordinary_run_folders(cluster, tmp_path, capsys):
    from experiments.cli import main

    exp = _neat_experiment(tmp_path, "local", generations=1)
    data = yaml.safe_load(exp.read_text())
    data["agent"]["workers"] = 1
    exp.write_text(yaml.safe_dump(data))
    runs = tmp_path / "runs"
    assert main(["train", str(exp), "--seeds", "1", "2", "--ray", cluster, "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    folders = sorted((runs / "neat_local").iterdir())
    assert [meta(f)["seed"] for f in folders] == [1, 2]
    for f in folders:
        m = meta(f)
        assert m["status"] == "finished" and m["frames"] > 0, m
        assert {p.name for p in f.iterdir()} >= {"config.yaml", "meta.json", "tb", "checkpoints", "final", "eval"}
        assert tb_scalars(f, "neat/best_fitness") and json.loads((f / "final" / "agent.json").read_text())
    assert "seed 1" in out and "seed 2" in out and "finished" in out


@pytest.mark.slow
def test_tuning_trials_as_ray_tasks_share_the_study(cluster, tmp_path):
    from test_tune import tiny

    from experiments.cli import main

    exp = tiny(tmp_path)
    data = yaml.safe_load(exp.read_text())
    data["agent"]["n_envs"] = 3
    exp.write_text(yaml.safe_dump(data))
    runs = tmp_path / "runs"
    # 4 CPUs on one node: more than any node of this cluster has, refused at once instead of waiting for ever
    assert main(["tune", str(exp), "--trials", "2", "--ray", cluster, "--runs-dir", str(runs)]) == 2
    data["agent"]["n_envs"] = 1
    exp.write_text(yaml.safe_dump(data))
    assert main(["tune", str(exp), "--trials", "2", "--ray", cluster, "--runs-dir", str(runs), "--pruner",
                 "none"]) == 0
    folder = runs / "tiny_tune" / "tune-tiny_tune"
    import csv

    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert len(rows) == 2 and {r["state"] for r in rows} == {"COMPLETE"} and (folder / "best.yaml").is_file()
