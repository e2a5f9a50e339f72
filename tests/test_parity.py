"""The parity benchmark's two stacks (benchmarks/atari_parity.py): they must pose the same problem, and the
reference side's run folder must be one that compare and the fight table read like any run."""

from __future__ import annotations

import json
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


@pytest.mark.slow
def test_the_reference_side_writes_a_run_that_compare_and_the_fight_table_read(tmp_path, monkeypatch):
    from experiments.compare import compare
    from experiments.fights import run_row

    parity = _parity()
    monkeypatch.setattr(sys, "argv", ["atari_parity.py", "--side", "reference"])
    run = parity.run_reference(seed=1, frames=4096, out=tmp_path, eval_every=4096, episodes=1)  # one rollout
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["frames"] == 4096 and meta["cpu_model"]
    assert meta["git_commit"] and "stable-baselines3" in meta["versions"]
    history = [json.loads(line) for line in (run / "eval" / "history.jsonl").read_text().splitlines()]
    assert [h["frames"] for h in history] == [0, 4096]
    assert all(len(h["episodes"]) == 1 and h["return"] == h["episodes"][0]["r"] for h in history)
    # a whole bout's margin is a score difference: Boxing's points are whole numbers
    assert all(float(h["return"]).is_integer() for h in history)
    result = compare([tmp_path], metric="eval/return", at=4096)
    assert [r["group"] for r in result["groups"]] == ["parity_reference (ppo)"]
    row = run_row(run, window=100_000)
    assert row["eval_bouts"] == 1 and row["eval_actions"] == "sampled" and row["frames"] == 4096
    # into the record without a policy (it trained SB3 on another stack), and only when told so
    from experiments.errors import UserError

    record_run = load_script("scripts/record_run.py")
    with pytest.raises(UserError, match="--no-policy"):
        record_run.record(run, tmp_path / "results")
    rec = record_run.record(run, tmp_path / "results", policy=False)
    assert json.loads((rec / "meta.json").read_text())["record_policy"] is None
    assert sorted(p.name for p in rec.iterdir()) == ["config.yaml", "eval", "meta.json", "tb"]
    assert compare([tmp_path / "results"], metric="eval/return", at=4096)["groups"][0]["per_seed"] == \
        [history[-1]["return"]]
