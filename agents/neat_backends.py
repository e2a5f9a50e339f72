"""Where NEAT's genomes are played: a pool of local processes, or Ray actors on the machines of a cluster.

Both backends hold one emulator per worker process for the whole run (stable-retro allows one per process),
take genomes as ``(key, genome, episodes, starts)`` tasks and give back ``(key, fitness, episode records)``, the same
records whichever ran them, so TensorBoard, checkpoints, resume and the champion do not depend on the backend.

Nothing assumes a shared file system: a worker gets a :class:`WorkerSetup` holding the env spec, the loaded
game profile and the resolved neat-python config *text*. Only the ROM must be on each machine (imported with
``retrodojo roms import`` there); a worker without it says which node and what to run.

A worker that dies mid-generation (a killed process, a lost node) does not lose the generation: the genomes
it held are played again by the others and a fresh worker replaces it; the run's log says so. A genome that
kills the worker playing it ``max_deaths`` times (alone, so that it is the one) is not played again: it gets
its generation's worst fitness and the log names it. When no worker is left and none can be started again
within ``placement_timeout`` seconds (a lost node, a cluster without room), :class:`agents.base.WorkersLost`
ends the run with its last checkpoint and the command that resumes it.
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_any
from typing import Any, Protocol

from agents.base import WorkersLost
from agents.errors import AgentError

# (genome key, genome, episodes or their env seeds, shared starts or None: see play_genome)
Task = tuple[int, Any, "int | tuple[int, ...]", Any]
Result = tuple[int, float, list[dict]]  # (genome key, fitness, the info["episode"] records)

#: Deaths of the worker playing a genome (alone) after which the genome is not played again.
MAX_DEATHS = 2
#: Seconds a replacement worker may take to start (be placed on a node, make its env) before it is given up;
#: the environment variable RETRODOJO_RAY_PLACEMENT_TIMEOUT changes it (a cluster that scales up slowly).
PLACEMENT_TIMEOUT_S = 60.0


def ray_placement_timeout() -> float:
    """Seconds a Ray worker may take to start: $RETRODOJO_RAY_PLACEMENT_TIMEOUT, else PLACEMENT_TIMEOUT_S."""
    raw = os.environ.get("RETRODOJO_RAY_PLACEMENT_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else PLACEMENT_TIMEOUT_S
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise AgentError(f"RETRODOJO_RAY_PLACEMENT_TIMEOUT={raw!r}: give the seconds a Ray worker may take to "
                         f"start, a positive number (unset: {PLACEMENT_TIMEOUT_S:g}).")
    return value


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
    watch: Any = None  # a wrappers.tap.FrameFeed: the first local worker's frames go to a window (train --watch)


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
        self.sink = None
        if setup.watch is not None and index == 0:
            from wrappers.tap import FeedSink, Tap

            self.sink = FeedSink(setup.watch, "NEAT's first worker")
            self.env = Tap(self.env, self.sink, every_frame=False)

    def play(self, tasks: Sequence[Task]) -> list[Result]:
        """Play each genome; its fitness is the mean shaped return of its episodes."""
        from agents.neat_play import play_genome

        out = []
        for key, genome, episodes, *starts in tasks:
            if self.sink is not None:
                self.sink.context = f"NEAT's first worker: genome {key}"
            fitness, eps = play_genome(genome, self.env, *self.args, episodes=episodes,
                                       starts=starts[0] if starts else None)
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


class _Backend:
    """What both backends share: the notes for the run's log, and the genomes that kill their worker."""

    def __init__(self, max_deaths: int):
        self.notes: list[str] = []
        self.max_deaths = max_deaths
        self.deaths: dict[int, int] = {}  # genome key -> deaths of the worker playing it alone

    def evaluate(self, tasks: Sequence[Task]) -> Iterator[Result]:
        """Play every task; a genome given up (it killed its worker ``max_deaths`` times) comes last, with the
        lowest fitness of its generation: it must not be played again, and it must not be picked either."""
        dropped = [t for t in tasks if self.deaths.get(t[0], 0) >= self.max_deaths]
        fitnesses = []
        for result in self._play([t for t in tasks if self.deaths.get(t[0], 0) < self.max_deaths], dropped):
            fitnesses.append(result[1])
            yield result
        worst = min(fitnesses, default=0.0)
        for key, *_ in dropped:
            self.notes.append(f"NEAT genome {key} killed the worker playing it {self.deaths[key]} times: it is "
                              "not played again and gets its generation's worst fitness")
            yield key, worst, []

    def _blame(self, task: Task, queue: deque, dropped: list[Task]) -> None:
        """The worker playing ``task`` alone died: count it, then play the genome again or give it up."""
        self.deaths[task[0]] = self.deaths.get(task[0], 0) + 1
        if self.deaths[task[0]] >= self.max_deaths:
            dropped.append(task)
        else:
            queue.appendleft(task)

    def _play(self, tasks: list[Task], dropped: list[Task]) -> Iterator[Result]:
        raise NotImplementedError


