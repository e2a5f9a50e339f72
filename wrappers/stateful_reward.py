"""Reward wrappers: the game profile's shaped reward, and scale/clip for learners."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from wrappers.profile import Profile
from wrappers.tracker import GameTracker


def add_variables(data, profile: Profile) -> None:
    """Teach a live emulator's ``GameData`` the profile's own RAM variables (beside data.json's)."""
    for name, var in profile.variables.items():
        spec = {"address": var.address, "type": var.type}
        if var.mask is not None:
            spec["mask"] = var.mask
        data.set_variable(name, spec)


class ProfileReward(gym.Wrapper):
    """Replace reward and ``terminated`` with the game profile's, computed from RAM at each agent step.

    Adds to ``info`` on every step: ``progress`` (best progress since the episode start, in the profile's
    units), ``success``, ``terms`` (this step's reward per term), ``events`` (what fired), ``metrics`` (the
    profile's episode metrics so far) and, when the episode ends, ``reason`` (the done rule or fight event
    that ended it, or ``success``). The inner reward and ``terminated`` (the scenario's, when
    :class:`RetroGame` computes them) feed ``scenario`` terms and rules.

    In a fight, the frames between rounds (the KO animation, the refill, the "Round 2" screen) are played
    here with no button pressed, inside the agent step that ended the round: the agent never decides on
    them, and ``info["frames"]`` counts them, so the frames axis stays true.

    Args:
        env: a stack with :class:`RetroGame` at the bottom.
        profile: the validated game profile.
        episode: for a fight, what one episode is: a ``round``, a ``match`` or the ``run``.
    """

    def __init__(self, env: gym.Env, profile: Profile, episode: str = "match"):
        super().__init__(env)
        self.profile = profile
        data = env.unwrapped.data
        add_variables(data, profile)
        self._inner_reward = 0.0
        self._inner_done = False
        self.tracker = GameTracker(profile, data.lookup_value, scenario_reward=lambda: self._inner_reward,
                                   scenario_done=lambda: self._inner_done, episode=episode)
        self._game = _find_game(env) if profile.fight else None
        self.success = False

    def reset(self, **kwargs):
        """Reset and start tracking progress from the new start state."""
        obs, info = self.env.reset(**kwargs)
        v = self.tracker.reset()
        self.success = False
        info.update(progress=0.0, success=False, target=self.tracker.target(v))
        return obs, info

    def state_and_progress(self) -> tuple[bytes, float]:
        """The emulator's state now and where it stands along the episode (the progress variable now, from
        the episode's start; not the best so far: an episode started from this state measures from here)."""
        t = self.tracker
        return self.env.unwrapped.em.get_state(), t._progress(t.last_values) - t.start_progress

    def step(self, action):
        """Step, evaluate the profile on the RAM at the end of the window, and play out a fight's pause."""
        obs, self._inner_reward, self._inner_done, truncated, info = self.env.step(action)
        res = self.tracker.step()
        frames = info.get("frames", 0)
        waited = 0
        while res.waiting and not truncated:
            if waited >= self.profile.fight.max_wait_frames:
                res.terminated, res.reason = True, "fight_stalled"
                break
            obs, self._inner_reward, self._inner_done, truncated, inner = self._game.idle()
            frames += inner["frames"]
            waited += inner["frames"]
            res = res.merge(self.tracker.step())
        self.success = self.success or res.success
        info.update(progress=res.progress, success=self.success, terms=res.terms, events=res.events,
                    metrics=self.tracker.metrics, frames=frames)
        if res.terminated:
            info["reason"] = res.reason
        return obs, res.reward, res.terminated, truncated, info


def _find_game(env: gym.Env):
    """The :class:`RetroGame` under ``env`` (it plays the frames between rounds)."""
    from wrappers.retro_game import RetroGame

    while not isinstance(env, RetroGame):
        if not hasattr(env, "env"):
            raise TypeError("a fight profile needs RetroGame at the bottom of the stack")
        env = env.env
    return env


class RewardScaleClip(gym.RewardWrapper):
    """Multiply the reward by ``scale``, then clip it to ``[-clip, clip]`` (``clip=None``: no clip).

    ``clip=1`` with ``scale=1`` is the Atari sign-like clip of DQN/PPO papers for small integer rewards.
    """

    def __init__(self, env: gym.Env, scale: float = 1.0, clip: float | None = None):
        if clip is not None and clip <= 0:
            raise ValueError(f"RewardScaleClip clip must be > 0, got {clip}")
        super().__init__(env)
        self.scale = scale
        self.clip = clip

    def reward(self, reward):
        """Scale then clip."""
        r = reward * self.scale
        return float(np.clip(r, -self.clip, self.clip)) if self.clip is not None else float(r)
