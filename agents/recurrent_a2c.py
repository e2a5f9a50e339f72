"""A2C with an LSTM policy, built as RecurrentPPO running A2C's update.

Neither stable-baselines3 nor sb3-contrib ships a recurrent A2C. sb3-contrib's ``RecurrentPPO`` already has
everything an LSTM actor-critic needs (recurrent rollout buffer, hidden-state bookkeeping, sequence padding,
``CnnLstmPolicy``/``MlpLstmPolicy``), so :class:`RecurrentA2C` reuses it and only changes the update.

Why PPO's update with these settings *is* A2C's update (``a2c_update_kwargs``):

* one epoch and the whole rollout as one batch give exactly one gradient step per rollout, as in A2C;
* at that single step the policy is the one that collected the rollout, so ``ratio = exp(logp - logp_old)`` is 1
  and ``d(-A * ratio) = -A * ratio * d(logp) = -A * d(logp)``: the gradient of PPO's surrogate equals the
  gradient of A2C's ``-A * logp``. With ``clip_range = inf`` the clamp and the ``min`` can never select the
  clipped branch, even when float noise makes the ratio ``1 +- 1e-7`` (any finite clip range would in exact
  arithmetic also never bind at ratio 1, but inf needs no such argument);
* the value loss (``clip_range_vf=None``) and the entropy loss are the same expressions as A2C's;
* PPO shuffles the batch, but permuting a single batch only permutes the terms of a mean;
* the optimizer is RMSprop built exactly as SB3's ``A2C`` builds it, advantage normalization is off by default and
  ``target_kl`` is None (no early stop).

The tests build the non-recurrent twin (plain ``PPO`` with the same mapping) and prove it moves the parameters
like SB3's ``A2C`` on the same rollout (to float precision, ~1e-7), and check the recurrent class against A2C's
loss written out by hand.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import torch as th
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.vec_env import VecEnv

__all__ = [
    "RecurrentA2C",
    "SequentialRecurrentDictRolloutBuffer",
    "SequentialRecurrentRolloutBuffer",
    "a2c_update_kwargs",
]


_LSTM_STATE_FIELDS = ("hidden_states_pi", "cell_states_pi", "hidden_states_vf", "cell_states_vf")
_FLAT_FIELDS = ("actions", "values", "log_probs", "advantages", "returns", "episode_starts", *_LSTM_STATE_FIELDS)


def a2c_update_kwargs(
    n_steps: int,
    n_envs: int = 1,
    *,
    normalize_advantage: bool = False,
    rms_prop_eps: float = 1e-5,
    use_rms_prop: bool = True,
    policy_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """PPO/RecurrentPPO keyword arguments that turn their update into A2C's.

    Only the update is mapped; A2C's other defaults (``learning_rate=7e-4``, ``gae_lambda=1.0``...) are the
    caller's business (the classes below supply them).

    Args:
        n_steps: Steps per env per rollout.
        n_envs: Number of envs collecting the rollout; the batch is ``n_steps * n_envs``, the whole rollout.
        normalize_advantage: A2C's flag (off in A2C by default, unlike PPO).
        rms_prop_eps: RMSprop epsilon, as in A2C.
        use_rms_prop: Use RMSprop like A2C; if False the policy keeps its default (Adam).
        policy_kwargs: The caller's policy kwargs; copied, never mutated.

    Returns:
        Keyword arguments for ``PPO(...)`` or ``RecurrentPPO(...)``: ``n_steps``, ``batch_size``, ``n_epochs``,
        ``clip_range``, ``clip_range_vf``, ``normalize_advantage``, ``target_kl`` and ``policy_kwargs``.
    """
    # Copy because SB3's A2C writes the optimizer into the very dict the user passed.
    policy_kwargs = dict(policy_kwargs or {})
    # Same condition and values as stable_baselines3/a2c/a2c.py, including that it replaces any
    # optimizer_kwargs given without an optimizer_class.
    if use_rms_prop and "optimizer_class" not in policy_kwargs:
        policy_kwargs["optimizer_class"] = th.optim.RMSprop
        policy_kwargs["optimizer_kwargs"] = dict(alpha=0.99, eps=rms_prop_eps, weight_decay=0)
    return dict(
        n_steps=n_steps,
        batch_size=n_steps * n_envs,
        n_epochs=1,
        clip_range=math.inf,
        clip_range_vf=None,
        normalize_advantage=normalize_advantage,
        target_kl=None,
        policy_kwargs=policy_kwargs,
    )


def _num_envs_hint(env: GymEnv | str | None) -> int:
    # Before BaseAlgorithm wraps it, only a VecEnv knows its width; anything else becomes a 1-env DummyVecEnv.
    return env.num_envs if isinstance(env, VecEnv) else 1


class _SequentialGetMixin:
    """Makes a recurrent buffer's full-batch ``get`` yield the rollout once, in order, uncut."""

    buffer_size: int
    n_envs: int
    generator_ready: bool

    def get(self, batch_size: int | None = None) -> Generator[Any, None, None]:
        """Yield the whole rollout as one batch of per-env, per-episode sequences.

        sb3-contrib's ``get`` rotates the flattened rollout at a random index even for a full batch, which starts
        an extra sequence there: the forward pass is unchanged (that sequence starts from the stored LSTM state)
        but back-propagation through time is cut at a random step. A2C's update has no such cut, so a full batch
        here is taken in order. Smaller batches fall back to sb3-contrib's sampler.

        Args:
            batch_size: None or at least ``buffer_size * n_envs`` for the whole rollout.

        Yields:
            One ``RecurrentRolloutBufferSamples`` (or the Dict variant) covering every transition.
        """
        total = self.buffer_size * self.n_envs
        if batch_size is not None and batch_size < total:
            yield from super().get(batch_size)
            return
        assert self.full, "Rollout buffer must be full before sampling from it"
        if not self.generator_ready:
            # Same layout as sb3-contrib's get(): env-major, time order kept inside each env.
            for name in _LSTM_STATE_FIELDS:
                self.__dict__[name] = self.__dict__[name].swapaxes(1, 2)
            if isinstance(self.observations, dict):
                for key, obs in self.observations.items():
                    self.observations[key] = self.swap_and_flatten(obs)
            else:
                self.observations = self.swap_and_flatten(self.observations)
            for name in _FLAT_FIELDS:
                self.__dict__[name] = self.swap_and_flatten(self.__dict__[name])
            self.generator_ready = True
        env_change = np.zeros((self.buffer_size, self.n_envs))
        env_change[0, :] = 1.0
        env_change = self.swap_and_flatten(env_change)
        yield self._get_samples(np.arange(total), env_change)


