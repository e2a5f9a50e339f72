"""Each deep RL algorithm trains a few thousand frames on SMB with 2 workers, checkpoints, resumes (step
counter and TensorBoard line continue), saves, loads and evaluates; a SIGKILLed run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import descendants, meta, one_run, tb_scalars

import agents.base as agents
from experiments.cli import main

ROOT = Path(__file__).resolve().parent.parent

HYPER = {
    "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 2},
    "a2c": {"n_steps": 8},
    "ppo_lstm": {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"lstm_hidden_size": 32}},
    "a2c_lstm": {"n_steps": 16, "policy_kwargs": {"lstm_hidden_size": 32}},
}


def write_experiment(tmp_path: Path, algo: str, frames: int, **extra) -> Path:
    """A tiny SMB experiment: 2 envs, checkpoints every 1,024 frames."""
    data = {
        "name": f"tiny_{algo}", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "stuck_frames": 200, "frame_stack": 1 if "lstm" in algo else 4,
                "reward_scale": 0.05},
        "agent": {"algo": algo, "n_envs": 2, "hyperparams": HYPER[algo]},
        "budget": {"frames": frames}, "seeds": [7],
        "eval": {"every_frames": 1024, "episodes": 1}, "checkpoint": {"every_frames": 1024, "keep": 2},
        **extra,
    }
    path = tmp_path / f"{algo}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_resume_names_its_machine_in_step_with_the_resumes_before():
    from experiments.run import cpu_model, note_resume_machine

    meta = {}
    note_resume_machine(meta)
    assert meta == {"resume_cpu_models": [cpu_model()], "resume_cpus": [os.cpu_count()]}
    # two resumes before resume_cpus existed, one after: the counts line up with their models
    meta = {"resume_cpu_models": ["old", "old", "new"], "resume_cpus": [16]}
    note_resume_machine(meta)
    assert meta["resume_cpu_models"] == ["old", "old", "new", cpu_model()]
    assert meta["resume_cpus"] == [None, None, 16, os.cpu_count()]
    meta = {"resume_cpu_models": "torn", "resume_cpus": [1, 2, 3]}  # a hand-edited meta.json: start again
    note_resume_machine(meta)
    assert meta == {"resume_cpu_models": [cpu_model()], "resume_cpus": [os.cpu_count()]}


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "a2c", "ppo_lstm", "a2c_lstm"])
def test_train_checkpoint_resume_evaluate(tmp_path, algo, capsys):
    runs = tmp_path / "runs"
    assert main(["train", str(write_experiment(tmp_path, algo, 2048)), "--runs-dir", str(runs)]) == 0
    run = one_run(runs)
    first = meta(run)
    assert first["status"] == "finished" and 2048 <= first["frames"] < 2048 + 1024
    assert (run / "final" / "agent.json").is_file() and (run / "config.yaml").is_file()
    assert first["rom_sha1"] and first["versions"]["stable-baselines3"]
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(ckpts) == 2  # keep: 2
    line_before = tb_scalars(run, "train/episode_progress") + tb_scalars(run, "eval/progress")
    assert line_before and all(step <= first["frames"] for step, _ in line_before)

    # resume to a larger budget: counters, schedule and the TensorBoard line continue
    assert main(["train", "--resume", str(run), "--set", "budget.frames=4096"]) == 0
    second = meta(run)
    assert second["status"] == "finished" and second["resumes"] == 1 and second["frames"] >= 4096
    # the machine's load beside the run, sampled while it learns (at once in each invocation, then each minute)
    load, before = second["load_1min"], first["load_1min"]
    assert before["samples"] >= 1 and load["samples"] > before["samples"] and 0 <= load["mean"] <= load["max"]
    assert first["cpu_model"] and second["resume_cpu_models"] == [first["cpu_model"]]
    assert second["resume_cpus"] == [first["cpus"]] == [os.cpu_count()]
    agent = agents.load(run / "final")
    assert agent.model.num_timesteps * 4 == second["frames"]
    # one line across the resume: every evaluation once, no restart at zero, no gap
    assert [s for s, _ in tb_scalars(run, "eval/progress")] == [0, 1024, 2048, 3072, 4096]
    for tag in ("time/fps", "train/episode_frames"):
        steps = [s for s, _ in tb_scalars(run, tag)]
        assert steps == sorted(steps) and steps[-1] > first["frames"], f"{tag}: {steps}"
    evals = [json.loads(line)["frames"] for line in (run / "eval" / "history.jsonl").read_text().splitlines()]
    assert evals == sorted(set(evals)) and evals[0] == 0 and evals[-1] == second["frames"]
    # each evaluation says whether the CNN still reads the screen (agents.feature_watch)
    active = tb_scalars(run, "network/cnn_units_active")
    assert [s for s, _ in active] == evals and all(0 < v <= 1 for _, v in active)
    assert all(h["network"]["cnn_spread"] > 0 for h in map(json.loads, (run / "eval" / "history.jsonl").open()))
    capsys.readouterr()

    # load and evaluate through the common interface
    assert main(["evaluate", str(run), "--episodes", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["algo"] == algo and len(report["episodes"]) == 2
    assert set(report["mean"]) == {"return", "progress", "success_rate", "episode_frames"}
    assert all(e["state"] == "Level1-1" and e["progress"] >= 0 for e in report["episodes"])

    assert main(["runs", str(runs), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["algo"] == algo and row["status"] == "finished" and row["frames"] == second["frames"]

    plot = tmp_path / "curves.png"
    assert main(["compare", str(runs), "--json", "--plot", str(plot), "--at", "2048"]) == 0
    (group,) = json.loads(capsys.readouterr().out)["groups"]
    history = {h["frames"]: h["progress"] for h in map(json.loads, (run / "eval" / "history.jsonl").open())}
    assert group["algo"] == algo and group["values"] == [history[2048]]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    # --window averages a per-episode metric over the frames before --at
    at = second["frames"]
    assert main(["compare", str(runs), "--json", "--metric", "train/episode_frames", "--at", str(at),
                 "--window", str(at)]) == 0
    (group,) = json.loads(capsys.readouterr().out)["groups"]
    episodes = [v for s, v in tb_scalars(run, "train/episode_frames") if s <= at]
    assert group["window"] == at and group["values"] == [pytest.approx(sum(episodes) / len(episodes))]


@pytest.mark.slow
def test_resume_cannot_change_other_keys_and_corrupt_checkpoint_is_explained(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", str(write_experiment(tmp_path, "a2c", 1024)), "--runs-dir", str(runs)]) == 0
    run = one_run(runs)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--set", "agent.hyperparams.n_steps=5"]) == 2
    assert "agent.hyperparams.n_steps: cannot change on resume" in " ".join(capsys.readouterr().err.split())
    latest = sorted((run / "checkpoints").iterdir())[-1]
    (latest / "policy.safetensors").write_bytes((latest / "policy.safetensors").read_bytes()[:1000])
    assert main(["train", "--resume", str(run), "--set", "budget.frames=2048"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"checkpoint {latest} is unreadable" in err and "delete that folder" in err and "Traceback" not in err
    assert "policy.safetensors" in err
    assert (run / "final" / "agent.json").is_file(), "a saved run is never lost"


def _spawn_train(cfg: Path, runs: Path, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "experiments.cli", "train", str(cfg), "--runs-dir", str(runs)],
                            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_checkpoint(runs: Path, proc: subprocess.Popen, log: Path, timeout: float = 180) -> Path:
    end = time.time() + timeout
    while time.time() < end:
        ckpts = [p for p in runs.glob("*/*/checkpoints/*") if not p.name.startswith(".")]
        if ckpts:
            return ckpts[0]
        assert proc.poll() is None, log.read_text()
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint in {timeout}s:\n{log.read_text()}")


@pytest.mark.slow
def test_sigkill_during_training_resumes_from_last_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    cfg = write_experiment(tmp_path, "a2c", 200_000)  # not over before the kill, however fast the machine
    log = tmp_path / "train.log"
    proc = _spawn_train(cfg, runs, log)
    try:
        first = _wait_for_checkpoint(runs, proc, log)
        time.sleep(3)  # keep training past the checkpoint, maybe into the next one
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    run = first.parent.parent
    assert meta(run)["status"] == "running"  # killed: nothing was closed
    survivors = sorted(p for p in (run / "checkpoints").iterdir() if not p.name.startswith("."))
    assert survivors and all((p / "checkpoint.json").is_file() for p in survivors)
    resumed_from = json.loads((survivors[-1] / "checkpoint.json").read_text())["frames"]
    assert main(["train", "--resume", str(run), "--set", f"budget.frames={resumed_from + 4096}"]) == 0
    m = meta(run)
    assert m["status"] == "finished" and m["frames"] >= resumed_from + 4096 and m["resumes"] == 1
    assert agents.load(run / "final").model.num_timesteps * 4 == m["frames"]
    steps = [s for s, _ in tb_scalars(run, "time/fps")]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    assert any(s > resumed_from for s in steps)




class _Killed(BaseException):
    """Stands for SIGKILL arriving in the middle of a folder's deletion."""


