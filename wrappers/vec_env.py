"""A vectorized env for emulators: shared memory, semaphores, and one env in the calling process.

stable-retro allows one emulator per process, so SB3 needs a multi-process vec env. SB3's
``SubprocVecEnv`` pickles every observation, action and info dict through a pipe and sleeps on it; on this
kind of machine (a 2-vCPU VM) that loses half the emulator's throughput with one worker per core:
  - a pipe round trip with a 4x84x84 observation costs ~150 us against ~30 us for a small message;
  - a pickled NumPy scalar action costs ~40 us more than an int;
  - waking a process whose vCPU went idle costs ~100-200 us, twice per step.
Here observations, actions, rewards and done flags live in one shared-memory block; each step is one
semaphore post to each worker and one back. Info dicts cross the pipe only when an episode ends (that is
when SB3 and the loggers need them: ``episode``, ``terminal_observation``, ``TimeLimit.truncated``); other
steps return empty infos. Env 0 runs in the calling process (it holds no emulator otherwise), so the main
process works instead of sleeping while the workers step. When workers + 1 <= cores, both sides spin
briefly before sleeping, which avoids the idle-vCPU wake-up. Measured on SMB with 2 envs on 2 cores:
SubprocVecEnv 3,300 frames/s, this class 5,100 (see benchmarks/env_throughput.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing import shared_memory

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper

_STEP, _PIPE = 0, 1
_OK, _ENDED, _ERROR = 0, 1, 2


def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class EnvWorkerError(RuntimeError):
    """An env worker process died or raised; the message names the worker and what happened."""


def exit_reason(code: int | None) -> str:
    """How a worker process ended, for a message: still running, killed by a signal, or its exit code."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _obs_fields(space: gym.Space) -> tuple:
    """(key, shape, dtype) of each observation array: one for a Box, one per key for a Dict of Boxes."""
    if isinstance(space, gym.spaces.Dict):
        return tuple((k, tuple(s.shape), s.dtype.str) for k, s in space.spaces.items())
    return ((None, tuple(space.shape), space.dtype.str),)


def _plan(n: int, obs_fields: tuple, act_shape, act_dtype) -> tuple[list, int]:
    """Fields of the shared block (name, shape, dtype, offset), 8-byte aligned, and its total size."""
    arrays = [(f"obs{i}", (n, *shape), dtype) for i, (_key, shape, dtype) in enumerate(obs_fields)]
    arrays += [("act", (n, *act_shape), act_dtype), ("rew", (n,), "<f8"), ("done", (n,), "u1"),
               ("cmd", (n,), "<i4"), ("status", (n,), "<i4"), ("frames", (n,), "<i4")]
    fields, offset = [], 0
    for name, shape, dtype in arrays:
        offset = -(-offset // 8) * 8
        fields.append((name, shape, np.dtype(dtype), offset))
        offset += int(np.prod(shape)) * np.dtype(dtype).itemsize
    return fields, offset


class _Slots:
    """Views of one shared-memory block: observations, actions, rewards, done flags, command, status and
    emulator frames of the last step, per env."""

    act: np.ndarray
    rew: np.ndarray
    done: np.ndarray
    cmd: np.ndarray
    status: np.ndarray
    frames: np.ndarray

    def __init__(self, buf, n, obs_fields, act_shape, act_dtype):
        for name, shape, dtype, offset in _plan(n, obs_fields, act_shape, act_dtype)[0]:
            setattr(self, name, np.ndarray(shape, dtype, buffer=buf, offset=offset))
        self.obs_keys = [key for key, _, _ in obs_fields]
        self.obs = [getattr(self, f"obs{i}") for i in range(len(obs_fields))]

    def put_obs(self, i: int, obs) -> None:
        """Write env ``i``'s observation (an array, or a dict of arrays)."""
        if self.obs_keys == [None]:
            self.obs[0][i] = obs
        else:
            for key, arr in zip(self.obs_keys, self.obs):
                arr[i] = obs[key]

    def get_obs(self):
        """A copy of every env's observation: an array, or a dict of arrays."""
        if self.obs_keys == [None]:
            return self.obs[0].copy()
        return {key: arr.copy() for key, arr in zip(self.obs_keys, self.obs)}


def _acquire(sem, spin_s: float, on_timeout) -> None:
    """Acquire ``sem``, spinning up to ``spin_s`` first (cheaper than an idle-vCPU wake-up).

    While blocked, ``on_timeout()`` runs every second: it raises or exits when the other side died, so a
    killed process never leaves its partner waiting forever.
    """
    if spin_s:
        end = time.perf_counter() + spin_s
        while time.perf_counter() < end:
            if sem.acquire(False):
                return
    while not sem.acquire(timeout=1.0):
        on_timeout()


def worker_context(start_method: str | None = None):
    """The multiprocessing context for emulator workers: forkserver where available, else spawn.

    The fork server is started with SIGTERM ignored: `timeout`, systemd and batch schedulers signal the
    whole process group, and a fork server killed by it makes every worker read as dead (exit code 255)
    while the trainer is still writing its checkpoint. It still exits when the trainer does. Its children
    inherit the ignored SIGTERM, so whoever ends one uses SIGKILL (:func:`end_process`). The trainer's own
    SIGTERM is swapped out only while this process starts its server, once: a SIGTERM in those
    milliseconds at the start of a run is lost, none later.
    """
    global _SERVER_OF
    if start_method is None:
        start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    if start_method == "forkserver" and threading.current_thread() is threading.main_thread() \
            and os.getpid() != _SERVER_OF:
        from multiprocessing import forkserver

        old = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited through the server's exec
        try:
            forkserver.ensure_running()
            _SERVER_OF = os.getpid()
        finally:
            # None: a handler installed outside Python, which cannot be put back from here; the default is nearest
            signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)
    return mp.get_context(start_method)


