"""retrodojo tune: the tune: section validated like the rest of the spec, trials as ordinary runs, two tune
processes sharing one study, pruning from the run's own evaluations, the study's report."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parent.parent


def tiny(tmp_path: Path, **tune) -> Path:
    data = {
        "name": "tiny_tune", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "stuck_frames": 200, "reward_scale": 0.05},
        "agent": {"algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1}},
        "budget": {"frames": 2048}, "seeds": [3], "eval": {"every_frames": 1024, "episodes": 1},
        "checkpoint": {"every_frames": 1024},
        "tune": tune or {"agent.hyperparams.learning_rate": {"float": [1.0e-5, 1.0e-3], "log": True},
                         "agent.hyperparams.n_epochs": {"choice": [1, 2]}},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_tune_section_is_validated_with_paths_and_hints():
    from experiments.spec import SpecError, load_spec

    with pytest.raises(SpecError) as e:
        load_spec("smb_ppo", ["tune={agent.hyperparams.n_step: {choice: [64, 128]}, env.frame_skip: {int: [0, 8]},"
                              " agent.hyperparams.gamma: {floot: [0.5, 0.9]}, agent.hyperparams.ent_coef: "
                              "{float: [0.1, 0.01]}}"])
    text = str(e.value)
    assert "tune.agent.hyperparams.gamma.floot: unknown key, did you mean float?" in text
    assert "tune.agent.hyperparams.ent_coef: Value error, the range [0.1, 0.01] is empty" in text or \
        "the range [0.1, 0.01] is empty" in text
    with pytest.raises(SpecError) as e:
        load_spec("smb_ppo", ["tune={agent.hyperparams.n_step: {choice: [64, 128]}, env.frame_skip: {int: [0, 8]}}"])
    assert e.value.errors == ["tune.agent.hyperparams.n_step: unknown key, did you mean n_steps?",
                              "tune.env.frame_skip: Input should be greater than or equal to 1 (got 0)"]
    spec = load_spec("smb_ppo", ["tune={agent.hyperparams.learning_rate: {float: [1.0e-5, 2.0e-3], log: true}}"])
    assert spec.tune.metric == "eval/progress" and spec.tune.params["agent.hyperparams.learning_rate"].log


@pytest.mark.slow
def test_two_tune_processes_share_one_study_and_report_it(tmp_path):
    exp = tiny(tmp_path)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "experiments.cli", "tune", str(exp), "--trials", "2", "--runs-dir", str(runs),
           "--pruner", "none"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    folder = runs / "tiny_tune" / "tune-tiny_tune"
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert len(rows) == 4 and {r["state"] for r in rows} == {"COMPLETE"}
    assert sorted(int(r["seed"]) for r in rows) == [3, 4, 5, 6]  # every trial its own seed
    assert len({(r["params_agent.hyperparams.learning_rate"]) for r in rows}) == 4  # no two processes collide
    for r in rows:  # each trial is an ordinary run folder
        assert (Path(r["run"]) / "final" / "agent.json").is_file()
    from experiments.spec import load_spec

    best = load_spec(folder / "best.yaml")
    best_row = max(rows, key=lambda r: float(r["value"]))
    assert best.agent.hyperparams.learning_rate.start == pytest.approx(
        float(best_row["params_agent.hyperparams.learning_rate"]))
    assert best.tune is None and (folder / "optimization_history.png").stat().st_size > 5000
    assert (folder / "param_importances.png").is_file()
    from experiments.cli import main

    assert main(["train", str(folder / "best.yaml"), "--runs-dir", str(tmp_path / "again"),
                 "--set", "budget.frames=1024"]) == 0  # trainable as it is


@pytest.mark.slow
def test_a_pruned_trial_stops_with_a_checkpoint(tmp_path):
    from experiments.spec import load_spec, parse_yaml
    from experiments.tune import Objective, study_dir

    exp = tiny(tmp_path)
    spec = load_spec(exp)
    folder = study_dir(spec, tmp_path / "runs", "p")
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1e9))
    study.optimize(Objective(parse_yaml(exp.read_text(), str(exp)), str(exp), folder), n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    from conftest import meta

    run = Path(trial.user_attrs["run"])
    m = meta(run)
    assert m["status"] == "pruned" and "pruned at 0 frames" in m["end_message"]
    assert any((run / "checkpoints").iterdir())  # resumable like any stopped run


def test_the_report_reads_the_study_and_writes_only_under_the_lock(tmp_path, monkeypatch):
    """Two processes sharing a study: the one that reads it first must not write over a newer report."""
    import experiments.tune as tune

    folder = tmp_path / "study"
    folder.mkdir()
    held = []

    def opened():  # the study is read only once the lock is held
        held.append(("open", tune._take_lock(folder / ".report.lock") is None))

    def fake_report(spec, data, study, folder_):
        held.append(("report", tune._take_lock(folder_ / ".report.lock") is None))
        return {}

    monkeypatch.setattr(tune, "report", fake_report)
    assert tune.write_report(None, {}, opened, folder) == {}
    assert held == [("open", True), ("report", True)]
    free = tune._take_lock(folder / ".report.lock")  # and let go after
    assert free is not None
    free.close()


def test_a_resolved_spec_with_a_tune_section_loads_again(tmp_path):
    """config.yaml of a run keeps the tune: section in the file's own words (float:, not float_range:)."""
    from experiments.spec import dump_spec, load_spec, parse_yaml, validate_spec

    spec = load_spec(tiny(tmp_path))
    again = validate_spec(parse_yaml(dump_spec(spec), "config.yaml"), "config.yaml")
    assert again.tune == spec.tune and "float:" in dump_spec(spec)


