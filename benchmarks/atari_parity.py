"""Parity with the reference Atari stack: does retrodojo's PPO learn Boxing as fast as SB3 on ALE does?

The same PPO (rl-baselines3-zoo's Atari hyperparameters: 8 envs, n_steps 128, batch 256, 4 epochs, lr 2.5e-4
and clip 0.1 both decaying linearly to 0, ent 0.01, vf 0.5, Nature CNN) trains on Boxing for the same
emulator frames through two stacks:

  retrodojo  stable-retro's Boxing-Atari2600 with the boxing profile (configs/experiments/boxing_ppo.yaml):
             frame skip 4 with max-pool, sticky actions 0.25 (on the first frame of each 4-frame window, as
             stable-retro's StochasticFrameSkip), up to 30 no-op frames at reset, 84x84 gray, 4 stacked,
             reward = score margin clipped to [-1, 1], 18 actions, RetroVecEnv.
  reference  gymnasium's ALE/Boxing-v5 with frameskip=1 and repeat_action_probability=0.25 (ALE's sticky
             actions, drawn on every frame), SB3's AtariWrapper (up to 30 no-ops, frame skip 4 with max-pool,
             84x84 gray, reward sign clip; no end on life loss: Boxing has no lives), VecFrameStack 4,
             SubprocVecEnv, 18 actions.

Both are evaluated the same way every ``--eval-every`` frames: ``--episodes`` whole bouts with sampled
actions, the episode's score margin (the raw, unclipped return) and win rate. Each run is an ordinary run
folder (config.yaml, meta.json, eval/history.jsonl, tb/), so the comparison is

    retrodojo compare results/parity --metric eval/return --at 2000000 --plot docs/parity_boxing.png

Both sides learn in one ``learn()`` over the whole budget, so the linear schedules of the learning rate and
the clip range decay once, from the first frame to the last (a ``learn()`` per evaluation, as the reference
side had until 2026-12-03, restarts them each time: SB3 counts progress within each call). Both write a
checkpoint at their evaluations and resume from it after a kill: a retrodojo run with ``retrodojo train
--resume RUN``, a reference run with ``--resume RUN``.

Usage (each run in its own process; 25-30 min per run at 2M frames on this project's 2 cores):
    python benchmarks/atari_parity.py --side both --seeds 1 2 --frames 2000000 --out runs/parity
    python benchmarks/atari_parity.py --side reference --seeds 1 --frames 20000 --out /tmp/parity  # a smoke run
    python benchmarks/atari_parity.py --resume runs/parity/parity_reference/ppo-s1-...  # after a kill
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZOO = dict(n_steps=128, batch_size=256, n_epochs=4, gamma=0.99, gae_lambda=0.95, ent_coef=0.01, vf_coef=0.5)
N_ENVS, SKIP = 8, 4


def _ale_env(seed: int | None = None):
    """ALE Boxing with sticky actions 0.25, wrapped as SB3's Atari set-up (reward clipped for learning)."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.monitor import Monitor

    gym.register_envs(ale_py)
    env = gym.make("ALE/Boxing-v5", frameskip=1, repeat_action_probability=0.25, full_action_space=False)
    env = Monitor(env)  # records the raw margin before AtariWrapper clips it
    env = AtariWrapper(env, noop_max=30, frame_skip=SKIP, terminal_on_life_loss=False, clip_reward=True)
    if seed is not None:
        env.reset(seed=seed)
    return env


def _evaluate_reference(model, episodes: int, seed: int) -> dict:
    """Whole bouts with sampled actions on a fresh ALE env: margins (Monitor's raw return) and wins."""
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

    venv = VecTransposeImage(VecFrameStack(DummyVecEnv([lambda: _ale_env()]), n_stack=4))
    venv.seed(seed)
    margins = []
    obs = venv.reset()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as retrodojo's Evaluator: batch-1 passes on more threads only contend
    try:
        while len(margins) < episodes:
            action, _ = model.predict(obs, deterministic=False)
            obs, _r, done, infos = venv.step(action)
            if done[0] and "episode" in infos[0]:
                margins.append(float(infos[0]["episode"]["r"]))
    finally:
        torch.set_num_threads(threads)
        venv.close()
    return {"return": sum(margins) / len(margins), "win_rate": sum(m > 0 for m in margins) / len(margins),
            "success_rate": sum(m > 0 for m in margins) / len(margins), "episodes": [{"r": m} for m in margins]}