def test_a_kill_midway_through_pruning_or_replacing_a_checkpoint_leaves_only_complete_ones(tmp_path, monkeypatch):
    import shutil

    import experiments.run as run_mod
    from experiments.run import Run
    from experiments.spec import load_spec

    spec = load_spec(write_experiment(tmp_path, "a2c", 8192))
    run = Run.create(spec, 7, tmp_path / "runs")

    def write(folder: Path) -> None:
        for name in ("policy.safetensors", "optimizer.safetensors", "agent.json"):
            (folder / name).write_text(name)

    real_rmtree = shutil.rmtree

    def killed_midway(path, *args, **kwargs):
        # one file gone, then the process dies: what a kill does to a deletion in progress
        if not Path(path).exists():
            return
        files = sorted(Path(path).iterdir())
        files[0].unlink() if files[0].is_file() else real_rmtree(files[0])
        raise _Killed

    for frames in (1024, 2048):
        run.save_checkpoint(frames, write)
    monkeypatch.setattr(run_mod.shutil, "rmtree", killed_midway)
    for frames in (3072, 3072):  # the first prunes 1024 (keep: 2), the second replaces 3072
        with pytest.raises(_Killed):
            run.save_checkpoint(frames, write)
        visible = [p for p in (run.dir / "checkpoints").iterdir() if not p.name.startswith(".")]
        assert visible and all((p / "checkpoint.json").is_file() and len(list(p.iterdir())) == 4 for p in visible)
        assert Run.checkpoints_of(run.dir) == sorted(visible)
    monkeypatch.setattr(run_mod.shutil, "rmtree", real_rmtree)
    run.save_checkpoint(4096, write)
    assert sorted(p.name for p in (run.dir / "checkpoints").iterdir()) == ["000000003072", "000000004096"]
    run.close("interrupted")


