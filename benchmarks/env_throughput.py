"""Env throughput on SMB Level1-1 (frame skip 4, 84x84x4), in one run, frames per second of emulation.

Measures, each in its own process (stable-retro allows one emulator per process):
  raw        ``em.step()`` alone: the emulator's limit on one core
  plain      stable-retro's ``env.step()`` on every frame, no wrappers
  single     retrodojo's full stack, one env in this process
  vec        retrodojo's full stack in ``RetroVecEnv`` (shared memory, env 0 in this process), one env
             per core
  subproc    the same stack under SB3's ``SubprocVecEnv`` (pipes), same env count
  async      the same stack under gymnasium's ``AsyncVectorEnv(shared_memory=True)``, same env count
  example    stable-retro's examples/ppo.py stack: StochasticFrameSkip + WarpFrame + SubprocVecEnv +
             VecFrameStack (+ VecTransposeImage), render_mode=None, same worker count

``subproc`` and ``async`` are the rows the choice of ``RetroVecEnv`` rests on: re-run them on a machine
with more cores (or a GPU host) to check it still earns its place.
``ratio_vs_limit`` = vec frames/s / (raw frames/s x workers). Usage:
    python benchmarks/env_throughput.py [--quick] [--json] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import run_isolated, stamp  # noqa: E402

from wrappers.vec_env import cores  # noqa: E402

GAME, STATE = "SuperMarioBros-Nes", "Level1-1"
SKIP = 4


def _spec():
    from wrappers import EnvSpec

    return EnvSpec(game=GAME, state=STATE, profile="smb", actions="right_only", frame_skip=SKIP,
                   resize=(84, 84), grayscale=True, frame_stack=4)


def _retro_env():
    import stable_retro

    from wrappers import roms

    roms.register()
    return stable_retro.make(roms.canonical_game(GAME), STATE, inttype=roms.INTTYPE, render_mode=None)


def _masks(env):
    from wrappers.profile import action_masks, load_profile

    masks, _ = action_masks(load_profile("smb"), "right_only")
    return masks


def bench_raw(seconds: float) -> float:
    """Raw ``em.step()``, a random right_only mask held 4 frames, back to the start every 1,000 frames."""
    env = _retro_env()
    env.reset()
    masks, em, rng = _masks(env), env.em, np.random.default_rng(0)
    start = em.get_state()
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(250):
            em.set_button_mask(masks[rng.integers(len(masks))], 0)
            for _ in range(SKIP):
                em.step()
        frames += 1000
        em.set_state(start)
    return frames / (time.perf_counter() - t0)


def bench_plain(seconds: float) -> float:
    """stable-retro's ``RetroEnv.step`` on every frame (screen, RAM, reward, done, info each frame)."""
    env = _retro_env()
    env.reset()
    masks, rng = _masks(env), np.random.default_rng(0)
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        m = masks[rng.integers(len(masks))]
        for _ in range(SKIP):
            _, _, done, _, _ = env.step(m)
            frames += 1
            if done:
                env.reset()
    return frames / (time.perf_counter() - t0)


