"""The parity benchmark's two stacks (benchmarks/atari_parity.py): they must pose the same problem, and the
reference side's run folder must be one that compare and the fight table read like any run."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from conftest import load_script

from experiments.spec import load_spec
from wrappers import make_env


def _parity():
    return load_script("benchmarks/atari_parity.py")


def test_both_stacks_pose_the_same_boxing_problem():
    """18 actions, 84x84 gray frames (4 stacked on both sides), and rewards that are the clipped score
    change: what a learner sees must match, or a gap in the curves says nothing about the code."""
    parity = _parity()
    ale = parity._ale_env(seed=3)
    try:
        obs, _ = ale.reset(seed=3)
        assert ale.action_space.n == 18 and obs.shape[:2] == (84, 84)
        rewards = [ale.step(ale.action_space.sample())[1] for _ in range(300)]
        assert set(rewards) <= {-1.0, 0.0, 1.0}
    finally:
        ale.close()
    spec = load_spec("boxing_ppo").env_spec()
    with make_env(spec, seed=3) as env:
        obs, _ = env.reset(seed=3)
        assert env.action_space.n == 18
        assert np.asarray(obs).shape in ((84, 84, 4), (4, 84, 84))
        rewards = [env.step(env.action_space.sample())[1] for _ in range(300)]
        assert all(-1.0 <= r <= 1.0 for r in rewards)
    assert spec.frame_skip == parity.SKIP and spec.sticky_prob == 0.25 and spec.noop_max == 30


def test_evaluations_keep_their_grid_across_a_resume():
    """A reference run evaluates at the first rollout start (every 4,096 frames) at or past each multiple of
    the interval; one resumed from an evaluation at 253,952 frames goes on to 500,000 as an unbroken run does."""
    parity = _parity()
    rollout, every = 4096, 250_000
    unbroken, at, due = [], 0, parity.next_evaluation(0, every)
    while at + rollout < 2_002_944:  # rollout starts; the end (2,002,944) is evaluated after learn()
        at += rollout
        if at >= due:
            unbroken.append(at)
            due = parity.next_evaluation(at, every)
    assert unbroken[:2] == [253_952, 503_808] and len(unbroken) == 7
    assert all(parity.next_evaluation(a, every) == (i + 2) * every for i, a in enumerate(unbroken))


@pytest.mark.slow
def test_the_reference_side_decays_over_the_whole_run_resumes_and_is_read_like_any_run(tmp_path, monkeypatch):
    """One learn() for the budget: the linear schedules reach half way at half the frames (a learn() per
    evaluation restarted them, so the first reference runs decayed to 0 before each evaluation). A run killed
    after an evaluation resumes from the checkpoint written there, and its record has no duplicate."""
    from experiments.errors import UserError
    from experiments.run import read_scalars

    parity = _parity()
    monkeypatch.setattr(sys, "argv", ["atari_parity.py", "--side", "reference"])
    run = parity.run_reference(seed=1, frames=8192, out=tmp_path, eval_every=4096, episodes=1)  # two rollouts
    _read_like_any_run(run, tmp_path)
    model = json.loads((run / "checkpoint" / "model.json").read_text())
    assert model["num_timesteps"] == 1024 and model["_current_progress_remaining"] == pytest.approx(0.5)
    assert json.loads((run / "checkpoint" / "parity.json").read_text())["frames"] == 4096
    with pytest.raises(UserError, match="finished already"):
        parity.run_reference(0, 0, tmp_path, 0, 0, resume=run)
    # as if killed during its second rollout: the last evaluation and the end are made again
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    again = parity.run_reference(0, 0, tmp_path, 0, 0, resume=run)
    meta = json.loads((again / "meta.json").read_text())
    assert again == run and meta["status"] == "finished" and meta["frames"] == 8192 and meta["resumes"] == 1
    assert meta["resume_cpus"] == [os.cpu_count()] and len(meta["resume_cpu_models"]) == 1
    history = [json.loads(line) for line in (run / "eval" / "history.jsonl").read_text().splitlines()]
    assert [h["frames"] for h in history] == [0, 4096, 8192]
    assert [s for s, _ in read_scalars(run, "eval/return")] == [0, 4096, 8192]
    # a checkpoint that is not one piece is refused in one paragraph, and the run folder is left as it was
    (run / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    info = run / "checkpoint" / "parity.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "frames": 999}))
    with pytest.raises(UserError, match="not one piece"):
        parity.run_reference(0, 0, tmp_path, 0, 0, resume=run)
    info.write_text("{not json")
    with pytest.raises(UserError, match="unreadable"):
        parity.run_reference(0, 0, tmp_path, 0, 0, resume=run)
    assert [json.loads(line)["frames"] for line in (run / "eval" / "history.jsonl").read_text().splitlines()] == \
        [0, 4096, 8192]
    assert json.loads((run / "meta.json").read_text())["resumes"] == 1
    with pytest.raises(UserError, match="not a reference parity run"):
        parity.run_reference(0, 0, tmp_path, 0, 0, resume=tmp_path)


def _read_like_any_run(run, tmp_path):
    """The reference side's folder is read by compare, the fight table and record_run as a retrodojo run is."""
    from experiments.compare import compare
    from experiments.errors import UserError
    from experiments.fights import run_row

    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["frames"] == 8192 and meta["cpu_model"]
    assert meta["git_commit"] and "stable-baselines3" in meta["versions"]
    history = [json.loads(line) for line in (run / "eval" / "history.jsonl").read_text().splitlines()]
    assert [h["frames"] for h in history] == [0, 4096, 8192]
    assert all(len(h["episodes"]) == 1 and h["return"] == h["episodes"][0]["r"] for h in history)
    # a whole bout's margin is a score difference: Boxing's points are whole numbers
    assert all(float(h["return"]).is_integer() for h in history)
    result = compare([tmp_path], metric="eval/return", at=8192)
    assert [r["group"] for r in result["groups"]] == ["parity_reference (ppo)"]
    row = run_row(run, window=100_000)
    assert row["eval_bouts"] == 1 and row["eval_actions"] == "sampled" and row["frames"] == 8192
    # into the record without a policy (it trained SB3 on another stack), and only when told so
    record_run = load_script("scripts/record_run.py")
    with pytest.raises(UserError, match="--no-policy"):
        record_run.record(run, tmp_path / "results")
    rec = record_run.record(run, tmp_path / "results", policy=False)
    assert json.loads((rec / "meta.json").read_text())["record_policy"] is None
    assert sorted(p.name for p in rec.iterdir()) == ["config.yaml", "eval", "meta.json", "tb"]
    assert compare([tmp_path / "results"], metric="eval/return", at=8192)["groups"][0]["per_seed"] == \
        [history[-1]["return"]]


def test_resuming_a_folder_of_random_bytes_is_one_paragraph(tmp_path):
    from experiments.errors import UserError

    (tmp_path / "config.yaml").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UserError, match="not a reference parity run.*UnicodeDecodeError"):
        _parity().run_reference(0, 0, tmp_path, 0, 0, resume=tmp_path)
