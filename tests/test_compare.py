"""compare's pieces, written once: the settings flattener it shares with TensorBoard's hparams, and which
settings differ between groups."""

from __future__ import annotations


def test_one_flattener_for_compare_and_tensorboard():
    from experiments.compare import differing
    from experiments.run import flatten

    flat = flatten({"agent": {"algo": "ppo", "hyperparams": {"lr": {"schedule": "linear", "start": 3e-4}}},
                    "env": {"resize": [84, 84], "reward_clip": None, "rewards": {}}, "state": "Level1-1"})
    assert flat == {"agent.algo": "ppo", "agent.hyperparams.lr.schedule": "linear",
                    "agent.hyperparams.lr.start": 3e-4, "env.resize": "[84, 84]", "env.reward_clip": "null",
                    "env.rewards": "{}", "state": "Level1-1"}
    # what differs: a key one config lacks counts as null, as a run from before the setting existed
    assert differing([{"a": 1, "b": "null"}, {"a": 2}, {"a": 1, "c": 3}]) == ["a", "c"]
    assert not hasattr(__import__("experiments.run").run, "_flatten")
    from experiments import compare

    assert not hasattr(compare, "_flat")