_SERVER_OF: int | None = None  # the pid that started its fork server through worker_context


def end_process(proc, timeout: float = 5.0) -> None:
    """Wait up to ``timeout`` s for ``proc`` to exit, then kill it: SIGKILL, since a child of the fork server
    ignores SIGTERM (:func:`worker_context`)."""
    proc.join(timeout=timeout)
    if proc.is_alive():
        proc.kill()
        proc.join(timeout=timeout)


def _exit_if_orphaned(parent: int):
    """Worker side: exit when the trainer died (a SIGKILLed trainer must not leave emulators behind)."""
    def check() -> None:
        if os.getppid() != parent:
            os._exit(0)

    return check


def _raise_if_dead(processes):
    """Trainer side: raise when a worker died, instead of waiting for it forever."""
    def check() -> None:
        dead = [p for p in processes if not p.is_alive()]
        if dead:
            raise EnvWorkerError(f"an env worker process (pid {dead[0].pid}) died: {exit_reason(dead[0].exitcode)}")

    return check


def _worker(index: int, remote, parent_remote, env_fn_wrapper: CloudpickleWrapper, go, done,
            spin_s: float) -> None:
    """Run env ``index``: steps through shared memory, everything else through the pipe."""
    from stable_baselines3.common.env_util import is_wrapped

    # Ctrl-C, `timeout`, systemd and batch schedulers signal the whole process group: only the main process
    # decides when to stop (it writes a checkpoint first); an orphaned worker still exits by itself.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    orphaned = _exit_if_orphaned(os.getppid())
    parent_remote.close()
    shm = slots = env = None
    try:
        env = env_fn_wrapper.var()
        remote.send(("ready", (env.observation_space, env.action_space)))
        # The parent sizes the shared block from the spaces it just got, then names it.
        shm_name, layout = remote.recv()
        shm = shared_memory.SharedMemory(name=shm_name)
        slots = _Slots(shm.buf, *layout)
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        while True:
            _acquire(go, spin_s, orphaned)
            if slots.cmd[index] == _STEP:
                try:
                    action = int(slots.act[index]) if discrete else slots.act[index].copy()
                    obs, reward, terminated, truncated, info = env.step(action)
                    ended = terminated or truncated
                    if ended:
                        info["TimeLimit.truncated"] = truncated and not terminated
                        info["terminal_observation"] = obs
                        obs, reset_info = env.reset()
                    slots.put_obs(index, obs)
                    slots.rew[index] = reward
                    slots.done[index] = ended
                    slots.frames[index] = info.get("frames", 0)
                    slots.status[index] = _ENDED if ended else _OK
                    if ended:
                        remote.send((info, reset_info))
                except Exception:
                    slots.status[index] = _ERROR
                    remote.send(traceback.format_exc())
                done.release()
                continue
            cmd, data = remote.recv()
            if cmd == "reset":
                obs, reset_info = env.reset(seed=data[0], **({"options": data[1]} if data[1] else {}))
                slots.put_obs(index, obs)
                remote.send(reset_info)
            elif cmd == "close":
                break
            elif cmd == "render":
                remote.send(env.render())
            elif cmd == "env_method":
                remote.send(env.get_wrapper_attr(data[0])(*data[1], **data[2]))
            elif cmd == "get_attr":
                remote.send(env.get_wrapper_attr(data))
            elif cmd == "set_attr":
                remote.send(setattr(env, data[0], data[1]))
            elif cmd == "is_wrapped":
                remote.send(is_wrapped(env, data))
            else:
                raise NotImplementedError(f"`{cmd}` is not implemented in the worker")
    except KeyboardInterrupt:
        pass
    except Exception:
        with contextlib.suppress(OSError):
            remote.send(("error", traceback.format_exc()))
    finally:
        if env is not None:
            env.close()
        del slots
        if shm is not None:
            shm.close()
        remote.close()


