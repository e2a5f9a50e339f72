"""The full stack on real games: SMB with its profile, Airstriker, Pong, Boxing; fast vs plain path."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from conftest import smb_spec

from wrappers import EnvSpec, make_env

RIGHT_B = 3  # right_only: NOOP, RIGHT, RIGHT+A, RIGHT+B, RIGHT+A+B


def test_smb_driving_right_passes_256_and_reward_is_x_progress(smb_run):
    with make_env(smb_spec(frame_stack=1, stuck_frames=None)) as env:
        env.reset()
        data = env.unwrapped.data
        total, xs = 0.0, []
        for a in smb_run[:150]:
            _, r, term, trunc, info = env.step(a)
            total += r
            xs.append(256 * data.lookup_value("xscrollHi") + data.lookup_value("xscrollLo"))
            assert not (term or trunc)
        assert data.lookup_value("xscrollHi") > 0 and xs[-1] > 256
        assert total == xs[-1] == info["progress"]  # x starts at 0 in Level1-1
        assert all(b >= a for a, b in zip(xs, xs[1:]))


def test_smb_standing_still_ends_by_no_progress_at_the_frame():
    with make_env(smb_spec(stuck_frames=200, frame_stack=1)) as env:
        env.reset()
        steps = 0
        for steps in range(1, 100):  # noqa: B007 - the count is checked after the loop
            _, _, term, trunc, info = env.step(0)  # NOOP
            if term or trunc:
                break
        assert trunc and not term and info["reason"] == "no_progress"
        assert steps * 4 == 200 and info["episode"]["frames"] == 200


def test_smb_scripted_run_reaches_the_flag(smb_run):
    with make_env(smb_spec(stuck_frames=None)) as env:
        env.reset()
        steps = 0
        for a in smb_run:
            _, _, term, trunc, info = env.step(a)
            steps += 1
            if term or trunc:
                break
        assert steps == len(smb_run), "the flag came early or the run died"
        assert term and info["success"] and info["reason"] == "success"
        ep = info["episode"]
        assert ep["success"] and ep["progress"] > 3000
        assert env.unwrapped.data.lookup_value("float_state") == 3  # sliding down the pole


def test_smb_dying_ends_the_episode_at_once():
    with make_env(smb_spec(stuck_frames=None)) as env:
        env.reset()
        for _ in range(100):  # running right into the first Goomba
            _, _, term, trunc, info = env.step(RIGHT_B)
            if term or trunc:
                break
        assert term and info["reason"] == "dying"
        assert info["episode"]["frames"] < 200  # not after the death animation


def _play(spec: EnvSpec, actions, seed=0):
    out = []
    with make_env(spec, seed=seed) as env:
        obs, _ = env.reset()
        out.append(obs.copy())
        for a in actions:
            obs, r, term, trunc, info = env.step(a)
            out.append((obs.copy(), r, term, trunc, info.get("reason")))
            if term or trunc:
                obs, _ = env.reset()
                out.append(obs.copy())
    return out


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            assert np.array_equal(x[0], y[0]) and x[1:] == y[1:]
        else:
            assert np.array_equal(x, y)


@pytest.mark.parametrize("game,state,profile", [
    ("SuperMarioBros-Nes", "Level1-1", "smb"),      # profile from RAM only
    ("Boxing-Atari2600", "Start", "boxing"),        # reward and done from the Lua scenario
])
def test_fast_frame_skip_equals_plain_path(game, state, profile, smb_run):
    rng = np.random.default_rng(7)
    spec = EnvSpec(game=game, state=state, profile=profile, sticky_prob=0.25, noop_max=8, stuck_frames=120)
    n = 5 if game.startswith("Super") else 18
    actions = smb_run[:200] + rng.integers(n, size=150).tolist() if game.startswith("Super") else \
        rng.integers(n, size=350).tolist()
    fast = _play(spec, actions, seed=3)
    plain = _play(spec.model_copy(update={"fast": False}), actions, seed=3)
    _same(fast, plain)
    ends = [x for x in fast if isinstance(x, tuple) and (x[2] or x[3])]
    assert ends, "the sequence should cross an episode end"
    if game.startswith("Boxing"):
        assert any(x[1] != 0 for x in fast if isinstance(x, tuple)), "Boxing should score some reward"


@pytest.mark.parametrize("game,state,profile,n_actions", [
    ("Airstriker-Genesis", "Level1", "airstriker", 10),
    ("Pong-Atari2600", "Start", "pong", 6),
])
def test_full_stack_shapes_dtypes_and_moving_frames(game, state, profile, n_actions):
    spec = EnvSpec(game=game, state=state, profile=profile, stuck_frames=None, max_frames=2000)
    rng = np.random.default_rng(0)
    with make_env(spec, seed=0) as env:
        assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
        assert env.action_space.n == n_actions
        obs, info = env.reset()
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and info["state"] == state
        assert all(np.array_equal(obs[0], obs[i]) for i in range(4))  # reset fills the stack
        frames = [obs]
        for _ in range(120):
            obs, r, term, trunc, info = env.step(int(rng.integers(n_actions)))
            assert env.observation_space.contains(obs) and isinstance(r, float)
            frames.append(obs)
            if term or trunc:
                break
        assert not np.array_equal(frames[0][-1], frames[-1][-1]), "the screen should change"
        assert not np.array_equal(obs[0], obs[-1]), "stacked frames should differ over time"
        assert np.array_equal(frames[-2][1:], frames[-1][:-1]), "the stack shifts by one frame per step"


def test_pong_reward_is_points_and_episode_reaches_21():
    spec = EnvSpec(game="Pong-Atari2600", state="Start", profile="pong", stuck_frames=None, max_frames=None,
                   frame_stack=1, resize=(42, 42))
    with make_env(spec, seed=0) as env:
        env.reset()
        total = 0.0
        for _ in range(6000):
            _, r, term, trunc, info = env.step(0)  # NOOP: the CPU scores every point
            total += r
            if term or trunc:
                break
        assert term and info["reason"] == "game_over"
        assert total == -21.0 and info["episode"]["terms"] == {"points_won": 0.0, "points_lost": -21.0}


def test_discretizer_presses_the_buttons_of_the_action_set():
    with make_env(smb_spec(actions="complex")) as env:
        assert env.action_space.n == 12
        labels = env.get_wrapper_attr("labels")
        assert labels[9] == "LEFT+A+B" and labels[11] == "UP"
        disc = env.env
        while type(disc).__name__ != "Discretizer":
            disc = disc.env
        buttons = env.unwrapped.buttons
        pressed = {buttons[i] for i in np.flatnonzero(disc.action(9))}
        assert pressed == {"LEFT", "A", "B"}


def test_raw_buttons_are_float_multibinary():
    from wrappers.profile import system_buttons

    right = system_buttons("SuperMarioBros-Nes").index("RIGHT")
    with make_env(smb_spec(actions="buttons", frame_stack=1, stuck_frames=None)) as env:
        assert env.action_space.dtype == np.float32 and env.action_space.n == 9
        env.reset()
        assert env.action_space.sample().dtype == np.float32
        # a policy's floats are buttons pressed above 0.5: RIGHT at 0.4 is not pressed, at 0.6 it is
        action = np.zeros(9, np.float32)
        action[right] = 0.4
        for _ in range(20):
            _, _, _, _, info = env.step(action)
        assert info["progress"] == 0
        action[right] = 0.6
        for _ in range(20):
            _, reward, terminated, truncated, info = env.step(action)
        assert info["progress"] > 20 and reward > 0 and not (terminated or truncated)


def test_state_pool_draws_states_and_options_pick_one():
    spec = smb_spec(state=["Level1-1", "Level2-1", "Level3-1"], frame_stack=1)
    with make_env(spec, seed=1) as env:
        seen = {env.reset()[1]["state"] for _ in range(12)}
        assert seen == {"Level1-1", "Level2-1", "Level3-1"}
        assert env.reset(options={"state": "Level3-1"})[1]["state"] == "Level3-1"


def test_vectorized_builder_with_two_workers():
    from wrappers import make_vec_env

    venv = make_vec_env(smb_spec(stuck_frames=100), n_envs=2, seed=0)
    try:
        obs = venv.reset()
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        episodes = []
        for _ in range(60):
            obs, rew, dones, infos = venv.step(np.array([0, 0]))  # NOOP: both end by no progress
            for d, info in zip(dones, infos):
                if d:
                    episodes.append(info)
        assert len(episodes) >= 2
        assert all(i["episode"]["reason"] == "no_progress" and i["TimeLimit.truncated"] for i in episodes)
        assert episodes[0]["terminal_observation"].shape == (4, 84, 84)
        assert venv.get_attr("frame_skip") == [4, 4]
        assert venv.env_method("get_wrapper_attr", "labels")[1][4] == "RIGHT+A+B"
    finally:
        venv.close()


def test_play_command_films_random_play(tmp_path, capsys):
    from experiments.cli import main

    video = tmp_path / "play.mp4"
    assert main(["play", "SuperMarioBros-Nes", "--state", "Level1-1", "--profile", "smb", "--actions",
                 "right_only", "--frames", "400", "--video", str(video)]) == 0
    assert video.stat().st_size > 10_000 and video.read_bytes()[4:8] == b"ftyp"
    assert "played 400 frames" in " ".join(capsys.readouterr().out.split())


def test_an_env_that_raises_in_its_worker_is_reported_not_hung():
    from wrappers import EnvWorkerError, make_vec_env

    venv = make_vec_env(smb_spec(stuck_frames=None), n_envs=2, seed=0)
    try:
        venv.reset()
        t0 = time.perf_counter()
        with pytest.raises(EnvWorkerError, match=r"env 1 raised in its worker process: IndexError"):
            venv.step(np.array([0, 99]))  # env 1 (a worker process) has 5 actions: 99 raises there
        assert time.perf_counter() - t0 < 30
    finally:
        venv.close()


def test_a_killed_env_worker_is_reported_not_hung():
    from wrappers import EnvWorkerError, make_vec_env

    venv = make_vec_env(smb_spec(stuck_frames=None), n_envs=2, seed=0)
    try:
        venv.reset()
        os.kill(venv.processes[0].pid, signal.SIGKILL)
        t0 = time.perf_counter()
        with pytest.raises(EnvWorkerError, match="killed by SIGKILL"):
            for _ in range(100):
                venv.step(np.array([1, 1]))
        assert time.perf_counter() - t0 < 30
    finally:
        venv.close()


def test_play_with_raw_buttons_presses_every_button(tmp_path):
    """Random play on raw buttons samples each button (it once pressed only button 0 or nothing)."""
    import stable_retro

    from experiments.play import play_random

    spec = smb_spec(actions="buttons", stuck_frames=None, record_dir=str(tmp_path))
    play_random(spec, 400, seed=3)
    (bk2,) = tmp_path.glob("*.bk2")
    movie = stable_retro.Movie(str(bk2))
    pressed, combos = set(), set()
    while movie.step():
        keys = tuple(i for i in range(9) if movie.get_key(i, 0))
        pressed.update(keys)
        combos.add(keys)
    movie.close()
    # B, UP, DOWN, LEFT, RIGHT, A (SELECT and START are filtered by the integration), in many combinations
    assert {0, 4, 5, 6, 7, 8} <= pressed and len(combos) > 10


def test_play_without_a_profile_uses_the_games_own_or_its_scenario(tmp_path, capsys):
    from experiments.cli import main

    assert main(["play", "Breakout-Atari2600", "--frames", "600", "--video", str(tmp_path / "b.mp4")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "profile: scenario (reward and done from the game's scenario.json)" in out and "played 600 frames" in out
    assert main(["play", "Pong-Atari2600", "--frames", "200", "--video", str(tmp_path / "p.mp4")]) == 0
    assert "profile: pong" in capsys.readouterr().out
    # the scenario profile: every combination of the console's button groups, reward from scenario.json
    spec = EnvSpec(game="Breakout-Atari2600", profile="scenario", stuck_frames=None)
    with make_env(spec, seed=0) as env:
        assert env.action_space.n == 18
        env.reset()
        rewards = []
        for i in range(1500):
            _, r, terminated, truncated, info = env.step(i % 18)
            rewards.append(r)
            if terminated or truncated:
                break
        assert info["progress"] == max(np.cumsum(rewards).max(), 0.0)
        rate = env.get_wrapper_attr("screen_rate")()
    # the video plays at the console's own rate (59.92 frames/s on the 2600, not 60) over the frame skip
    import imageio.v3 as iio

    assert rate == pytest.approx(59.92, abs=0.01)
    assert iio.immeta(tmp_path / "b.mp4")["fps"] == pytest.approx(rate / spec.frame_skip, abs=0.006)


def test_the_fork_server_ignores_sigterm_and_the_trainer_keeps_its_handler():
    """`timeout` and schedulers SIGTERM the whole process group: the fork server that starts the env workers
    must outlive it (else every worker reads as dead), while the trainer's own handler stays in place."""
    import subprocess
    import sys
    from pathlib import Path

    code = """
import signal
from multiprocessing import forkserver
from wrappers.vec_env import worker_context
def handler(*_):
    pass
signal.signal(signal.SIGTERM, handler)
worker_context()
assert signal.getsignal(signal.SIGTERM) is handler
pid = forkserver._forkserver._forkserver_pid
ignored = int(next(l for l in open(f"/proc/{pid}/status") if l.startswith("SigIgn:")).split()[1], 16)
print("ignored" if ignored >> (signal.SIGTERM - 1) & 1 else "not ignored")
# a child of the server ignores SIGTERM too: terminate() leaves it, end_process() ends it
import time
from wrappers.vec_env import end_process
ctx = worker_context()
assert signal.getsignal(signal.SIGTERM) is handler
p = ctx.Process(target=time.sleep, args=(60,))
p.start()
p.terminate()
p.join(1)
assert p.is_alive()
end_process(p, timeout=1)
print("ended by", p.exitcode)
"""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["ignored", "ended by -9"], out.stdout