class SequentialRecurrentRolloutBuffer(_SequentialGetMixin, RecurrentRolloutBuffer):
    """``RecurrentRolloutBuffer`` whose full-batch ``get`` keeps the rollout in order (see the mixin)."""


class SequentialRecurrentDictRolloutBuffer(_SequentialGetMixin, RecurrentDictRolloutBuffer):
    """``RecurrentDictRolloutBuffer`` whose full-batch ``get`` keeps the rollout in order (see the mixin)."""


class _A2CLearnDefaults:
    """A2C's ``learn`` defaults (log every 100 rollouts, its own TensorBoard name) for the two A2C classes."""

    def learn(self, total_timesteps: int, callback: MaybeCallback = None, log_interval: int = 100,
              tb_log_name: str | None = None, reset_num_timesteps: bool = True, progress_bar: bool = False):
        """Train for ``total_timesteps`` env steps (added to ``num_timesteps`` when not resetting).

        Args:
            total_timesteps: Env steps to collect.
            callback: Callback(s) called at every step.
            log_interval: Log every this many rollouts.
            tb_log_name: TensorBoard run name (default: the class name).
            reset_num_timesteps: False to continue the step counter, e.g. after ``load``.
            progress_bar: Show a progress bar.

        Returns:
            The trained model.
        """
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name or type(self).__name__,
                             reset_num_timesteps=reset_num_timesteps, progress_bar=progress_bar)


class RecurrentA2C(_A2CLearnDefaults, RecurrentPPO):
    """A2C with an LSTM policy (``MlpLstmPolicy``, ``CnnLstmPolicy``, ``MultiInputLstmPolicy``).

    A2C with an LSTM is in neither stable-baselines3 nor sb3-contrib. This is sb3-contrib's ``RecurrentPPO`` with
    A2C's update: one epoch, the whole rollout as one batch, no clipping, RMSprop. That gives the same gradient as
    A2C (the probability ratio is 1 at the only step, so PPO's surrogate has A2C's policy-gradient; value and
    entropy losses are the same expressions; see the module docstring), with back-propagation through time over
    each env's part of the rollout, cut only at episode starts.

    The constructor takes A2C's arguments with A2C's defaults. ``rollout_buffer_class``/``rollout_buffer_kwargs``
    are not accepted because ``RecurrentPPO`` always builds its own recurrent buffer. ``batch_size`` is kept equal
    to ``n_steps * n_envs`` of the env actually in use (reset in ``_setup_model``, so it follows ``load`` with an
    env of another width).

    Args:
        policy: Recurrent policy class or alias.
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
        policy: str | type[RecurrentActorCriticPolicy],
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
        # n_envs is only final here: load() overwrites it (and batch_size) from the file and the new env.
        self.batch_size = self.n_steps * self.n_envs
        super()._setup_model()
        old = self.rollout_buffer
        buffer_cls = (
            SequentialRecurrentDictRolloutBuffer
            if isinstance(old, RecurrentDictRolloutBuffer)
            else SequentialRecurrentRolloutBuffer
        )
        self.rollout_buffer = buffer_cls(
            self.n_steps,
            self.observation_space,
            self.action_space,
            old.hidden_state_shape,
            self.device,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            n_envs=self.n_envs,
        )
        if self._last_obs is not None:
            # Only reachable from load(..., force_reset=False): sb3-contrib does not save the LSTM state, so it
            # was just zeroed. Mark the next step as an episode start so the buffer's sequences agree with that
            # zero state, and drop an observation batch whose width no longer matches the env.
            first = next(iter(self._last_obs.values())) if isinstance(self._last_obs, dict) else self._last_obs
            if len(first) != self.n_envs:
                self._last_obs = None
            else:
                self._last_episode_starts = np.ones((self.n_envs,), dtype=bool)
