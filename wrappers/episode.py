"""Episode wrappers: end on no progress, time limit in frames, and episode statistics."""

from __future__ import annotations

import time

import gymnasium as gym


class NoProgressEnd(gym.Wrapper):
    """Truncate the episode after ``max_frames`` emulator frames without a new maximum of progress.

    Progress is ``info["progress"]`` (from :class:`ProfileReward`), the best progress of the episode. Only a
    new maximum resets the clock: moving back and forth (Sonic rocking at a slope, Mario bouncing at a
    pipe) does not, which is the bug the original tutorial's stuck counter had. The end is a truncation,
    not a termination: the game did not end, we stopped watching.

    Args:
        env: a stack with :class:`ProfileReward` inside.
        max_frames: frames allowed without progress.
        frame_skip: frames per agent step of the inner stack.
    """

    def __init__(self, env: gym.Env, max_frames: int, frame_skip: int):
        if max_frames <= 0:
            raise ValueError(f"NoProgressEnd max_frames must be > 0, got {max_frames}")
        super().__init__(env)
        self.max_frames = max_frames
        self.frame_skip = frame_skip
        self._best = 0.0
        self._since = 0

    def reset(self, **kwargs):
        """Reset the no-progress clock."""
        obs, info = self.env.reset(**kwargs)
        self._best = info.get("progress", 0.0)
        self._since = 0
        return obs, info

    def step(self, action):
        """Step; truncate when the clock runs out."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        progress = info["progress"]
        if progress > self._best:
            self._best = progress
            self._since = 0
        else:
            self._since += info.get("frames", self.frame_skip)
        if self._since >= self.max_frames and not terminated and not truncated:
            truncated = True
            info["reason"] = "no_progress"
        return obs, reward, terminated, truncated, info


class FrameLimit(gym.Wrapper):
    """Truncate the episode after ``max_frames`` emulator frames (a time limit on the common axis).

    Frames are counted as the stack reports them (``info["frames"]``, ``frame_skip`` when absent), so move
    macros and the frames between a fight's rounds count too.
    """

    def __init__(self, env: gym.Env, max_frames: int, frame_skip: int):
        if max_frames <= 0:
            raise ValueError(f"FrameLimit max_frames must be > 0, got {max_frames}")
        super().__init__(env)
        self.max_frames = max_frames
        self.frame_skip = frame_skip
        self._frames = 0

    def reset(self, **kwargs):
        """Reset the clock."""
        self._frames = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        """Step; truncate when ``max_frames`` have passed."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames += info.get("frames", self.frame_skip)
        if self._frames >= self.max_frames and not terminated and not truncated:
            truncated = True
            info["reason"] = "time_limit"
        return obs, reward, terminated, truncated, info


class EpisodeStats(gym.Wrapper):
    """Put the episode's statistics in ``info["episode"]`` when it ends.

    Keys: ``r`` (shaped return, before any scale/clip), ``l`` (agent steps) and ``t`` (seconds) as SB3's
    ``Monitor`` writes them, so SB3's own ``rollout/ep_rew_mean`` works, plus ``frames`` (emulator frames,
    as ``info["frames"]`` reports them), ``progress``, ``success``, ``reason``, ``state``, ``terms`` (return
    per reward term), ``metrics`` (the profile's episode metrics) and ``actions`` (how often each action of
    a discrete set was chosen, by label).
    """

    def __init__(self, env: gym.Env, frame_skip: int, on_end=None):
        super().__init__(env)
        self.frame_skip = frame_skip
        self.on_end = on_end  # called with the episode's success when it ends (a pool weighted by failures)
        labels = getattr(env, "labels", None) if isinstance(env.action_space, gym.spaces.Discrete) else None
        if labels is None and isinstance(env.action_space, gym.spaces.Discrete):
            try:
                labels = env.get_wrapper_attr("labels")
            except AttributeError:
                labels = None
        self._labels: list[str] | None = list(labels) if labels else None
        self._reset_stats()

    def _reset_stats(self):
        self._ret = 0.0
        self._steps = 0
        self._frames = 0
        self._actions: dict[int, int] = {}
        self._terms: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self._state = None

    def snapshot(self) -> dict:
        """A start state cut here: ``state`` (the emulator's bytes), ``progress`` (where it stands along the
        episode) and ``return`` (the shaped return so far, so an episode started from it can be scored on the
        same scale as a whole one)."""
        state, progress = self.env.get_wrapper_attr("state_and_progress")()
        return {"state": state, "progress": float(progress), "return": float(self._ret)}

    def running(self) -> dict:
        """The episode so far: shaped return ``r``, agent steps ``l``, emulator ``frames`` and start ``state``
        (what a window shows while the episode is played)."""
        return {"r": self._ret, "l": self._steps, "frames": self._frames, "state": self._state}

    def reset(self, **kwargs):
        """Reset and start counting."""
        obs, info = self.env.reset(**kwargs)
        self._reset_stats()
        self._state = info.get("state")
        return obs, info

    def step(self, action):
        """Step, accumulate, and report at the episode's end."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._ret += reward
        self._steps += 1
        self._frames += info.get("frames", self.frame_skip)
        if self._labels is not None:
            a = int(action)
            self._actions[a] = self._actions.get(a, 0) + 1
        for k, v in info.get("terms", {}).items():
            self._terms[k] = self._terms.get(k, 0.0) + v
        if terminated or truncated:
            metrics = info.get("metrics")
            info["episode"] = {
                "r": self._ret,
                "l": self._steps,
                "t": round(time.perf_counter() - self._t0, 6),
                "frames": self._frames,
                "metrics": dict(metrics) if metrics else {},
                "actions": {self._labels[a]: n for a, n in sorted(self._actions.items())}
                if self._labels is not None else {},
                "progress": float(info.get("progress", 0.0)),
                "success": bool(info.get("success", False)),
                "reason": info.get("reason", "terminated" if terminated else "truncated"),
                "state": self._state,
                "terms": dict(self._terms),
            }
            if self.on_end is not None:
                self.on_end(info["episode"]["success"])
        return obs, reward, terminated, truncated, info
