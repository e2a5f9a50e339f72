"""The channels-last Nature CNN: same architecture, outputs and PPO update as SB3's CnnPolicy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.torch_layers import NatureCNN

from agents.networks import ChannelsLastNatureCNN
from agents.sb3_agents import cnn_policy_kwargs

SPACE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


class Frames(gym.Env):
    """Random frames; action 1 pays."""

    observation_space = SPACE
    action_space = gym.spaces.Discrete(3)

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def reset(self, *, seed=None, options=None):
        return self.rng.integers(0, 255, SPACE.shape, dtype=np.uint8), {}

    def step(self, action):
        return self.rng.integers(0, 255, SPACE.shape, dtype=np.uint8), float(action == 1), False, False, {}


def test_same_layers_and_features_as_nature_cnn():
    torch.manual_seed(0)
    ref, fast = NatureCNN(SPACE), ChannelsLastNatureCNN(SPACE)
    fast.load_state_dict(ref.state_dict())
    x = torch.rand(3, 4, 84, 84)
    assert torch.allclose(ref(x), fast(x), atol=1e-5)
    assert fast.cnn[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert list(ref.state_dict()) == list(fast.state_dict())


def test_ppo_update_equals_cnn_policy_update():
    """Same weights, same rollout: one PPO update moves every parameter as with SB3's own CnnPolicy.

    This also pins the architecture: SB3 silently adds 64-64 MLP heads to any extractor but NatureCNN.
    """
    kw = dict(n_steps=64, batch_size=64, n_epochs=1, device="cpu", seed=0)
    ref = PPO("CnnPolicy", Frames(), **kw)
    fast = PPO("CnnPolicy", Frames(), policy_kwargs=cnn_policy_kwargs({}), **kw)
    names = [(n, tuple(p.shape)) for n, p in ref.policy.named_parameters()]
    assert names == [(n, tuple(p.shape)) for n, p in fast.policy.named_parameters()]
    fast.policy.load_state_dict(ref.policy.state_dict())
    _, callback = ref._setup_learn(64, None)
    fast._setup_learn(64, None)
    callback.on_training_start(locals(), globals())
    ref.collect_rollouts(ref.env, callback, ref.rollout_buffer, 64)
    for key in ("observations", "actions", "rewards", "returns", "episode_starts", "values", "log_probs",
                "advantages"):
        setattr(fast.rollout_buffer, key, getattr(ref.rollout_buffer, key).copy())
    fast.rollout_buffer.full, fast.rollout_buffer.generator_ready = True, False
    fast._current_progress_remaining = ref._current_progress_remaining
    before = [p.detach().clone() for p in ref.policy.parameters()]
    ref.train()
    fast.train()
    for p0, a, b in zip(before, ref.policy.parameters(), fast.policy.parameters()):
        moved = float((a - p0).detach().abs().max())
        assert moved > 1e-5  # the update did something, so equality below means something
        assert float((a - b).detach().abs().max()) < 1e-6 * max(1.0, moved * 1e3)