class RetroVecEnv(VecEnv):
    """SB3 ``VecEnv`` over worker processes (one emulator each), fast on few cores. See the module doc.

    Args:
        env_fns: picklable env factories.
        local: build env 0 in this process (which must not hold another emulator).
        start_method: multiprocessing start method (default forkserver where available, else spawn).
        spin: spin briefly before sleeping; ``None`` decides from the core count.

    Example:
        >>> venv = RetroVecEnv([env_thunk(spec, seed=i) for i in range(2)])  # doctest: +SKIP
        >>> obs = venv.reset()                                              # doctest: +SKIP
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], local: bool = True,
                 start_method: str | None = None, spin: bool | None = None):
        n = len(env_fns)
        self.closed = False
        self.waiting = False
        self._shm = None
        self.processes: list = []
        self.local_env: gym.Env | None = env_fns[0]() if local else None
        self._remote_ids = list(range(1 if local else 0, n))
        if spin is None:
            spin = len(self._remote_ids) + 1 <= cores()
        self._spin_s = 0.0005 if spin else 0.0

        self.num_envs = n  # VecEnv.__init__ (below, once workers run) asks them for render_mode
        self.frames = 0  # emulator frames stepped by every env together (info["frames"] of each step)
        ctx = worker_context(start_method)
        self._done = ctx.Semaphore(0)
        self._go = {}
        self.remotes = {}
        for i in self._remote_ids:
            remote, work_remote = ctx.Pipe()
            self._go[i] = ctx.Semaphore(0)
            args = (i, work_remote, remote, CloudpickleWrapper(env_fns[i]), self._go[i], self._done, self._spin_s)
            process = ctx.Process(target=_worker, args=args, daemon=True)
            process.start()
            work_remote.close()
            self.processes.append(process)
            self.remotes[i] = remote
        spaces = None
        for i in self._remote_ids:
            tag, payload = self._recv(i)
            if tag == "error":
                self.close()
                raise EnvWorkerError(f"env {i} failed to start in its worker process:\n{payload}")
            spaces = spaces or payload
        if self.local_env is not None:
            spaces = (self.local_env.observation_space, self.local_env.action_space)
        obs_space, act_space = spaces
        boxes = obs_space.spaces.values() if isinstance(obs_space, gym.spaces.Dict) else [obs_space]
        if not all(isinstance(b, gym.spaces.Box) for b in boxes):
            self.close()
            raise TypeError(f"RetroVecEnv needs a Box or a Dict of Box observation space, got {obs_space}")
        act_shape = () if isinstance(act_space, gym.spaces.Discrete) else act_space.shape
        act_dtype = np.int64 if isinstance(act_space, gym.spaces.Discrete) else np.float32
        self._layout = (n, _obs_fields(obs_space), act_shape, np.dtype(act_dtype).str)
        self._shm = shared_memory.SharedMemory(create=True, size=_plan(*self._layout)[1])
        self._slots = _Slots(self._shm.buf, *self._layout)
        for i in self._remote_ids:
            self.remotes[i].send((self._shm.name, self._layout))
        super().__init__(n, obs_space, act_space)

    # ------------------------------------------------------------------ plumbing

    def _recv(self, i: int):
        remote = self.remotes[i]
        while not remote.poll(1.0):
            proc = self.processes[self._remote_ids.index(i)]
            if not proc.is_alive():
                raise EnvWorkerError(f"env worker {i} (pid {proc.pid}) died: {exit_reason(proc.exitcode)}")
        return remote.recv()

    def _pipe(self, i: int, cmd: str, data=None):
        self._slots.cmd[i] = _PIPE
        self._go[i].release()
        self.remotes[i].send((cmd, data))
        result = self._recv(i)
        if isinstance(result, tuple) and len(result) == 2 and result[0] == "error":
            raise EnvWorkerError(f"env worker {i} failed:\n{result[1]}")
        return result

    def _wait_done(self, count: int) -> None:
        for _ in range(count):
            _acquire(self._done, self._spin_s, _raise_if_dead(self.processes))

    # ------------------------------------------------------------------ VecEnv API

    def reset(self):
        """Reset every env (with the seeds and options set by ``seed``/``set_options``)."""
        infos = [{} for _ in range(self.num_envs)]
        for i in self._remote_ids:
            self._slots.cmd[i] = _PIPE
            self._go[i].release()
            self.remotes[i].send(("reset", (self._seeds[i], self._options[i])))
        if self.local_env is not None:
            opts = {"options": self._options[0]} if self._options[0] else {}
            obs, infos[0] = self.local_env.reset(seed=self._seeds[0], **opts)
            self._slots.put_obs(0, obs)
        for i in self._remote_ids:
            infos[i] = self._recv(i)
        self.reset_infos = infos
        self._reset_seeds()
        self._reset_options()
        return self._slots.get_obs()

    def step_async(self, actions: np.ndarray) -> None:
        """Write actions to shared memory and wake the workers."""
        actions = np.asarray(actions)
        self._slots.act[:] = actions.reshape(self._slots.act.shape)
        for i in self._remote_ids:
            self._slots.cmd[i] = _STEP
            self._go[i].release()
        self._actions = actions
        self.waiting = True

    def step_wait(self):
        """Step env 0 here while the workers step theirs; then gather."""
        n = self.num_envs
        infos: list[dict] = [{} for _ in range(n)]
        if self.local_env is not None:
            env = self.local_env
            act = self._actions[0]
            action = int(act) if isinstance(self.action_space, gym.spaces.Discrete) else np.asarray(act)
            obs, reward, terminated, truncated, info = env.step(action)
            ended = terminated or truncated
            if ended:
                info["TimeLimit.truncated"] = truncated and not terminated
                info["terminal_observation"] = obs
                obs, self.reset_infos[0] = env.reset()
                infos[0] = info
            self._slots.put_obs(0, obs)
            self._slots.rew[0] = reward
            self._slots.done[0] = ended
            self._slots.frames[0] = info.get("frames", 0)
        self._wait_done(len(self._remote_ids))
        self.waiting = False
        errors = []
        for i in self._remote_ids:
            status = self._slots.status[i]
            if status == _ENDED:
                infos[i], self.reset_infos[i] = self._recv(i)
            elif status == _ERROR:
                errors.append((i, self._recv(i)))
        if errors:
            i, tb = errors[0]
            last = tb.strip().splitlines()[-1] if tb.strip() else "an error"
            raise EnvWorkerError(f"env {i} raised in its worker process: {last}\n" + "\n".join(t for _, t in errors))
        s = self._slots
        self.frames += int(s.frames.sum())
        return s.get_obs(), s.rew.astype(np.float32), s.done.astype(bool), infos

    def close(self) -> None:
        """Close every env, stop the workers and free the shared memory."""
        if self.closed:
            return
        if self.waiting:
            with contextlib.suppress(RuntimeError):
                self._wait_done(len(self._remote_ids))
        for i, proc in zip(self._remote_ids, self.processes, strict=False):
            if proc.is_alive():
                try:
                    self._slots.cmd[i] = _PIPE
                    self._go[i].release()
                    self.remotes[i].send(("close", None))
                except (OSError, BrokenPipeError):
                    pass
        for proc in self.processes:
            end_process(proc, timeout=10)
        if self.local_env is not None:
            self.local_env.close()
        self.closed = True
        if self._shm is not None:
            self._slots = None
            self._shm.close()
            self._shm.unlink()
            self._shm = None

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Render every env (``render_mode='rgb_array'``)."""
        out = [self.local_env.render()] if self.local_env is not None else []
        return out + [self._pipe(i, "render") for i in self._remote_ids]

    def _targets(self, indices):
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices=None) -> list:
        """Get an attribute of each env (through its wrappers)."""
        return [self.local_env.get_wrapper_attr(attr_name) if i == 0 and self.local_env is not None
                else self._pipe(i, "get_attr", attr_name) for i in self._targets(indices)]

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        """Set an attribute on each env."""
        for i in self._targets(indices):
            if i == 0 and self.local_env is not None:
                setattr(self.local_env, attr_name, value)
            else:
                self._pipe(i, "set_attr", (attr_name, value))

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        """Call a method of each env."""
        out = []
        for i in self._targets(indices):
            if i == 0 and self.local_env is not None:
                out.append(self.local_env.get_wrapper_attr(method_name)(*method_args, **method_kwargs))
            else:
                out.append(self._pipe(i, "env_method", (method_name, method_args, method_kwargs)))
        return out

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        """Whether each env is wrapped with ``wrapper_class``."""
        from stable_baselines3.common.env_util import is_wrapped

        return [is_wrapped(self.local_env, wrapper_class) if i == 0 and self.local_env is not None
                else self._pipe(i, "is_wrapped", wrapper_class) for i in self._targets(indices)]

