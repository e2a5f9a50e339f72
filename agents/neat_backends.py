"""Where NEAT's genomes are played: a pool of local processes, or Ray actors on the machines of a cluster.

Both backends hold one emulator per worker process for the whole run (stable-retro allows one per process),
take genomes as ``(key, genome, episodes)`` tasks and give back ``(key, fitness, episode records)``, the same
records whichever ran them, so TensorBoard, checkpoints, resume and the champion do not depend on the backend.

Nothing assumes a shared file system: a worker gets a :class:`WorkerSetup` holding the env spec, the loaded
game profile and the resolved neat-python config *text*. Only the ROM must be on each machine (imported with
``retrodojo roms import`` there); a worker without it says which node and what to run.

A worker that dies mid-generation (a killed process, a lost node) does not lose the generation: its
unfinished genomes are played again by the others (a fresh worker replaces it), and the run's log says so.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

Task = tuple[int, Any, int]  # (genome key, genome, episodes)
Result = tuple[int, float, list[dict]]  # (genome key, fitness, the info["episode"] records)


@dataclass
class WorkerSetup:
    """Everything a worker needs, by value: it travels to other machines."""

    env_spec: dict
    profile: Any  # a loaded wrappers.profile.Profile
    config_text: str  # the run's resolved neat.cfg
    seed: int
    discrete: bool
    input_scale: float
    last_action: bool


class GenomeWorker:
    """One env (one emulator) in this process, playing genomes until the run ends."""

    def __init__(self, setup: WorkerSetup, index: int | None = None):
        import neat

        from wrappers import make_env
        from wrappers.errors import UserError

        fd, path = tempfile.mkstemp(suffix=".cfg")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(setup.config_text)
            # Each worker builds its own neat.Config: pickling a live one advances its node counter.
            self.config = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                                      neat.DefaultStagnation, path)
        finally:
            os.remove(path)
        # Workers are interchangeable: the index (or the pid) only varies sticky-action draws between them.
        offset = index if index is not None else os.getpid() % 1000
        try:
            self.env = make_env(setup.env_spec, seed=setup.seed + offset, profile=setup.profile)
        except UserError as e:
            raise WorkerSetupError(f"{_node()}: {e}") from None
        self.args = (self.config, setup.discrete, setup.input_scale, setup.last_action)

    def play(self, tasks: Sequence[Task]) -> list[Result]:
        """Play each genome; its fitness is the mean shaped return of its episodes."""
        from agents.neat_play import play_genome

        out = []
        for key, genome, episodes in tasks:
            fitness, eps = play_genome(genome, self.env, *self.args, episodes=episodes)
            out.append((key, fitness, eps))
        return out

    def pid(self) -> int:
        """This worker's process id (tests kill it)."""
        return os.getpid()


class WorkerSetupError(RuntimeError):
    """A worker could not make its env (on a machine without the ROM, say); the message names the node."""


def _node() -> str:
    try:
        import ray

        if ray.is_initialized():
            node_id = ray.get_runtime_context().get_node_id()
            ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id),
                      ray.util.get_node_ip_address())
            return f"node {ip} (Ray node {node_id[:8]})"
    except ImportError:
        pass
    import platform

    return f"host {platform.node()}"


class Backend(Protocol):
    """Plays genomes somewhere and yields their results as they finish, in any order."""

    notes: list[str]

    def evaluate(self, tasks: Sequence[Task]) -> Iterator[Result]:
        """Every task's result, each exactly once."""
        ...

    def close(self) -> None:
        """Stop the workers."""
        ...


# --------------------------------------------------------------------------- local processes

_WORKER: GenomeWorker | None = None


def _init_local(setup: WorkerSetup) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    _WORKER = GenomeWorker(setup)


def _play_local(task: Task) -> Result:
    return _WORKER.play([task])[0]


class LocalBackend:
    """A pool of ``workers`` processes on this machine (forkserver), one env each, made once per run.

    A worker that dies breaks the pool: the pool is made again and the unfinished genomes are played again.
    """

    def __init__(self, setup: WorkerSetup, workers: int):
        self.setup = setup
        self.workers = workers
        self.notes: list[str] = []
        self._ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self._ctx, initializer=_init_local,
                                   initargs=(self.setup,))

    def pids(self) -> list[int]:
        """The worker processes' ids (they start with the first genomes)."""
        return list(self._pool._processes or {})

    def evaluate(self, tasks: Sequence[Task]) -> Iterator[Result]:
        """Play every task; on a broken pool, play the unfinished ones again in a new pool."""
        todo = list(tasks)
        while todo:
            futures = {self._pool.submit(_play_local, t): t for t in todo}
            done_keys, broken = set(), False
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    try:
                        result = f.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    done_keys.add(result[0])
                    yield result
            todo = [t for t in todo if t[0] not in done_keys]
            if broken or todo:
                self.notes.append(f"a NEAT worker process died mid-generation; its {len(todo)} unfinished genomes "
                                  "were played again in a new pool")
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def close(self) -> None:
        """Stop the pool's processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- Ray actors


def connect_ray(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one on this machine, else start a local one)."""
    import ray

    if ray.is_initialized():
        return
    kwargs = {"log_to_driver": False, "include_dashboard": False, "configure_logging": False}
    if address in (None, "local"):
        ray.init(**kwargs)
        return
    if address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError:
        if address != "auto":
            raise
        ray.init(**kwargs)  # no cluster running here: start a local one