def next_evaluation(frames: int, every: int) -> int:
    """The frame of the next evaluation after one at ``frames``: the next multiple of ``every`` (taken at the
    first rollout start at or past it), so a resumed run keeps the grid of one that never stopped."""
    return (frames // every + 1) * every


def _reference_settings(run: Path) -> tuple[int, int, int, int]:
    """Seed, frames, eval_every and episodes of a reference run folder, from its config.yaml (checked)."""
    import yaml

    from experiments.errors import UserError

    try:
        config = yaml.safe_load((run / "config.yaml").read_text())
        values = (config["seeds"][0], config["budget"]["frames"], config["eval"]["every_frames"],
                  config["eval"]["episodes"])
    except (OSError, ValueError, yaml.YAMLError, KeyError, IndexError, TypeError) as e:  # ValueError: not text
        raise UserError(f"{run} is not a reference parity run (config.yaml unreadable or without seeds, "
                        f"budget.frames, eval.every_frames, eval.episodes: {type(e).__name__}). Give a folder "
                        "that `atari_parity.py --side reference` wrote.") from None
    if config.get("name") != "parity_reference" or not all(isinstance(v, int) and not isinstance(v, bool)
                                                           and v > 0 for v in values):
        raise UserError(f"{run}/config.yaml is not a reference parity run's (name parity_reference and positive "
                        "whole numbers for the seed, frames, eval.every_frames and eval.episodes). A retrodojo "
                        "side's run resumes with `retrodojo train --resume RUN`.")
    return values


def _save_checkpoint(model, run: Path, frames: int, train_seconds: float, load: dict) -> None:
    """Policy, optimizer, counters and RNG states in retrodojo's safe formats, swapped in whole."""
    from agents import safe_io
    from agents.sb3_format import write_model

    tmp = run / ".checkpoint.tmp"
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write_model(model, tmp, "ppo", "cnn", optimizer=True)
    safe_io.save_rng(tmp)
    safe_io.write_json(tmp / "parity.json", {"frames": frames, "train_seconds": round(train_seconds, 1),
                                             "load_1min": load})
    safe_io.replace_folder(tmp, run / "checkpoint")


def _read_checkpoint_record(ckpt: Path) -> tuple[int, float, dict]:
    """The frames, training seconds and load record of a checkpoint, checked against its model.json before
    any env is started."""
    from agents import safe_io
    from agents.errors import AgentError
    from agents.sb3_format import MODEL_FILE
    from experiments.errors import UserError

    try:
        top = safe_io.Fields(safe_io.read_json(ckpt / MODEL_FILE, "saved model description"), ckpt / MODEL_FILE)
        info = safe_io.Fields(safe_io.read_json(ckpt / "parity.json", "parity checkpoint record"),
                              ckpt / "parity.json")
        frames, seconds, steps = info.int("frames", lo=0), info.float("train_seconds"), top.int("num_timesteps", lo=0)
    except AgentError as e:
        raise UserError(f"{ckpt} is unreadable ({e}); the run cannot resume from it: start it again.") from None
    if frames != steps * SKIP:
        raise UserError(f"{ckpt}: parity.json says {frames:,} frames, model.json {steps * SKIP:,}; the checkpoint "
                        "is not one piece: start the run again.")
    load = info.data.get("load_1min")
    good = isinstance(load, dict) and all(isinstance(load.get(k), (int, float)) for k in ("samples", "mean", "max"))
    return frames, seconds, (load if good else {"samples": 0, "mean": 0.0, "max": 0.0, "every_s": 60.0})


def _load_checkpoint(model, ckpt: Path) -> None:
    """Fill ``model`` (weights, optimizer, counters) and the RNG states from ``ckpt``."""
    from agents import safe_io
    from agents.errors import AgentError
    from agents.sb3_format import MODEL_FILE, OPTIMIZER_FILE, POLICY_FILE, read_counters, read_optimizer, read_policy
    from experiments.errors import UserError

    try:
        top = safe_io.Fields(safe_io.read_json(ckpt / MODEL_FILE, "saved model description"), ckpt / MODEL_FILE)
        read_policy(model.policy, ckpt / POLICY_FILE)
        read_optimizer(model.policy.optimizer, top, ckpt / OPTIMIZER_FILE)
        read_counters(model, top)
        safe_io.restore_rng(ckpt)
    except AgentError as e:
        raise UserError(f"{ckpt} is unreadable ({e}); the run cannot resume from it: start it again.") from None


def run_reference(seed: int, frames: int, out: Path, eval_every: int, episodes: int,
                  resume: Path | None = None) -> Path:
    """Train SB3 PPO on ALE Boxing into a run folder that retrodojo's compare reads; ``resume`` continues one
    from the checkpoint it wrote at its last evaluation (its own seed, frames and evaluation settings)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.utils import LinearSchedule
    from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack, VecTransposeImage

    from experiments.errors import UserError
    from experiments.run import _git_commit, _versions, cpu_model, note_resume_machine, read_meta

    if resume is not None:
        run = Path(resume)
        seed, frames, eval_every, episodes = _reference_settings(run)
        meta = read_meta(run)
        if meta.get("status") == "finished":
            raise UserError(f"{run} has finished already: nothing to resume.")
        if not (run / "checkpoint" / "parity.json").is_file():
            raise UserError(f"{run} has no checkpoint (one is written at each evaluation after the first): "
                            "start the run again.")
        start, seconds_before, load = _read_checkpoint_record(run / "checkpoint")
        meta["resumes"] = int(meta.get("resumes", 0) or 0) + 1
        meta.setdefault("resume_commands", []).append(sys.argv)
        note_resume_machine(meta)
    else:
        run = out / "parity_reference" / f"ppo-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        (run / "eval").mkdir(parents=True)
        config = {"name": "parity_reference",
                  "description": "SB3 PPO on gymnasium's ALE/Boxing-v5 (AtariWrapper)",
                  "game": "Boxing-Atari2600", "state": "Start", "states": None, "profile": "boxing",
                  "env": {"stack": "ale-AtariWrapper", "frame_skip": SKIP, "sticky_prob": 0.25,
                          "sticky_per": "frame", "noop_max": 30, "resize": [84, 84], "frame_stack": 4,
                          "reward_clip": 1.0},
                  "agent": {"algo": "ppo", "policy": "cnn", "n_envs": N_ENVS,
                            "hyperparams": {**ZOO,
                                            "learning_rate": {"schedule": "linear", "start": 2.5e-4, "end": 0.0},
                                            "clip_range": {"schedule": "linear", "start": 0.1, "end": 0.0}}},
                  "budget": {"frames": frames}, "seeds": [seed],
                  "eval": {"every_frames": eval_every, "episodes": episodes, "deterministic": False}}
        import yaml

        (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        meta = {"experiment": "parity_reference", "algo": "ppo", "seed": seed, "game": "Boxing-Atari2600",
                "status": "running", "frames": 0, "budget_frames": frames, "host": platform.node(),
                "cpus": os.cpu_count(), "cpu_model": cpu_model(), "git_commit": _git_commit(),
                "versions": _versions(), "command": sys.argv, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (run / "meta.json").write_text(json.dumps(meta, indent=2))
        start, seconds_before = 0, 0.0
        load = {"samples": 0, "mean": 0.0, "max": 0.0, "every_s": 60.0}
    torch.manual_seed(seed)
    venv = VecTransposeImage(VecFrameStack(SubprocVecEnv([lambda i=i: _ale_env(seed * 1000 + i)
                                                          for i in range(N_ENVS)]), n_stack=4))
    model = PPO("CnnPolicy", venv, learning_rate=LinearSchedule(2.5e-4, 0.0, 1.0),
                clip_range=LinearSchedule(0.1, 0.0, 1.0), seed=seed, verbose=0, **ZOO)
    try:
        return _train_reference(run, model, venv, meta, seed, frames, eval_every, episodes, resume is not None,
                                start, seconds_before, load)
    finally:
        venv.close()


def _train_reference(run: Path, model, venv, meta: dict, seed: int, frames: int, eval_every: int, episodes: int,
                     resumed: bool, start: int, seconds_before: float, load: dict) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    if resumed:
        _load_checkpoint(model, run / "checkpoint")
        # PPO(seed=) seeded the envs as at frame 0: the resumed part plays on, not the opening bouts again
        venv.seed(seed * 1_000_003 + start)
        history = run / "eval" / "history.jsonl"
        if history.is_file():  # as of the checkpoint: an evaluation logged after it is made again
            kept = []
            for line in history.read_text().splitlines():
                try:
                    if json.loads(line)["frames"] <= start:
                        kept.append(line)
                except (ValueError, KeyError, TypeError):  # a line torn by the kill
                    continue
            tmp = history.with_name(".history.jsonl.tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            tmp.replace(history)  # whole, so a kill here leaves the old history, which the next resume cuts again
    (run / "meta.json").write_text(json.dumps(meta, indent=2))
    # on resume, TensorBoard drops what was logged past the checkpoint, so the lines continue without a duplicate
    writer = SummaryWriter(str(run / "tb"), purge_step=start + 1 if start else None)
    try:
        return _learn(run, model, writer, meta, seed, frames, eval_every, episodes, start, seconds_before, load)
    finally:
        writer.close()


def _learn(run: Path, model, writer, meta: dict, seed: int, frames: int, eval_every: int, episodes: int,
           start: int, seconds_before: float, load: dict) -> Path:
    from stable_baselines3.common.callbacks import BaseCallback

    t0 = time.perf_counter()

    def evaluate(at: int) -> None:
        res = _evaluate_reference(model, episodes, seed=20_241_124)
        writer.add_scalar("eval/return", res["return"], at)
        writer.add_scalar("eval/win_rate", res["win_rate"], at)
        with open(run / "eval" / "history.jsonl", "a") as f:
            f.write(json.dumps({"frames": at, "time": time.time(), **res}) + "\n")
        writer.flush()
        print(f"reference s{seed}: {at:,} frames, eval margin {res['return']:+.1f}, win rate {res['win_rate']:.0%}, "
              f"{(seconds_before + time.perf_counter() - t0) / 60:.1f} min", flush=True)

    load_t = [time.perf_counter()]
    next_eval = [next_evaluation(start, eval_every)]

    class Log(BaseCallback):
        def _on_rollout_start(self) -> None:
            # after the previous rollout's update, as the chunked learn() calls before evaluated; one learn()
            # for the whole budget keeps the linear schedules over the whole run (a learn() per chunk restarts
            # them: SB3 counts progress within each call)
            at = self.num_timesteps * SKIP
            if at >= next_eval[0]:
                writer.add_scalar("time/fps", (at - start) / (time.perf_counter() - t0), at)
                evaluate(at)
                _save_checkpoint(model, run, at, seconds_before + time.perf_counter() - t0, load)
                next_eval[0] = next_evaluation(at, eval_every)

        def _on_step(self) -> bool:
            if time.perf_counter() - load_t[0] >= load["every_s"]:  # as meta.json's load_1min of a retrodojo run
                load_t[0] = time.perf_counter()
                now = os.getloadavg()[0]
                load["mean"] = round((load["mean"] * load["samples"] + now) / (load["samples"] + 1), 2)
                load["samples"] += 1
                load["max"] = round(max(load["max"], now), 2)
            for info in self.locals["infos"]:
                if "episode" in info:
                    at = self.num_timesteps * SKIP
                    writer.add_scalar("train/episode_return", info["episode"]["r"], at)
                    writer.add_scalar("train/episode_win_rate", float(info["episode"]["r"] > 0), at)
            return True

    if start == 0:
        evaluate(0)
    steps = -(-frames // SKIP)
    if model.num_timesteps < steps:
        model.learn(total_timesteps=steps - model.num_timesteps, callback=Log(), reset_num_timesteps=False)
    done = model.num_timesteps * SKIP
    writer.add_scalar("time/fps", (done - start) / (time.perf_counter() - t0), done)
    evaluate(done)
    meta.update(status="finished", frames=done, train_seconds=round(seconds_before + time.perf_counter() - t0, 1),
                load_1min=load)
    (run / "meta.json").write_text(json.dumps(meta, indent=2))
    return run


def run_retrodojo(seed: int, frames: int, out: Path, eval_every: int, episodes: int) -> None:
    """`retrodojo train boxing_ppo` on the same frames and evaluation protocol."""
    cmd = [sys.executable, "-m", "experiments.cli", "train", "boxing_ppo", "--seed", str(seed), "--runs-dir",
           str(out), "--name", "parity_retrodojo", "--set", f"budget.frames={frames}",
           "--set", f"eval.every_frames={eval_every}", "--set", f"eval.episodes={episodes}",
           "--set", "eval.deterministic=false", "--set", "checkpoint.every_frames=500000"]
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    """Run the chosen sides and seeds, one after another."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", choices=["retrodojo", "reference", "both"], default="both")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--frames", type=int, default=2_000_000)
    p.add_argument("--eval-every", type=int, default=250_000)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "parity")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue a reference run from its last checkpoint (a retrodojo run: retrodojo train --resume)")
    args = p.parse_args()
    if args.resume is not None:
        from experiments.errors import UserError

        try:
            run_reference(0, 0, args.out, 0, 0, resume=args.resume)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    for seed in args.seeds:
        if args.side in ("retrodojo", "both"):
            run_retrodojo(seed, args.frames, args.out, args.eval_every, args.episodes)
        if args.side in ("reference", "both"):
            run_reference(seed, args.frames, args.out, args.eval_every, args.episodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