@pytest.mark.slow
def test_tune_takes_set_like_train(tmp_path):
    """Trying a search on a tiny budget without editing the file: --set reaches every trial and best.yaml."""
    from conftest import meta

    from experiments.cli import main
    from experiments.spec import load_spec

    runs = tmp_path / "runs"
    assert main(["tune", str(tiny(tmp_path)), "--trials", "1", "--runs-dir", str(runs), "--pruner", "none",
                 "--set", "budget.frames=512", "--set", "eval.every_frames=512"]) == 0
    folder = runs / "tiny_tune" / "tune-tiny_tune"
    (row,) = list(csv.DictReader((folder / "trials.csv").open()))
    assert row["state"] == "COMPLETE"
    trial = load_spec(Path(row["run"]) / "config.yaml")
    assert trial.budget.frames == 512 and trial.eval.every_frames == 512 and meta(Path(row["run"]))["frames"] == 512
    assert load_spec(folder / "best.yaml").budget.frames == 512


def test_a_bad_set_for_tune_is_one_message_before_any_trial(tmp_path, capsys):
    from experiments.cli import main

    runs = tmp_path / "runs"
    assert main(["tune", str(tiny(tmp_path)), "--trials", "1", "--runs-dir", str(runs),
                 "--set", "budget.frame=512"]) == 2
    err = capsys.readouterr().err
    assert "budget.frame: unknown key, did you mean frames?" in err and "Traceback" not in err
    assert not runs.exists()


@pytest.mark.slow
def test_a_trial_whose_process_died_is_failed_and_resumed_by_the_next_process(tmp_path):
    """The issue's case: a tune process killed -9 mid-trial. The next process on the study marks that trial
    FAIL and plays it again, with its values, from its run's newest checkpoint."""
    from conftest import meta

    from experiments.cli import main

    exp = tiny(tmp_path)
    runs = tmp_path / "runs"
    longer = ["--set", "budget.frames=16384", "--set", "eval.every_frames=4096"]
    first = subprocess.Popen([sys.executable, "-m", "experiments.cli", "tune", str(exp), "--trials", "1",
                              "--runs-dir", str(runs), "--pruner", "none", *longer], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    folder = runs / "tiny_tune" / "tune-tiny_tune"
    try:
        until = time.monotonic() + 300
        while not list(folder.glob("trials/*/checkpoints/0*")):  # the trial's first checkpoint
            assert first.poll() is None and time.monotonic() < until
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the tune process and its env workers, at once
        first.wait()
    (dead_run,) = folder.glob("trials/*")
    checkpoint = int(sorted((dead_run / "checkpoints").iterdir())[-1].name)
    assert 0 < checkpoint < 16384, "the trial ended before it was killed: give it a longer budget"

    assert main(["tune", str(exp), "--trials", "1", "--runs-dir", str(runs), "--pruner", "none", *longer]) == 0
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert [(r["number"], r["state"], r["retry_of"]) for r in rows] == [("0", "FAIL", ""), ("1", "COMPLETE", "0")]
    assert rows[1]["run"] == rows[0]["run"] == str(dead_run) and rows[1]["seed"] == rows[0]["seed"]
    assert rows[1]["params_agent.hyperparams.learning_rate"] == rows[0]["params_agent.hyperparams.learning_rate"]
    m = meta(dead_run)
    assert m["status"] == "finished" and m["resumes"] == 1 and m["frames"] >= 16384
    assert (folder / "best.yaml").is_file()


def test_a_database_study_fails_dead_trials_by_heartbeat(tmp_path):
    """With a database (several machines), a dead trial is told by Optuna's heartbeat, and retried."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    from experiments.tune import storage_for

    storage = storage_for(f"sqlite:///{tmp_path / 'study.db'}", tmp_path)
    assert is_heartbeat_enabled(storage)
    assert storage.get_heartbeat_stale_trial_callback() is not None