def _check_reachable(address: str, seconds: float = 3.0) -> None:
    """Fail at once, and clearly, when nothing listens at a Ray address (Ray itself retries for a minute)."""
    import socket

    from wrappers.errors import UserError

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds):
            return
    except ValueError:
        raise UserError(f"Ray address {address!r}: give HOST:PORT (the head's `ray start --head --port`), or "
                        "auto") from None
    except OSError as e:
        raise UserError(f"no Ray cluster answers at {address} ({e.strerror or e}): start one with `ray start "
                        "--head` on that machine (docs/scaling.md), or use auto for one on this machine.") from None


class RayBackend:
    """``workers`` Ray actors (one CPU each, plus any custom ``resources``), one env each, anywhere in the
    cluster; genomes go out in batches, an actor that dies is replaced and its batch played elsewhere.

    Batches are small (``batches_per_worker`` per actor and generation): genomes differ a lot in how long
    they play, and the generation waits for its last batch; at 4 a worker the tail cost 13% on SMB, while
    a batch's round trip costs about a millisecond (benchmarks/neat_backends.py).
    """

    def __init__(self, setup: WorkerSetup, workers: int, address: str | None = "auto",
                 resources: dict[str, float] | None = None, batches_per_worker: int = 16):
        import ray

        connect_ray(address)
        self.setup = setup
        self.notes: list[str] = []
        self.batches_per_worker = batches_per_worker
        self._actor_cls = ray.remote(num_cpus=1, resources=resources or {}, max_restarts=0)(GenomeWorker)
        self._next_index = 0
        self.actors = [self._spawn() for _ in range(workers)]
        self._check_ready(self.actors)

    def _spawn(self):
        self._next_index += 1
        return self._actor_cls.remote(self.setup, self._next_index - 1)

    def _check_ready(self, actors) -> None:
        import ray
        from ray.exceptions import RayActorError

        try:
            ray.get([a.pid.remote() for a in actors])
        except RayActorError as e:
            cause = getattr(e, "cause", None) or e
            text = str(cause)
            raise WorkerSetupError(text[text.find("node "):] if "node " in text else text) from None

    def pids(self) -> list[int]:
        """The actors' process ids."""
        import ray

        return ray.get([a.pid.remote() for a in self.actors])

    def evaluate(self, tasks: Sequence[Task]) -> Iterator[Result]:
        """Play every task in batches across the actors; a dead actor's batch goes back in the queue."""
        import ray
        from ray.exceptions import RayActorError

        size = max(1, -(-len(tasks) // (len(self.actors) * self.batches_per_worker)))
        queue = deque(tasks[i:i + size] for i in range(0, len(tasks), size))
        idle, pending = list(self.actors), {}
        while queue or pending:
            while idle and queue:
                actor, batch = idle.pop(), queue.popleft()
                pending[actor.play.remote(batch)] = (actor, batch)
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            actor, batch = pending.pop(ref)
            try:
                results = ray.get(ref)
            except RayActorError:
                queue.appendleft(batch)
                self.actors.remove(actor)
                replacement = self._spawn()
                try:
                    self._check_ready([replacement])
                except WorkerSetupError:
                    replacement = None
                if replacement is not None:
                    self.actors.append(replacement)
                    idle.append(replacement)
                if not self.actors:
                    raise WorkerSetupError("every NEAT worker died and none could be started again") from None
                self.notes.append(f"a NEAT Ray worker died mid-generation; its {len(batch)} genomes were played "
                                  f"again by {'a new worker' if replacement else 'the others'}")
                continue
            idle.append(actor)
            yield from results

    def close(self) -> None:
        """Stop the actors (the cluster stays up)."""
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []


def make_backend(kind: str, setup: WorkerSetup, workers: int, address: str | None = "auto",
                 resources: dict[str, float] | None = None) -> Backend:
    """The backend an experiment's ``agent.backend`` names."""
    if kind == "ray":
        return RayBackend(setup, workers, address, resources)
    return LocalBackend(setup, workers)
