"""Episode and reward wrappers on a scripted fake env (pure logic, no emulator)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from wrappers.episode import EpisodeStats, FrameLimit, NoProgressEnd
from wrappers.stateful_reward import RewardScaleClip
from wrappers.transform_observation import FrameStack, GrayResize


class ScriptedEnv(gym.Env):
    """Replays progress values; reward = 1 per step; obs = step index as a tiny image."""

    observation_space = gym.spaces.Box(0, 255, (6, 8, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, progress):
        self.progress = progress
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros((6, 8, 3), np.uint8), {"progress": 0.0, "state": "S"}

    def step(self, action):
        self.t += 1
        p = self.progress[min(self.t, len(self.progress) - 1)]
        obs = np.full((6, 8, 3), self.t, np.uint8)
        return obs, 1.0, False, False, {"progress": p, "success": False, "terms": {"a": 1.0, "b": 0.5}}


def _run(env, n):
    env.reset()
    for i in range(n):
        out = env.step(0)
        if out[2] or out[3]:
            return i + 1, out
    return n, out


def test_no_progress_end_needs_a_new_maximum():
    # rocking between 10 and 5 is not progress: 3 steps of 4 frames after the last max end it at 12 frames
    env = NoProgressEnd(ScriptedEnv([0, 10, 5, 10, 5, 10, 5]), max_frames=12, frame_skip=4)
    steps, (_, _, term, trunc, info) = _run(env, 20)
    assert (steps, term, trunc, info["reason"]) == (4, False, True, "no_progress")


def test_no_progress_clock_restarts_on_progress():
    env = NoProgressEnd(ScriptedEnv(list(range(0, 100, 1))), max_frames=8, frame_skip=4)
    steps, (_, _, _, trunc, _) = _run(env, 50)
    assert steps == 50 and not trunc


def test_frame_limit_counts_frames_not_steps():
    env = FrameLimit(ScriptedEnv(list(range(100))), max_frames=10, frame_skip=4)
    steps, (_, _, _, trunc, info) = _run(env, 50)
    assert (steps, trunc, info["reason"]) == (3, True, "time_limit")


def test_episode_stats_report_return_terms_and_frames():
    env = EpisodeStats(FrameLimit(ScriptedEnv(list(range(100))), max_frames=20, frame_skip=4), frame_skip=4)
    steps, (_, _, _, _, info) = _run(env, 50)
    ep = info["episode"]
    assert (ep["r"], ep["l"], ep["frames"], ep["progress"], ep["reason"], ep["state"]) == (
        5.0, 5, 20, 5.0, "time_limit", "S")
    assert ep["terms"] == {"a": 5.0, "b": 2.5}


def test_reward_scale_then_clip():
    env = RewardScaleClip(ScriptedEnv([0, 1]), scale=3.0, clip=2.0)
    env.reset()
    assert env.step(0)[1] == 2.0
    with pytest.raises(ValueError):
        RewardScaleClip(ScriptedEnv([0]), clip=0)


def test_gray_resize_and_frame_stack_are_channel_first():
    env = FrameStack(GrayResize(ScriptedEnv(list(range(10))), (3, 4)), 4)
    assert env.observation_space.shape == (4, 3, 4)
    obs, _ = env.reset()
    assert obs.shape == (4, 3, 4) and not obs.any()
    obs, *_ = env.step(0)
    obs, *_ = env.step(0)
    # oldest first: two reset frames, then steps 1 and 2
    assert obs[:, 0, 0].tolist() == [0, 0, 1, 2]
    color = GrayResize(ScriptedEnv([0]), None, grayscale=False)
    assert color.observation_space.shape == (3, 6, 8)


def test_wrappers_check_their_input_space():
    bad = ScriptedEnv([0])
    bad.observation_space = gym.spaces.Box(0, 1, (5,), np.float32)
    with pytest.raises(TypeError, match="GrayResize requires a \\(H, W, 3\\) Box"):
        GrayResize(bad)
    with pytest.raises(TypeError, match="FrameStack requires a \\(C, H, W\\) Box"):
        FrameStack(bad, 4)
