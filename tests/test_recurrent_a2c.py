"""RecurrentA2C / PPOWithA2CUpdate must perform exactly SB3's A2C update.

Real stable-baselines3 and sb3-contrib throughout, no mocks, no emulator: CartPole-v1 and a tiny random-frame
image env. The proof has three parts:

* the non-recurrent twin, fed SB3 ``A2C``'s own rollouts from the same weights, ends every update with the same
  parameters as ``A2C`` (and plain PPO settings visibly do not, so the tolerance is not vacuous);
* ``RecurrentA2C.train()`` equals A2C's loss written out by hand on the LSTM rollout plus one hand-written RMSprop
  step (and sb3-contrib's stock buffer, which cuts back-propagation through time at a random step, does not);
* the recurrent class trains, saves, loads and continues like any SB3 algorithm.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from torch.nn import functional as F

from agents.recurrent_a2c import (
    RecurrentA2C,
    SequentialRecurrentRolloutBuffer,
    _A2CLearnDefaults,
    _num_envs_hint,
    a2c_update_kwargs,
)


class PPOWithA2CUpdate(_A2CLearnDefaults, PPO):
    """Non-recurrent twin of :class:`RecurrentA2C`: SB3's ``PPO`` with A2C's update.

    Same constructor (A2C's arguments and defaults) and same mapping (``a2c_update_kwargs``), so the update rule
    can be checked against SB3's own ``A2C`` parameter for parameter, without an LSTM in the way.

    Args:
        policy: Actor-critic policy class or alias (``MlpPolicy``, ``CnnPolicy``...).
        env: Env to learn from (or its id); may be None only when loading.
        learning_rate: Learning rate or schedule of the remaining progress (1 to 0).
        n_steps: Steps per env per update.
        gamma: Discount factor.
        gae_lambda: GAE lambda; 1.0 is the classic n-step advantage.
        ent_coef: Entropy coefficient.
        vf_coef: Value loss coefficient.
        max_grad_norm: Gradient-norm clip.
        rms_prop_eps: RMSprop epsilon.
        use_rms_prop: RMSprop (A2C's choice) if True, else the policy default (Adam).
        use_sde: Use generalized State Dependent Exploration.
        sde_sample_freq: Resample the gSDE noise every n steps (-1: once per rollout).
        rollout_buffer_class: Rollout buffer class, None for the default.
        rollout_buffer_kwargs: Rollout buffer keyword arguments.
        normalize_advantage: Normalize advantages (off in A2C).
        stats_window_size: Episodes averaged in the rollout logs.
        tensorboard_log: Tensorboard folder, or None.
        policy_kwargs: Extra policy arguments.
        verbose: 0 silent, 1 info, 2 debug.
        seed: Random seed.
        device: Torch device ("auto", "cpu", "cuda"...).
        _init_setup_model: Build the networks now (False when loading).
    """

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule = 7e-4,
        n_steps: int = 5,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = True,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        normalize_advantage: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            gamma=gamma,
            gae_lambda=gae_lambda,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            rollout_buffer_class=rollout_buffer_class,
            rollout_buffer_kwargs=rollout_buffer_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
            **a2c_update_kwargs(
                n_steps,
                _num_envs_hint(env),
                normalize_advantage=normalize_advantage,
                rms_prop_eps=rms_prop_eps,
                use_rms_prop=use_rms_prop,
                policy_kwargs=policy_kwargs,
            ),
        )

    def _setup_model(self) -> None:
        # As in RecurrentA2C: the batch is the whole rollout of the env actually in use.
        self.batch_size = self.n_steps * self.n_envs
        super()._setup_model()


ATOL = 1e-6
# A control must miss by far more than ATOL, or passing the match tests would prove nothing.
CONTROL_MIN_DIFF = 1e-4
# An update must move some parameter by at least this much (one RMSprop step moves one by up to ~10 * lr).
MIN_MOVE = 1e-3
ROLLOUT_FIELDS = (
    "observations",
    "actions",
    "rewards",
    "advantages",
    "returns",
    "episode_starts",
    "values",
    "log_probs",
)
CNN_KWARGS = dict(normalize_images=True, features_extractor_kwargs=dict(features_dim=64))


class RandomFrames(gym.Env):
    """Random 1x36x36 uint8 frames (NatureCNN's minimum), 3 actions, 6-step episodes, noisy reward for action 0."""

    observation_space = spaces.Box(0, 255, (1, 36, 36), np.uint8)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode with a random frame."""
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Advance one step; the episode terminates after 6 steps."""
        self.t += 1
        reward = float(action == 0) + float(self.np_random.normal())
        return self._frame(), reward, self.t >= 6, False, {}

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)


def cartpole(n_envs: int, seed: int = 0) -> VecEnv:
    """Seeded CartPole-v1 DummyVecEnv."""
    return make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)


def frames(n_envs: int, seed: int = 0) -> VecEnv:
    """Seeded RandomFrames DummyVecEnv."""
    env = DummyVecEnv([RandomFrames] * n_envs)
    env.seed(seed)
    return env


# name: (env factory, A2C policy, recurrent policy, n_envs, n_steps, policy_kwargs)
CASES = {
    "cartpole-mlp": (cartpole, "MlpPolicy", "MlpLstmPolicy", 4, 32, {}),
    "frames-cnn": (frames, "CnnPolicy", "CnnLstmPolicy", 2, 8, CNN_KWARGS),
}


def params(model: BaseAlgorithm) -> dict[str, th.Tensor]:
    """Detached copy of the policy's state dict."""
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def max_diff(a: dict[str, th.Tensor], b: dict[str, th.Tensor]) -> float:
    """Largest absolute difference over all entries of two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def optimizer_settings(model: BaseAlgorithm) -> tuple[type, dict]:
    """The optimizer class and its hyperparameters (param group without the tensors)."""
    (group,) = model.policy.optimizer.param_groups
    return type(model.policy.optimizer), {k: v for k, v in group.items() if k != "params"}


def replay_a2c_rollouts(case: str, make_other: Callable[..., BaseAlgorithm], n_updates: int = 3):
    """Train SB3's A2C and another model on A2C's rollouts, from the same weights and empty optimizers.

    Args:
        case: Key of ``CASES``.
        make_other: ``(policy, env, **a2c_kwargs) -> model`` for the model compared with A2C.
        n_updates: Successive rollout+update rounds; each rollout is collected by A2C's current policy.

    Returns:
        Max parameter difference after each update, how far A2C's parameters moved, and both models.
    """
    make_env, policy, _, n_envs, n_steps, policy_kwargs = CASES[case]
    # A decaying LR makes "same LR at the same progress" part of what is checked.
    kwargs = dict(
        n_steps=n_steps,
        learning_rate=LinearSchedule(7e-4, 1e-4, 1.0),
        ent_coef=0.01,
        seed=0,
        device="cpu",
    )
    a2c = A2C(policy, make_env(n_envs), policy_kwargs=dict(policy_kwargs), **kwargs)
    other = make_other(policy, make_env(n_envs), policy_kwargs=dict(policy_kwargs), **kwargs)
    other.policy.load_state_dict(a2c.policy.state_dict())
    # The optimizers were built in _setup_model and have not stepped: both RMSprop accumulators start empty.
    assert not a2c.policy.optimizer.state and not other.policy.optimizer.state
    start = params(a2c)

    _, callback = a2c._setup_learn(total_timesteps=10**6)
    other._setup_learn(total_timesteps=10**6)
    diffs = []
    for update in range(n_updates):
        assert a2c.collect_rollouts(a2c.env, callback, a2c.rollout_buffer, n_rollout_steps=n_steps)
        for name in ROLLOUT_FIELDS:
            setattr(other.rollout_buffer, name, getattr(a2c.rollout_buffer, name).copy())
        other.rollout_buffer.full, other.rollout_buffer.generator_ready = True, False
        a2c._current_progress_remaining = other._current_progress_remaining = 1.0 - 0.2 * update
        a2c.train()
        other.train()
        diffs.append(max_diff(params(a2c), params(other)))
    return diffs, max_diff(start, params(a2c)), a2c, other


@pytest.mark.parametrize("case", sorted(CASES))
def test_twin_update_equals_sb3_a2c(case):
    diffs, moved, a2c, twin = replay_a2c_rollouts(case, PPOWithA2CUpdate)
    print(f"{case}: max |twin - A2C| per update {diffs}, A2C moved {moved:.3g}")
    assert moved > MIN_MOVE, "A2C must actually change the parameters"
    assert max(diffs) < ATOL
    assert optimizer_settings(twin) == optimizer_settings(a2c)
    assert twin._n_updates == a2c._n_updates == 3


def _ppo_defaults(policy, env, policy_kwargs, n_steps, seed, device, **_):
    # Stock PPO: Adam, 10 epochs, minibatches of 64, clip 0.2, normalized advantages.
    return PPO(policy, env, n_steps=n_steps, policy_kwargs=policy_kwargs, seed=seed, device=device)


def _twin_two_epochs(*args, **kwargs):
    model = PPOWithA2CUpdate(*args, **kwargs)
    model.n_epochs = 2
    return model


def _twin_four_minibatches(*args, **kwargs):
    model = PPOWithA2CUpdate(*args, **kwargs)
    model.batch_size //= 4
    return model


@pytest.mark.parametrize("make_other", [_ppo_defaults, _twin_two_epochs, _twin_four_minibatches])
def test_negative_controls_do_not_match_a2c(make_other):
    diffs, _, _, _ = replay_a2c_rollouts("cartpole-mlp", make_other, n_updates=1)
    print(f"{make_other.__name__}: max |model - A2C| = {diffs[0]:.3g}")
    assert diffs[0] > CONTROL_MIN_DIFF


def a2c_step_by_hand(model: RecurrentPPO) -> dict[str, th.Tensor]:
    """A2C's update on ``model``'s filled rollout buffer, written out without PPO code, on a copy of the policy.

    Each env's whole rollout is one LSTM sequence started from the state stored at its first step; the policy
    resets the state at episode starts inside the sequence. Loss is A2C's, then one RMSprop step by hand,
    continuing from the model's own RMSprop accumulators.
    """
    buf = model.rollout_buffer
    n_steps, n_envs, device = buf.buffer_size, buf.n_envs, model.device

    def env_major(array: np.ndarray) -> th.Tensor:
        array = array.swapaxes(0, 1)
        return th.as_tensor(array.reshape(n_envs * n_steps, *array.shape[2:]), device=device)

    def first_state(array: np.ndarray) -> th.Tensor:
        return th.as_tensor(array[0], device=device).contiguous()

    policy = copy.deepcopy(model.policy)
    policy.set_training_mode(True)
    states = RNNStates(
        (first_state(buf.hidden_states_pi), first_state(buf.cell_states_pi)),
        (first_state(buf.hidden_states_vf), first_state(buf.cell_states_vf)),
    )
    values, log_prob, entropy = policy.evaluate_actions(
        env_major(buf.observations), env_major(buf.actions).long().flatten(), states, env_major(buf.episode_starts)
    )
    advantages, returns = env_major(buf.advantages).flatten(), env_major(buf.returns).flatten()
    loss = (
        -(advantages * log_prob).mean()
        + model.ent_coef * -entropy.mean()
        + model.vf_coef * F.mse_loss(returns, values.flatten())
    )
    loss.backward()
    th.nn.utils.clip_grad_norm_(policy.parameters(), model.max_grad_norm)

    lr = model.lr_schedule(model._current_progress_remaining)
    accumulators = model.policy.optimizer.state
    with th.no_grad():
        for model_param, param in zip(model.policy.parameters(), policy.parameters()):
            grad = param.grad
            square_avg = accumulators[model_param]["square_avg"] if model_param in accumulators else 0.0
            square_avg = 0.99 * square_avg + 0.01 * grad * grad
            param -= lr * grad / (square_avg.sqrt() + 1e-5)
    return {k: v.detach().clone() for k, v in policy.state_dict().items()}


def _stock_recurrent_ppo(policy, env, n_steps, policy_kwargs, **kwargs):
    # Same A2C mapping, but sb3-contrib's own buffer, which rotates the full batch at a random index.
    update = a2c_update_kwargs(n_steps, env.num_envs, policy_kwargs=policy_kwargs)
    return RecurrentPPO(policy, env, gae_lambda=1.0, **update, **kwargs)


@pytest.mark.parametrize(
    ("case", "make_model", "matches"),
    [
        ("cartpole-mlp", RecurrentA2C, True),
        ("frames-cnn", RecurrentA2C, True),
        ("cartpole-mlp", _stock_recurrent_ppo, False),
    ],
)
def test_recurrent_update_equals_a2c_formula(case, make_model, matches):
    make_env, _, policy, _, _, policy_kwargs = CASES[case]
    n_envs, n_steps = 2, 32
    model = make_model(
        policy,
        make_env(n_envs),
        n_steps=n_steps,
        learning_rate=7e-4,
        ent_coef=0.01,
        policy_kwargs=dict(policy_kwargs, lstm_hidden_size=32),
        seed=0,
        device="cpu",
    )
    _, callback = model._setup_learn(total_timesteps=10**6)
    diffs, mid_rollout_starts = [], 0
    for update in range(3):
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)
        mid_rollout_starts += int(model.rollout_buffer.episode_starts[1:].sum())
        expected = a2c_step_by_hand(model)
        before = params(model)
        np.random.seed(update)  # fixes sb3-contrib's random rotation, so the control is reproducible
        model.train()
        assert max_diff(before, params(model)) > MIN_MOVE
        diffs.append(max_diff(expected, params(model)))
    print(f"{case} {make_model.__name__}: max |train() - A2C by hand| per update {diffs}")
    # Episode boundaries inside the rollout are where recurrent bookkeeping can go wrong; make sure there are some.
    assert mid_rollout_starts > 0
    if matches:
        assert max(diffs) < ATOL
        assert model._n_updates == 3
    else:
        assert max(diffs) > CONTROL_MIN_DIFF


def test_a2c_update_kwargs_mapping():
    user_kwargs = dict(net_arch=[16])
    kwargs = a2c_update_kwargs(5, 4, policy_kwargs=user_kwargs)
    assert kwargs["batch_size"] == 20 and kwargs["n_steps"] == 5 and kwargs["n_epochs"] == 1
    assert kwargs["clip_range"] == math.inf and kwargs["clip_range_vf"] is None and kwargs["target_kl"] is None
    assert kwargs["normalize_advantage"] is False
    assert kwargs["policy_kwargs"] == dict(
        net_arch=[16], optimizer_class=th.optim.RMSprop, optimizer_kwargs=dict(alpha=0.99, eps=1e-5, weight_decay=0)
    )
    assert user_kwargs == dict(net_arch=[16]), "the caller's dict must not be mutated (SB3's A2C does mutate it)"
    # Like A2C: an explicit optimizer wins, and use_rms_prop=False leaves the policy default (Adam).
    assert a2c_update_kwargs(5, policy_kwargs=dict(optimizer_class=th.optim.SGD))["policy_kwargs"] == dict(
        optimizer_class=th.optim.SGD
    )
    assert a2c_update_kwargs(5, use_rms_prop=False)["policy_kwargs"] == {}


SMALL_LSTM = dict(lstm_hidden_size=32, net_arch=[32])


@pytest.mark.slow
def test_recurrent_a2c_trains_saves_loads_and_continues(tmp_path):
    n_steps, n_envs = 5, 2
    model = RecurrentA2C("MlpLstmPolicy", cartpole(n_envs), policy_kwargs=SMALL_LSTM, seed=0, device="cpu")
    assert (model.n_steps, model.learning_rate, model.gamma, model.gae_lambda) == (n_steps, 7e-4, 0.99, 1.0)
    assert (model.ent_coef, model.vf_coef, model.max_grad_norm) == (0.0, 0.5, 0.5)
    assert model.n_epochs == 1 and model.batch_size == n_steps * n_envs
    assert model.clip_range(1.0) == math.inf and model.clip_range_vf is None
    assert model.normalize_advantage is False and model.target_kl is None
    optimizer_class, settings = optimizer_settings(model)
    assert optimizer_class is th.optim.RMSprop
    assert (settings["alpha"], settings["eps"], settings["weight_decay"]) == (0.99, 1e-5, 0)
    assert isinstance(model.rollout_buffer, SequentialRecurrentRolloutBuffer)

    step_times = []
    hook = model.policy.optimizer.register_step_post_hook(lambda *_: step_times.append(model.num_timesteps))
    start = params(model)
    model.learn(3 * n_steps * n_envs)
    hook.remove()
    assert model.num_timesteps == 30
    # One epoch of one batch: exactly one optimizer step, right after each rollout.
    assert step_times == [10, 20, 30] and model._n_updates == 3
    assert max_diff(start, params(model)) > 0

    path = tmp_path / "recurrent_a2c.zip"
    model.save(path)
    # A wider env than at save time: batch_size and the buffer must follow it.
    loaded = RecurrentA2C.load(path, env=cartpole(3, seed=1), device="cpu")
    assert isinstance(loaded, RecurrentA2C) and isinstance(loaded.rollout_buffer, SequentialRecurrentRolloutBuffer)
    assert loaded.n_envs == loaded.rollout_buffer.n_envs == 3 and loaded.batch_size == n_steps * 3
    assert max_diff(params(model), params(loaded)) == 0
    assert optimizer_settings(loaded) == optimizer_settings(model)
    assert loaded.num_timesteps == 30 and loaded._n_updates == 3

    obs = loaded.env.reset()
    actions, state = loaded.predict(obs, state=None, episode_start=np.ones(3, dtype=bool), deterministic=True)
    assert actions.shape == (3,) and state[0].shape == (1, 3, 32)
    _, next_state = loaded.predict(obs, state=state, episode_start=np.zeros(3, dtype=bool), deterministic=True)
    assert not np.allclose(next_state[0], state[0]), "the LSTM state must carry over between calls"

    loaded.learn(2 * n_steps * 3, reset_num_timesteps=False)
    assert loaded.num_timesteps == 30 + 2 * n_steps * 3 and loaded._n_updates == 5


@pytest.mark.parametrize("n_envs_after", [2, 3])
def test_load_without_env_reset_continues(tmp_path, n_envs_after):
    model = RecurrentA2C("MlpLstmPolicy", cartpole(2), policy_kwargs=SMALL_LSTM, seed=0, device="cpu")
    model.learn(10)
    model.save(tmp_path / "m.zip")
    # force_reset=False only makes sense with an env still at the saved observation, i.e. the live one.
    env = model.get_env() if n_envs_after == 2 else cartpole(n_envs_after)
    loaded = RecurrentA2C.load(tmp_path / "m.zip", env=env, device="cpu", force_reset=False)
    if n_envs_after == 2:
        # The saved observation is kept, but the LSTM state is not saved: that step must count as a fresh start.
        np.testing.assert_array_equal(loaded._last_obs, model._last_obs)
        assert loaded._last_episode_starts.all()
    else:
        assert loaded._last_obs is None, "an observation batch of the old width cannot be stepped"
    loaded.learn(5 * n_envs_after, reset_num_timesteps=False)
    assert loaded.num_timesteps == 10 + 5 * n_envs_after