def bench_single(seconds: float) -> float:
    """retrodojo's stack, one env in this process, random actions."""
    from wrappers.factory import make_env

    env = make_env(_spec(), seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
        steps += 1
        if term or trunc:
            env.reset()
    return steps * SKIP / (time.perf_counter() - t0)


def _step_vec(venv, n_actions: int, n_envs: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    venv.reset()
    for _ in range(20):  # warm up the pipes
        venv.step(rng.integers(n_actions, size=n_envs))
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        venv.step(rng.integers(n_actions, size=n_envs))
        steps += 1
    fps = steps * n_envs * SKIP / (time.perf_counter() - t0)
    venv.close()
    return fps


def bench_vec(seconds: float, workers: int) -> float:
    """retrodojo's vectorized stack (RetroVecEnv, one emulator per process)."""
    from wrappers import make_vec_env

    venv = make_vec_env(_spec(), n_envs=workers, seed=0)
    return _step_vec(venv, venv.action_space.n, workers, seconds)


def bench_subproc(seconds: float, workers: int) -> float:
    """retrodojo's stack, each env in a worker process of SB3's SubprocVecEnv."""
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from wrappers import env_thunk

    venv = SubprocVecEnv([env_thunk(_spec(), seed=i) for i in range(workers)], start_method="forkserver")
    return _step_vec(venv, venv.action_space.n, workers, seconds)


def bench_async(seconds: float, workers: int) -> float:
    """retrodojo's stack in gymnasium's AsyncVectorEnv with shared-memory observations."""
    from gymnasium.vector import AsyncVectorEnv

    from wrappers import env_thunk

    venv = AsyncVectorEnv([env_thunk(_spec(), seed=i) for i in range(workers)], shared_memory=True,
                          context="forkserver")
    rng = np.random.default_rng(0)
    n = venv.single_action_space.n
    venv.reset(seed=0)
    for _ in range(20):
        venv.step(rng.integers(n, size=workers))
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        venv.step(rng.integers(n, size=workers))
        steps += 1
    fps = steps * workers * SKIP / (time.perf_counter() - t0)
    venv.close()
    return fps


def _example_env():
    from stable_retro.examples.discretizer import Discretizer
    from stable_retro.examples.ppo import make_retro, wrap_deepmind_retro

    from wrappers import roms
    from wrappers.profile import load_profile

    roms.register()
    env = make_retro(game=roms.canonical_game(GAME), state=STATE, render_mode=None, inttype=roms.INTTYPE)
    env = wrap_deepmind_retro(env)
    # Same right_only action set as ours, so both play the same game.
    return Discretizer(env, load_profile("smb").actions["right_only"][1:] + [[]])


def bench_example(seconds: float, workers: int) -> float:
    """stable-retro's examples/ppo.py env stack with the same worker count."""
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack, VecTransposeImage

    venv = VecTransposeImage(VecFrameStack(SubprocVecEnv([_example_env] * workers), n_stack=4))
    return _step_vec(venv, venv.action_space.n, workers, seconds)


def _run(name: str, seconds: float, workers: int, q) -> None:
    fn = {"raw": bench_raw, "plain": bench_plain, "single": bench_single}.get(name)
    multi = {"vec": bench_vec, "subproc": bench_subproc, "async": bench_async, "example": bench_example}
    q.put(fn(seconds) if fn else multi[name](seconds, workers))


def measure(name: str, seconds: float, workers: int) -> float:
    """Run one measurement in a fresh process and return frames/s."""
    return run_isolated(_run, name, seconds, workers)


def main() -> None:
    """Run every measurement and print a table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 s per measurement instead of 15")
    ap.add_argument("--json", action="store_true", help="print a JSON object")
    ap.add_argument("--workers", type=int, default=cores())
    args = ap.parse_args()
    seconds = 3.0 if args.quick else 15.0
    fps = {}
    for name in ("raw", "plain", "single", "vec", "subproc", "async", "example"):
        fps[name] = measure(name, seconds, args.workers)
    limit = fps["raw"] * args.workers
    out = {
        "game": GAME, "state": STATE, "frame_skip": SKIP, "obs": [4, 84, 84], "workers": args.workers,
        "seconds_each": seconds, "cpu": platform.processor() or platform.machine(),
        "frames_per_s": {k: round(v, 1) for k, v in fps.items()},
        "ratio_vs_limit": round(fps["vec"] / limit, 3),
        "example_ratio_vs_limit": round(fps["example"] / limit, 3),
        "subproc_ratio_vs_limit": round(fps["subproc"] / limit, 3),
        "async_ratio_vs_limit": round(fps["async"] / limit, 3),
    }
    if args.json:
        print(json.dumps({**stamp(), **out}, indent=2))
        return
    print(f"SMB {STATE}, frame skip {SKIP}, 84x84x4, {args.workers} workers, {seconds:.0f} s each")
    print(f"{'stack':<10}{'frames/s':>12}{'vs limit':>10}")
    for k, v in fps.items():
        per = v / (limit if k in ("vec", "subproc", "async", "example") else fps["raw"])
        print(f"{k:<10}{v:>12.0f}{per:>10.2f}")
    print(f"ratio_vs_limit (vec) = {out['ratio_vs_limit']:.3f}; SubprocVecEnv {out['subproc_ratio_vs_limit']:.3f}; "
          f"AsyncVectorEnv {out['async_ratio_vs_limit']:.3f}; example stack = {out['example_ratio_vs_limit']:.3f}")


if __name__ == "__main__":
    main()