# --------------------------------------------------------------------------- local processes


def _local_worker(conn, setup: WorkerSetup, index: int) -> None:
    """A local worker process: make the env, say so, then play the tasks the pipe brings until None."""
    # Ctrl-C, `timeout` and schedulers signal the whole process group: the main process decides when to stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        worker = GenomeWorker(setup, index)
    except Exception as e:
        conn.send(("error", str(e) if isinstance(e, WorkerSetupError) else traceback.format_exc()))
        return
    conn.send(("ready", os.getpid()))
    try:
        while (task := conn.recv()) is not None:
            try:
                result = worker.play([task])[0]
            except Exception:
                conn.send(("raised", task[0], traceback.format_exc()))
                continue
            conn.send(("result", result))
    except (EOFError, OSError):
        pass  # the main process is gone, and the run with it


class _LocalWorker:
    """One worker process, its pipe, and the tasks sent to it and not answered yet, in the order sent (it
    plays them in that order, so the first is the one it is playing)."""

    def __init__(self, ctx, setup: WorkerSetup, index: int):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_local_worker, args=(child, setup, index), daemon=True,
                                name=f"neat-worker-{index}")
        self.proc.start()
        child.close()
        self.sent: deque[Task] = deque()
        self.ready = False
        # Sending is a thread's job: a large genome fills the pipe until the worker reads it, and the main
        # process must not wait for that while other workers' results come in.
        self._outbox: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        threading.Thread(target=self._send_all, daemon=True, name=f"neat-send-{index}").start()

    def _send_all(self) -> None:
        while True:
            item = self._outbox.get()
            try:
                self.conn.send(item)
            except (OSError, ValueError):
                return  # the worker died, or was closed: its sentinel says so to the main loop
            if item is None:
                return

    def send(self, task: Task) -> None:
        """Queue a task for this worker."""
        self.sent.append(task)
        self._outbox.put(task)

    def exit_reason(self) -> str:
        """How the process ended, for the log."""
        from wrappers.vec_env import exit_reason

        self.proc.join(timeout=5)
        return "not answering" if self.proc.exitcode is None else exit_reason(self.proc.exitcode)

    def close(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not."""
        from wrappers.vec_env import end_process

        self._outbox.put(None)
        end_process(self.proc, timeout)
        self.conn.close()


class LocalBackend(_Backend):
    """``workers`` processes on this machine (forkserver), one env each, made once per run.

    Each worker holds up to two genomes (the one it plays, the next one waiting in its pipe), so it never
    waits for the main process between genomes. A worker that dies is replaced, alone; the genome it was
    playing is counted against (see :class:`_Backend`) and played again with the one it held next.
    """

    def __init__(self, setup: WorkerSetup, workers: int, max_deaths: int = MAX_DEATHS):
        super().__init__(max_deaths)
        self.setup = setup
        from wrappers.vec_env import worker_context

        self._ctx = worker_context()
        self._next_index = 0
        self._workers = [self._start() for _ in range(workers)]
        try:
            for w in self._workers:
                self._await_ready(w)
        except BaseException:
            self.close()
            raise

    def _start(self) -> _LocalWorker:
        self._next_index += 1
        return _LocalWorker(self._ctx, self.setup, self._next_index - 1)

    def _await_ready(self, w: _LocalWorker) -> None:
        while not w.conn.poll(1.0):
            if not w.proc.is_alive():
                raise WorkerSetupError(f"{_node()}: a NEAT worker process died while starting ({w.exit_reason()})")
        self._handle(w, w.conn.recv())

    def _handle(self, w: _LocalWorker, msg: tuple) -> Result | None:
        """One message from a worker: its result, or None for the others (an error raises)."""
        if msg[0] == "result":
            w.sent.popleft()
            return msg[1]
        if msg[0] == "ready":
            w.ready = True
        elif msg[0] == "raised":
            raise RuntimeError(f"a NEAT worker raised while playing genome {msg[1]}:\n{msg[2]}")
        elif msg[0] == "error":
            raise WorkerSetupError(msg[1])
        return None

    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return [w.proc.pid for w in self._workers]

    def _play(self, tasks: list[Task], dropped: list[Task]) -> Iterator[Result]:
        queue = deque(tasks)
        while queue or any(w.sent for w in self._workers):
            for w in self._workers:
                while queue and len(w.sent) < 2:
                    w.send(queue.popleft())
            # a local worker either answers or ends (its sentinel): no timeout needed
            owner = {}
            for w in self._workers:
                owner[w.conn] = owner[w.proc.sentinel] = w
            woke = {id(owner[x]): owner[x] for x in wait_any(list(owner))}
            for w in woke.values():
                try:
                    while w.conn.poll():
                        result = self._handle(w, w.conn.recv())
                        if result is not None:
                            if queue:  # the next genome first: the worker must not wait while this is recorded
                                w.send(queue.popleft())
                            yield result
                    alive = w.proc.is_alive()
                except (EOFError, OSError):
                    alive = False
                except WorkerSetupError as e:  # a replacement could not make its env: nor will the next one
                    raise WorkersLost(f"a NEAT worker died and the one started instead failed: {e}") from None
                if not alive:
                    self._lost(w, queue, dropped)

    def _lost(self, w: _LocalWorker, queue: deque, dropped: list[Task]) -> None:
        """A worker died: its genomes back in the queue (the one it played counted against), a new worker."""
        held, reason = list(w.sent), w.exit_reason()
        self._workers.remove(w)
        w.close(timeout=1.0)
        queue.extendleft(reversed(held[1:]))
        if held:
            self._blame(held[0], queue, dropped)
        self._workers.append(self._start())
        self.notes.append(f"a NEAT worker process (pid {w.proc.pid}) died mid-generation ({reason}); its {len(held)} "
                          "unfinished genomes were played again, and a new worker took its place")

    def close(self) -> None:
        """Stop the worker processes."""
        for w in self._workers:
            w.close()
        self._workers = []


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


class NoRoomForWorkers(RuntimeError):
    """No NEAT worker could be placed on the Ray cluster in time (at the start of a run): the message says
    what was waited for and what the cluster has."""


class _RayWorker:
    """One actor, its index, and the batches sent to it and not answered yet, in the order sent (an actor
    plays its tasks in that order, so the first is the one it is playing)."""

    def __init__(self, handle, index: int):
        self.handle = handle
        self.index = index
        self.started = time.monotonic()
        self.sent: deque[tuple[Any, list[Task]]] = deque()  # (object ref, batch)


class RayBackend(_Backend):
    """``workers`` Ray actors (one CPU each, plus any custom ``resources``), one env each, anywhere in the
    cluster; genomes go out in batches.

    Batches shrink as the generation goes: each takes 1/``batch_share`` of the genomes still waiting per
    actor, so the first are large (few round trips) and the last are single genomes (the generation waits
    for its last batch, and genomes differ a lot in how long they play). Each actor holds up to two batches
    (the one it plays, the next one), so it does not wait for the driver between batches; near the end of a
    generation only one, so an idle actor can take the last genomes.

    An actor that dies is replaced; its batches go back to the queue, the one it was playing split into
    single genomes (so that a genome that kills its worker shows: see :class:`_Backend`). A replacement that
    cannot start within ``placement_timeout`` seconds is given up; with no actor left the run stops
    (:class:`agents.base.WorkersLost`) instead of waiting for ever.
    """

    def __init__(self, setup: WorkerSetup, workers: int, address: str | None = "auto",
                 resources: dict[str, float] | None = None, batch_share: int = 4, max_deaths: int = MAX_DEATHS,
                 placement_timeout: float | None = None):
        import ray

        super().__init__(max_deaths)
        connect_ray(address)
        self.setup = setup
        self.batch_share = batch_share
        self.placement_timeout = placement_timeout if placement_timeout is not None else ray_placement_timeout()
        self.resources = resources or {}
        # no task events: they are the dashboard's, and every batch would send some to the GCS
        self._actor_cls = ray.remote(num_cpus=1, resources=self.resources, max_restarts=0,
                                     enable_task_events=False)(GenomeWorker)
        self._next_index = 0
        self._last_loss = ""
        self.actors: list[_RayWorker] = []
        # replacements still starting: a replacement's first call -> it (kept from one generation to the next)
        self._starting: dict[Any, _RayWorker] = {}
        self._start(workers)

    def _spawn(self) -> _RayWorker:
        self._next_index += 1
        return _RayWorker(self._actor_cls.remote(self.setup, self._next_index - 1), self._next_index - 1)

    def _start(self, n: int) -> None:
        """Start ``n`` actors and wait (at most ``placement_timeout``) until they have made their envs."""
        import ray
        from ray.exceptions import RayActorError

        starting = {w.handle.pid.remote(): w for w in (self._spawn() for _ in range(n))}
        done, late = ray.wait(list(starting), num_returns=len(starting), timeout=self.placement_timeout)
        for ref in done:
            try:
                ray.get(ref)
            except RayActorError as e:
                for w in starting.values():
                    ray.kill(w.handle)
                cause = getattr(e, "cause", None) or e
                text = str(cause)
                raise WorkerSetupError(text[text.find("node "):] if "node " in text else text) from None
            self.actors.append(starting[ref])
        for ref in late:
            ray.kill(starting[ref].handle)
        if not self.actors:
            raise NoRoomForWorkers(f"no NEAT worker could start on the Ray cluster within "
                                   f"{self.placement_timeout:.0f} s: {self._room()}")
        if late:
            self.notes.append(f"only {len(self.actors)} of {n} NEAT workers started on the Ray cluster within "
                              f"{self.placement_timeout:.0f} s ({self._room()}); the run goes on with them")

    def _room(self) -> str:
        """What a worker needs and what the cluster has free, for messages."""
        import ray

        need = ", ".join(f"{v:g} {k}" for k, v in {"CPU": 1, **self.resources}.items())
        try:
            alive = sum(n["Alive"] for n in ray.nodes())
            free = ray.available_resources()
        except Exception as e:  # the cluster may be too far gone to say
            return f"each worker needs {need}; the cluster did not say what it has ({type(e).__name__})"
        has = ", ".join(f"{free.get(k, 0):g} {k}" for k in {"CPU": 1, **self.resources})
        return f"each worker needs {need}; the cluster has {alive} alive node{'s' * (alive != 1)} and {has} free"

    def pids(self) -> list[int]:
        """The actors' process ids."""
        import ray

        return ray.get([w.handle.pid.remote() for w in self.actors])

    def _batch(self, queue: deque, suspects: deque) -> list[Task]:
        if suspects:  # alone, so that a genome that kills its worker is the one blamed
            return [suspects.popleft()]
        size = max(1, -(-len(queue) // (self.batch_share * len(self.actors))))
        return [queue.popleft() for _ in range(min(size, len(queue)))]

    def _play(self, tasks: list[Task], dropped: list[Task]) -> Iterator[Result]:
        import ray
        from ray.exceptions import RayActorError

        queue, suspects = deque(tasks), deque()
        pending: dict[Any, _RayWorker] = {}  # a batch's ref -> the actor playing it
        starting = self._starting

        def feed(w: _RayWorker) -> None:
            # two batches while plenty wait (no pause between them), one near the end (no genome held back)
            depth = 2 if len(queue) + len(suspects) > 2 * len(self.actors) else 1
            while (queue or suspects) and len(w.sent) < depth:
                batch = self._batch(queue, suspects)
                ref = w.handle.play.remote(batch)
                w.sent.append((ref, batch))
                pending[ref] = w

        while queue or suspects or pending:
            for w in self.actors:
                feed(w)
            if not pending and not starting:
                raise WorkersLost(f"every NEAT worker on Ray was lost ({self._last_loss}) and none could start "
                                  f"again within {self.placement_timeout:.0f} s: {self._room()}")
            done, _ = ray.wait([*pending, *starting], num_returns=1, timeout=1.0)
            for ref in done:
                if ref in starting:
                    w = starting.pop(ref)
                    try:
                        ray.get(ref)
                    except RayActorError as e:  # placed on a node that was dying too, say: try again, in time
                        self._last_loss = f"the last: {_first_line(e)}"
                        starting.update(self._replace(since=w.started))
                        continue
                    self.actors.append(w)
                    continue
                w = pending.pop(ref, None)
                if w is None:
                    continue  # a batch of an actor already given up for lost
                try:
                    results = ray.get(ref)
                except RayActorError as e:
                    starting.update(self._lost(w, e, queue, suspects, dropped, pending))
                    continue
                w.sent = deque(x for x in w.sent if x[0] != ref)
                feed(w)  # its next batch first: the actor must not wait while these are recorded
                yield from results
            now = time.monotonic()
            for ref, w in list(starting.items()):
                if now - w.started > self.placement_timeout:
                    del starting[ref]
                    ray.kill(w.handle)
                    self.notes.append(f"a new NEAT Ray worker could not start within {self.placement_timeout:.0f} "
                                      f"s ({self._room()}); the run goes on with {len(self.actors)}")

    def _lost(self, w: _RayWorker, error: Exception, queue: deque, suspects: deque, dropped: list[Task],
              pending: dict) -> dict:
        """An actor died: its batches back in the queue, the one it played split (or, alone, counted against);
        returns the replacement's first call, to wait for."""
        import ray

        self.actors.remove(w)
        ray.kill(w.handle)  # "unavailable" may come back: it must not play on
        held = [batch for ref, batch in w.sent]
        for ref, _ in w.sent:
            pending.pop(ref, None)
        for batch in reversed(held[1:]):
            queue.extendleft(reversed(batch))
        if held and len(held[0]) == 1:
            self._blame(held[0][0], suspects, dropped)
        elif held:
            suspects.extend(held[0])
        self._last_loss = f"the last: {_first_line(error)}"
        self.notes.append(f"a NEAT Ray worker died mid-generation ({_first_line(error)}); its "
                          f"{sum(map(len, held))} genomes were played again, and a new worker was started")
        return self._replace(since=time.monotonic())

    def _replace(self, since: float) -> dict:
        """Start a replacement, its time to start counted from ``since``; returns its first call -> it (none
        once that time is up)."""
        if time.monotonic() - since > self.placement_timeout:
            self.notes.append(f"a new NEAT Ray worker could not start within {self.placement_timeout:.0f} s "
                              f"({self._last_loss}); the run goes on with {len(self.actors)}")
            return {}
        new = self._spawn()
        new.started = since
        return {new.handle.pid.remote(): new}

    def close(self) -> None:
        """Stop the actors (the cluster stays up)."""
        import ray

        for w in [*self.actors, *self._starting.values()]:
            ray.kill(w.handle)
        self.actors, self._starting = [], {}


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def make_backend(kind: str, setup: WorkerSetup, workers: int, address: str | None = "auto",
                 resources: dict[str, float] | None = None) -> Backend:
    """The backend an experiment's ``agent.backend`` names."""
    if kind == "ray":
        return RayBackend(setup, workers, address, resources)
    return LocalBackend(setup, workers)
