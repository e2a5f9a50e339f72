"""Beyond one machine, on a real two-node Ray cluster on this machine: NEAT's Ray backend against the local
one, a worker killed mid-generation, a node without the ROM, and many runs as Ray tasks.

The cluster is `ray start --head` on 127.0.0.1 with a second node joining it (`ray start --address`), once
for the whole module: starting Ray costs seconds and most of a GiB.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import meta, tb_scalars

ray = pytest.importorskip("ray")

RAY = str(Path(sys.executable).parent / "ray")
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node (2 CPUs) and a worker node (1 CPU) joined to it, both on 127.0.0.1."""
    with ray_cluster([2, 1]) as address:
        yield address


@contextlib.contextmanager
def ray_cluster(cpus: list[int], resources: list[dict] | None = None):
    """A cluster on 127.0.0.1 of ``len(cpus)`` nodes (the first the head), in its own temp folder; yields its
    address and stops only its own processes (`ray stop` would stop every Ray on the machine)."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # A Ray started earlier on this machine (ray.init) may have left ~/.ray/auth_token, which turns token
    # authentication on for a new head but not for a node joining it: the test cluster runs without it.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    temp = Path(tempfile.mkdtemp(prefix="rdj-ray-"))  # short: Ray's socket paths must stay under 108 characters
    common = ["--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--disable-usage-stats"]
    try:
        for i, n in enumerate(cpus):
            extra = [f"--resources={json.dumps(resources[i])}"] if resources and resources[i] else []
            if i == 0:
                _ray_start([RAY, "start", "--head", f"--port={port}", f"--num-cpus={n}", "--include-dashboard=false",
                            *common, *extra], env)
            else:
                _ray_start([RAY, "start", f"--address={address}", f"--num-cpus={n}", *common, *extra], env)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        stop_processes(cluster_pids(temp, port))
        shutil.rmtree(temp, ignore_errors=True)


def _processes() -> dict[int, tuple[str, int]]:
    """Every process of the machine: pid -> (command line, parent pid)."""
    procs = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                args = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            procs[int(d.name)] = (args, ppid)
    return procs


def _with_descendants(roots: set[int], procs: dict[int, tuple[str, int]]) -> set[int]:
    found, grew = set(roots), True
    while grew:
        children = {pid for pid, (_, ppid) in procs.items() if ppid in found} - found
        grew = bool(children)
        found |= children
    return found


def cluster_pids(temp: Path, port: int | None = None) -> list[int]:
    """The processes of the cluster whose temp folder is ``temp`` (and ``port``), and all their descendants."""
    procs = _processes()
    mine = {pid for pid, (args, _) in procs.items()
            if str(temp) in args or (port and "ray" in args and f":{port} " in args + " ")}
    return sorted(_with_descendants(mine, procs) - {os.getpid()})


def descendants(pid: int) -> list[int]:
    """The processes a process started, and theirs."""
    return sorted(_with_descendants({pid}, _processes()) - {pid})


def stop_processes(pids: list[int], grace: float = 10.0) -> None:
    """SIGTERM these processes, then SIGKILL the ones still there after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        until = time.monotonic() + grace
        while time.monotonic() < until and any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in pids):
            time.sleep(0.2)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


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
    return [(key, g, 1, None) for key, g in list(pop.population.items())[:n]]  # as NEATAgent makes them


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_worker_killed_mid_generation_loses_no_genome(cluster, kind):
    from agents.neat_backends import LocalBackend, RayBackend

    setup, config = _setup()
    tasks = _genomes(config, 12)
    backend = RayBackend(setup, 2, cluster, batch_share=3) if kind == "ray" else LocalBackend(setup, 2)
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


class KillerGenome:
    """A genome that kills the process that unpickles it, every time: the worker it is sent to dies."""

    def __reduce__(self):
        return os._exit, (3,)