@pytest.mark.slow
def test_a_killed_env_worker_ends_the_run_with_a_checkpoint_and_it_resumes(tmp_path):
    runs = tmp_path / "runs"
    # no periodic checkpoint in this run: the one it ends with is written when the worker dies
    cfg = write_experiment(tmp_path, "ppo", 200_000, checkpoint={"every_frames": 10**6})
    log = tmp_path / "train.log"
    proc = _spawn_train(cfg, runs, log)
    try:
        end = time.time() + 180
        while not [h for h in runs.glob("*/*/eval/history.jsonl") if h.read_text().count("\n") >= 2]:
            assert proc.poll() is None and time.time() < end, log.read_text()
            time.sleep(0.5)
        # the env workers hold an emulator each; the forkserver and resource tracker do not
        workers = [p for p in descendants(proc.pid) if "stable_retro" in Path(f"/proc/{p}/maps").read_text()]
        assert workers, log.read_text()
        os.kill(workers[0], signal.SIGKILL)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = " ".join(log.read_text().split())
    run = one_run(runs)
    m = meta(run)
    assert rc == 1 and "run failed:" in text and "killed by SIGKILL" in text, text
    assert "Traceback" not in text and f"retrodojo train --resume {run}" in text
    assert m["status"] == "failed" and "killed by SIGKILL" in m["error"]
    (last,) = (run / "checkpoints").iterdir()
    frames = json.loads((last / "checkpoint.json").read_text())["frames"]
    assert frames >= 1024 and m["frames"] == frames
    assert agents.load(last).model.num_timesteps * 4 == frames
    assert main(["train", "--resume", str(run), "--set", f"budget.frames={frames + 1024}"]) == 0
    assert meta(run)["status"] == "finished"


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_then_stops(tmp_path):
    runs = tmp_path / "runs"
    cfg = write_experiment(tmp_path, "ppo", 200_000)
    log = tmp_path / "train.log"
    proc = _spawn_train(cfg, runs, log)
    try:
        _wait_for_checkpoint(runs, proc, log)
        # to the whole group, as `timeout`, systemd and SLURM send it: the env workers get it too
        sent = time.time()
        os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    run = one_run(runs)
    m = meta(run)
    assert rc == 130 and m["status"] == "interrupted", log.read_text()
    last = json.loads((sorted((run / "checkpoints").iterdir())[-1] / "checkpoint.json").read_text())
    # written after the signal, not the periodic one found above (the signal may land on its frame count)
    assert last["frames"] == m["frames"] >= 1024 and last["time"] >= sent
    assert "writing a checkpoint, then stopping" in log.read_text()


def test_fps_is_averaged_over_bursts_and_updates(tmp_path, monkeypatch):
    """PPO collects frames in bursts between long updates: the bar's frames/s must not read the burst edge."""
    import experiments.run as run_module
    from experiments.spec import load_spec

    clock = [1000.0]
    monkeypatch.setattr(run_module.time, "perf_counter", lambda: clock[0])
    seen = []
    run = run_module.Run.create(load_spec(write_experiment(tmp_path, "ppo", 10**6)), 1, tmp_path / "runs",
                                progress_cb=lambda frames, info: seen.append(info["fps"]))
    frames = 0
    for _ in range(3):  # 8 s of rollout at 1,000 frames/s, then a 12 s update
        for _ in range(4):
            clock[0] += 2.0
            frames += 2000
            run.progress(frames)
        clock[0] += 12.0
        clock[0] += 2.0
        frames += 64  # the first steps after the update
        run.progress(frames)
    # the average since the start, 3 x 8,064 frames in 66 s, and never the ~30 frames/s of a burst's edge
    assert seen[-1] == pytest.approx(3 * 8064 / 66.0)
    assert min(seen) > 300
