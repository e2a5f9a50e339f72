"""PPO training throughput on SMB Level1-1: retrodojo vs stable-retro's examples/ppo.py set-up.

Both train SB3 PPO with the example's hyperparameters (8 envs, n_steps 128, batch 32, 4 epochs, lr 2.5e-4
linear, clip 0.1, ent 0.01, gamma 0.99, GAE 0.95) on frame skip 4 with sticky actions 0.25, 84x84 gray,
4 stacked frames, and the same right_only action set:
  example    its StochasticFrameSkip + WarpFrame + ClipRewardEnv + TimeLimit, SubprocVecEnv, VecFrameStack,
             VecTransposeImage, CnnPolicy; render_mode=None. Its raw int8 MultiBinary buttons crash SB3's
             Bernoulli loss, so it gets stable-retro's own Discretizer with the right_only combos.
  retrodojo  our env stack (which also max-pools frames and evaluates the profile) in RetroVecEnv,
             CnnPolicy with the channels-last Nature CNN, torch on 1 thread while envs step.
Each measurement runs in a fresh process: one warm-up rollout, then timed rollouts+updates; rounds
alternate the two so drift on a shared machine hits both. Usage:
    python benchmarks/ppo_throughput.py [--quick] [--json] [--rollouts N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proc import run_isolated, stamp  # noqa: E402

HYPER = dict(n_steps=128, batch_size=32, n_epochs=4, gamma=0.99, gae_lambda=0.95, clip_range=0.1, ent_coef=0.01)
N_ENVS, SKIP = 8, 4


def _example_env():
    from stable_retro.examples.discretizer import Discretizer
    from stable_retro.examples.ppo import make_retro, wrap_deepmind_retro

    from wrappers import roms
    from wrappers.profile import load_profile

    roms.register()
    env = make_retro(game=roms.canonical_game("SuperMarioBros-Nes"), state="Level1-1", render_mode=None,
                     inttype=roms.INTTYPE)
    env = wrap_deepmind_retro(env)
    return Discretizer(env, [c for c in load_profile("smb").actions["right_only"] if c != ["NOOP"]] + [[]])


def _model(which: str):
    from stable_baselines3 import PPO
    from stable_baselines3.common.utils import LinearSchedule

    if which == "example":
        from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack, VecTransposeImage

        venv = VecTransposeImage(VecFrameStack(SubprocVecEnv([_example_env] * N_ENVS), n_stack=4))
        model = PPO("CnnPolicy", venv, learning_rate=LinearSchedule(2.5e-4, 0.0, 1.0), verbose=0, seed=0, **HYPER)
        return model, None
    from agents.sb3_agents import TorchThreads, cnn_policy_kwargs
    from wrappers import EnvSpec, make_vec_env
    from wrappers.vec_env import cores

    spec = EnvSpec(game="SuperMarioBros-Nes", state="Level1-1", profile="smb", actions="right_only",
                   sticky_prob=0.25, frame_skip=SKIP)
    venv = make_vec_env(spec, N_ENVS, seed=0)
    model = PPO("CnnPolicy", venv, learning_rate=LinearSchedule(2.5e-4, 0.0, 1.0), verbose=0, seed=0,
                policy_kwargs=cnn_policy_kwargs({}), **HYPER)
    return model, TorchThreads(cores())


def _measure(which: str, rollouts: int, q) -> None:
    model, callback = _model(which)
    per_rollout = HYPER["n_steps"] * N_ENVS
    model.learn(per_rollout, callback=callback)  # warm-up: workers, first allocations, first update
    t0 = time.perf_counter()
    model.learn(per_rollout * rollouts, callback=callback, reset_num_timesteps=False)
    dt = time.perf_counter() - t0
    model.get_env().close()
    q.put(per_rollout * rollouts * SKIP / dt)


def measure(which: str, rollouts: int) -> float:
    """Frames per second of training (rollouts and updates) for one set-up, in a fresh process."""
    return run_isolated(_measure, which, rollouts)


def main() -> None:
    """Alternate the two set-ups for a few rounds; print medians and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round of 3 rollouts")
    ap.add_argument("--rollouts", type=int, default=8, help="timed rollouts (x 4,096 frames) per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rollouts, rounds = (3, 1) if args.quick else (args.rollouts, args.rounds)
    runs: dict[str, list[float]] = {"example": [], "retrodojo": []}
    for _ in range(rounds):
        for which in ("example", "retrodojo"):
            runs[which].append(measure(which, rollouts))
    med = {k: statistics.median(v) for k, v in runs.items()}
    out = {"game": "SuperMarioBros-Nes", "state": "Level1-1", "n_envs": N_ENVS, "hyperparams": HYPER,
           "frames_per_rollout": HYPER["n_steps"] * N_ENVS * SKIP, "timed_rollouts": rollouts,
           "frames_per_s": {k: round(v, 1) for k, v in med.items()},
           "runs": {k: [round(x, 1) for x in v] for k, v in runs.items()},
           "ratio_vs_example": round(med["retrodojo"] / med["example"], 3)}
    if args.json:
        print(json.dumps({**stamp(), **out}, indent=2))
        return
    print(f"PPO training on SMB 1-1, example hyperparameters, {N_ENVS} envs, {rounds} round(s) of {rollouts} rollouts")
    for k in ("example", "retrodojo"):
        print(f"  {k:<10} {med[k]:8.0f} frames/s  (runs: {', '.join(f'{x:.0f}' for x in runs[k])})")
    print(f"ratio_vs_example = {out['ratio_vs_example']:.2f}")


if __name__ == "__main__":
    main()