@contextlib.contextmanager
def deadline(seconds: int, what: str):
    """Fail (rather than hang) when the block takes more than ``seconds``."""
    def expired(_signum, _frame):
        raise TimeoutError(f"{what} took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_genome_that_kills_its_worker_is_given_the_worst_fitness_not_retried_for_ever(cluster, kind):
    from agents.neat_backends import LocalBackend, RayBackend

    setup, config = _setup()
    tasks = _genomes(config, 5)
    killer = 10**6
    tasks.insert(2, (killer, KillerGenome(), 1, None))
    backend = RayBackend(setup, 2, cluster, batch_share=1) if kind == "ray" else LocalBackend(setup, 2)
    try:
        with deadline(240, "a generation with a genome that kills its worker"):
            fits = {key: fitness for key, fitness, _ in backend.evaluate(tasks)}
        assert sorted(fits) == sorted(t[0] for t in tasks)  # every genome, each once
        assert fits[killer] == min(f for k, f in fits.items() if k != killer)
        assert backend.deaths[killer] == 2
        assert any(f"genome {killer} killed the worker playing it 2 times" in n for n in backend.notes)
        assert sum("died mid-generation" in n for n in backend.notes) >= 2
        # the next generation plays on, the killer not again
        backend.notes.clear()
        with deadline(120, "the next generation"):
            again = {key: fitness for key, fitness, _ in backend.evaluate(tasks[1:4])}
        assert sorted(again) == sorted(t[0] for t in tasks[1:4]) and again[killer] == min(again.values())
        assert not any("died" in n for n in backend.notes)
    finally:
        backend.close()


@pytest.mark.slow
def test_a_dead_ray_node_ends_the_run_with_its_checkpoint_and_the_resume_command(tmp_path):
    """The issue's case: NEAT on the local Ray cluster its run started, whose raylet is killed mid-run. The
    lost workers can never be placed again: the run ends within 3 minutes saying what it waited for, and its
    checkpoint resumes (on a new local cluster)."""
    exp = _neat_experiment(tmp_path, "ray", "local", generations=1000)
    runs = tmp_path / "runs"
    log = tmp_path / "train.log"
    cmd = [sys.executable, "-m", "experiments.cli"]
    temps = [Path(tempfile.mkdtemp(prefix="rdj-")) for _ in range(2)]  # a Ray of its own, away from others'
    started = []
    try:
        # 20 s for a worker to start instead of 60: the test waits that long after the kill
        env = dict(os.environ, RAY_TMPDIR=str(temps[0]), RAY_USAGE_STATS_ENABLED="0",
                   RETRODOJO_RAY_PLACEMENT_TIMEOUT="20")
        with log.open("w") as out:
            proc = subprocess.Popen([*cmd, "train", str(exp), "--runs-dir", str(runs)], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        until = time.monotonic() + 300
        while not list(runs.glob("*/*/checkpoints/0*")):  # the first generation is checkpointed
            assert proc.poll() is None and time.monotonic() < until, log.read_text()[-3000:]
            time.sleep(1)
        time.sleep(2)  # into the next generation
        procs = _processes()
        (raylet,) = [p for p in descendants(proc.pid) if "raylet_socket_name" in procs.get(p, ("", 0))[0]]
        os.kill(raylet, signal.SIGKILL)
        t0 = time.monotonic()
        try:
            proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run was still going 180 s after its Ray node died:\n{log.read_text()[-3000:]}")
        took = time.monotonic() - t0
        text = log.read_text()
        assert proc.returncode == 1, text[-3000:]
        run = next(runs.glob("*/*/meta.json")).parent
        m = meta(run)
        assert m["status"] == "failed" and "every NEAT worker on Ray was lost" in m["error"]
        assert "every NEAT worker on Ray was lost" in text and "none could start again within 20 s" in text
        assert f"continue with `retrodojo train --resume {run}`" in text, text[-3000:]
        ckpt = sorted((run / "checkpoints").iterdir())[-1]
        assert (ckpt / "population.json.gz").is_file()
        print(f"the run ended {took:.0f} s after its Ray node died")

        done = int(max(v for _, v in tb_scalars(run, "neat/generation")))
        env["RAY_TMPDIR"] = str(temps[1])
        with log.open("w") as out:
            again = subprocess.Popen([*cmd, "train", "--resume", str(run), "--set", f"budget.generations={done + 3}"],
                                     cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        started.append(again)
        assert again.wait(timeout=400) == 0, log.read_text()[-3000:]
        m = meta(run)
        assert m["status"] == "finished" and m["resumes"] == 1 and m["frames"] > int(ckpt.name)
    finally:
        for p in started:
            left = descendants(p.pid)
            if p.poll() is None:
                p.kill()
                p.wait()
            stop_processes(left + [q for t in temps for q in cluster_pids(t)])
        for t in temps:
            shutil.rmtree(t, ignore_errors=True)


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


@contextlib.contextmanager
def one_core():
    """This thread may run on one core only (cores() says 1): a one-core machine, here."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_neat_runs_on_ray_book_the_workers_they_start(tmp_path):
    """NEAT without agent.workers starts one worker per core: a run task books that many CPUs and is told to
    start that many, not one per core of whichever node it lands on; with Ray actors as its workers the
    run's own process books one CPU (each actor books its own)."""
    from experiments.cluster import cpus_for, with_booked_workers
    from experiments.spec import load_spec, validate_spec

    exp = _neat_experiment(tmp_path, "local")
    spec = load_spec(exp, ["agent.workers=null"])
    with one_core():
        cpus = cpus_for(spec)
    assert cpus == 1
    assert validate_spec(with_booked_workers(spec, spec.model_dump(mode="json"), cpus), "x").agent.workers == 1
    assert cpus_for(load_spec(exp)) == 2  # as the file says
    ray_spec = load_spec(exp, ["agent.backend=ray"])
    assert cpus_for(ray_spec) == 1 and with_booked_workers(ray_spec, {"agent": {}}, 1) == {"agent": {}}


@pytest.mark.slow
def test_many_seeds_as_ray_tasks_write_ordinary_run_folders(cluster, tmp_path, capsys):
    from experiments.cli import main

    exp = _neat_experiment(tmp_path, "local", generations=1)
    data = yaml.safe_load(exp.read_text())
    del data["agent"]["workers"]  # one per core of this (one-core) machine: the runs start what they booked
    exp.write_text(yaml.safe_dump(data))
    runs = tmp_path / "runs"
    with one_core():
        assert main(["train", str(exp), "--seeds", "1", "2", "--ray", cluster, "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    folders = sorted((runs / "neat_local").iterdir())
    assert [meta(f)["seed"] for f in folders] == [1, 2]
    for f in folders:
        m = meta(f)
        assert m["status"] == "finished" and m["frames"] > 0, m
        assert {p.name for p in f.iterdir()} >= {"config.yaml", "meta.json", "tb", "checkpoints", "final", "eval"}
        assert tb_scalars(f, "neat/best_fitness") and json.loads((f / "final" / "agent.json").read_text())
        assert yaml.safe_load((f / "config.yaml").read_text())["agent"]["workers"] == 1
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


def test_the_placement_timeout_is_read_from_the_environment_and_checked(monkeypatch):
    from agents.errors import AgentError
    from agents.neat_backends import PLACEMENT_TIMEOUT_S, ray_placement_timeout

    monkeypatch.delenv("RETRODOJO_RAY_PLACEMENT_TIMEOUT", raising=False)
    assert ray_placement_timeout() == PLACEMENT_TIMEOUT_S == 60.0
    monkeypatch.setenv("RETRODOJO_RAY_PLACEMENT_TIMEOUT", "240")
    assert ray_placement_timeout() == 240.0
    for bad in ("0", "-5", "soon", "nan", "inf"):
        monkeypatch.setenv("RETRODOJO_RAY_PLACEMENT_TIMEOUT", bad)
        with pytest.raises(AgentError, match="RETRODOJO_RAY_PLACEMENT_TIMEOUT"):
            ray_placement_timeout()
