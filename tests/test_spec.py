"""Experiment files: every shipped config validates; each broken file gives its own message, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.spec import SpecError, load_spec, parse_yaml, validate_spec

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).parent / "data" / "broken"

EXPECTED = {
    "yaml_syntax": ["YAML syntax error at line 3"],
    "bad_type": ["budget.frames: Input should be a valid integer", "(got 'lots')"],
    "unknown_key": ["agent.hyperparams.n_step: unknown key, did you mean n_steps?"],
    "unknown_game": ["game: Unknown game 'SuperMarioBro-Nes'", "Did you mean SuperMarioBros-Nes"],
    "unknown_state": ["state: unknown state 'Level9-1' for SuperMarioBros-Nes. Did you mean Level8-1?"],
    "missing_rom": ["game: No ROM for SonicTheHedgehog2-Genesis", "retrodojo roms import PATH"],
    "negative_budget": ["budget.frames: Input should be greater than 0 (got -100)"],
    "unknown_algo": ["agent.algo: unknown algo 'dqn'", "choices: ppo, a2c, ppo_lstm, a2c_lstm, neat"],
    "string_schedule": ["agent.hyperparams.learning_rate: schedules are data, not strings"],
    "bad_schedule_kind": ["agent.hyperparams.clip_range.schedule: Input should be 'linear' or 'constant'"],
    "unknown_profile": ["profile: Game profile 'smbb' not found"],
    "unknown_action_set": ["env.actions: no action set 'rigth_only' in profile smb, did you mean right_only?"],
    "missing_budget": ["budget: missing (required)"],
    "state_and_states": ["give either state or states, not both"],
    "sticky_out_of_range": ["env.sticky_prob: Input should be less than 1"],
    "not_a_mapping": ["an experiment is a mapping of keys"],
    "wrong_algo_key": ["agent.hyperparams.n_epochs: unknown key"],
    "many_errors": [
        "(5 problems)",
        "env.frame_skipp: unknown key, did you mean frame_skip?",
        "agent.hyperparams.n_steps: Input should be greater than or equal to 1",
        "budgte: unknown key, did you mean budget?",
        "budget: missing (required)",
        "state: unknown state 'Level1-2'",
    ],
}


def test_every_broken_file_has_an_expectation():
    assert {p.stem for p in BROKEN.glob("*.yaml")} == set(EXPECTED)
    assert len(EXPECTED) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_experiment_gives_its_message_and_no_traceback(name, capsys):
    rc = main(["train", str(BROKEN / f"{name}.yaml"), "--runs-dir", "/nonexistent/never-written"])
    out = capsys.readouterr()
    assert rc == 2
    text = " ".join(out.err.split())  # rich wraps long lines
    for fragment in EXPECTED[name]:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert "Traceback" not in out.err + out.out
    assert not Path("/nonexistent/never-written").exists()


def test_a_broken_file_fails_cleanly_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "experiments.cli", "train", str(BROKEN / "unknown_key.yaml")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert "did you mean n_steps?" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "experiments").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_experiment_configs_validate(path):
    # require_rom=False: sonic2_ppo.yaml must validate here although the Sonic 2 ROM is not on this machine
    spec = load_spec(path, require_rom=False)
    assert spec.name == path.stem
    assert spec.budget.frames > 0 and spec.env_spec().profile == spec.profile


def test_overrides_by_dotted_path_and_yaml12_floats():
    data = parse_yaml((ROOT / "configs/experiments/smb_ppo.yaml").read_text(), "smb_ppo.yaml")
    spec = validate_spec(data, "smb_ppo.yaml", overrides=[
        "budget.frames=200000", "seeds=[3]", "agent.hyperparams.learning_rate.start=1e-4",
        "agent.hyperparams.ent_coef=2e-3", "env.actions=simple"])
    assert spec.budget.frames == 200_000 and spec.seeds == [3]
    assert spec.agent.hyperparams.learning_rate.start == 1e-4 and spec.agent.hyperparams.ent_coef == 2e-3
    assert spec.env.actions == "simple"
    with pytest.raises(SpecError, match="agent.hyperparams.n_step: unknown key, did you mean n_steps"):
        validate_spec(data, "x", overrides=["agent.hyperparams.n_step=64"])


def test_defaults_are_filled_and_schedules_are_typed():
    spec = validate_spec({"name": "d", "game": "SuperMarioBros-Nes", "profile": "smb", "agent": {"algo": "a2c"},
                          "budget": {"frames": 1000}}, "d")
    assert spec.env.frame_skip == 4 and spec.eval.episodes == 5 and spec.seeds == [1]
    lr = spec.agent.hyperparams.learning_rate
    assert lr.schedule == "constant" and lr.start == 7e-4
    assert lr.to_sb3()(0.5) == pytest.approx(7e-4)


def test_fights_evaluate_with_sampled_actions_unless_told_otherwise():
    assert load_spec("boxing_ppo").eval.deterministic is False  # a fight profile: sampled
    assert load_spec("smb_ppo").eval.deterministic is True  # a platformer: greedy
    assert load_spec("boxing_ppo", ["eval.deterministic=true"]).eval.deterministic is True
    assert load_spec("smb_ppo", ["eval.deterministic=false"]).eval.deterministic is False


def test_eval_env_is_the_env_the_run_evaluates_in(tmp_path):
    from experiments.run import Run

    spec = load_spec("boxing_neat", ["eval.env.max_frames=40", "eval.env.noop_max=3"])
    assert spec.env_spec().max_frames == 9000 and spec.env_spec().noop_max == 0  # training's env is unchanged
    run = Run.create(spec, 1, tmp_path / "runs")
    try:
        result = run._eval().run(_Press(), episodes=2)
        assert [e["frames"] for e in result["episodes"]] == [40, 40]  # eval.env's time limit, not training's
        assert run._eval().env_spec.noop_max == 3 and run._eval().env_spec.sticky_prob == 0.25
    finally:
        run.close("finished")
    with pytest.raises(SpecError, match=r"eval\.env: env\.frame_stack: the policy learnt on frame_stack 1"):
        load_spec("boxing_neat", ["eval.env.frame_stack=4"])
    with pytest.raises(SpecError, match=r"eval\.env: env\.stiky_prob: unknown env setting, did you mean "
                                        r"env\.sticky_prob"):
        load_spec("boxing_neat", ["eval.env.stiky_prob=0.1"])


class _Press:
    """Always the same button (an ALE action index)."""

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        import numpy as np

        return np.array([1] * len(obs)), None
