"""Windows on a real X server (Xvfb): evaluate, replay and train --watch, and play --keyboard.

Each window runs in a CLI process of its own; keys go to it through xdotool (the X server's XTEST input,
as a keyboard's would), and what it shows is read back from Xvfb's own framebuffer (``-fbdir``) and
compared with the emulator's frames, scaled. Without Xvfb, xdotool or pygame the module skips, in one line.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import descendants, meta, one_run, smb_spec, tiny_neat_experiment

from experiments.cli import main
from wrappers import roms

try:
    import pygame  # noqa: F401

    _MISSING = [t for t in ("Xvfb", "xdotool") if shutil.which(t) is None]
except ImportError:
    _MISSING = ["pygame (pip install 'retrodojo[watch]')"]
if _MISSING:
    pytest.skip(f"window tests need {' and '.join(_MISSING)}: apt-get install xvfb xdotool (README, 'Set up and "
                "run')", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
SCALE = 3


def read_xwd(path: Path) -> np.ndarray:
    """An RGB picture of an XWD file (what Xvfb's -fbdir keeps of its screen, updated as it draws)."""
    raw = path.read_bytes()
    h = struct.unpack(">25I", raw[:100])
    header_size, width, height, byte_order, bits, line = h[0], h[4], h[5], h[7], h[11], h[12]
    assert bits == 32, f"a {bits}-bit framebuffer; start Xvfb with -screen 0 WxHx24"
    px = np.frombuffer(raw, "<u4" if byte_order == 0 else ">u4", count=line // 4 * height,
                       offset=header_size + h[19] * 12).reshape(height, line // 4)[:, :width]
    return np.stack([((px & m) >> ((m & -m).bit_length() - 1)).astype(np.uint8) for m in h[14:17]], -1)


@pytest.fixture(scope="module")
def xserver(tmp_path_factory):
    """An Xvfb of its own (a free display number, picked by Xvfb), 24-bit, its screen kept in a file."""
    fbdir = tmp_path_factory.mktemp("xvfb")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1600x1200x24", "-fbdir", str(fbdir),
                             "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        display = f":{f.readline().strip()}"
    yield {"display": display, "screen": fbdir / "Xvfb_screen0"}
    proc.terminate()
    proc.wait(timeout=10)




class Shown:
    """A retrodojo command with a window under Xvfb: its window, keys, screenshots and end."""

    def __init__(self, xserver, args: list[str], **env):
        self.x = xserver
        self.env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "SDL_AUDIODRIVER")}
        self.env.update(DISPLAY=xserver["display"], PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get(
            "PYTHONPATH", "")]), **env)
        self.proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", *args], env=self.env, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.wid = None

    def xdo(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=30).stdout

    def windows(self) -> list[str]:
        """The visible windows of the command and its child processes (a training window has its own)."""
        pids = [self.proc.pid, *descendants(self.proc.pid)]
        return [w for p in pids for w in self.xdo("search", "--onlyvisible", "--pid", str(p)).split()]

    def window(self, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.windows()
            if found:
                self.wid = found[0]
                self.xdo("mousemove", "--window", self.wid, "5", "5")
                self.xdo("windowfocus", self.wid)
                return self.wid
            if self.proc.poll() is not None:
                pytest.fail(f"the command ended without a window: {self.proc.stdout.read()}")
            time.sleep(0.3)
        self.kill()
        pytest.fail(f"no window within {timeout} s")

    def key(self, *keys: str) -> None:
        for k in keys:
            self.xdo("key", k)
            time.sleep(0.15)

    def screenshot(self) -> np.ndarray:
        """The window as the X server has it now (found again: a window that changed size may be a new one)."""
        self.wid = next(iter(self.windows()), self.wid)
        geo = dict(line.split("=") for line in self.xdo("getwindowgeometry", "--shell", self.wid).split())
        x, y, w, h = (int(geo[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        return read_xwd(self.x["screen"])[y:y + h, x:x + w]

    def picture(self, frame_shape) -> np.ndarray:
        """The part of the window that shows the game (its top left, the frame's size times the scale)."""
        h, w = frame_shape[:2]
        return self.screenshot()[:h * SCALE, :w * SCALE]

    def shows(self, frame: np.ndarray, timeout: float = 15) -> bool:
        """Whether the window comes to show ``frame``, scaled (nearest neighbour), within ``timeout``."""
        big = frame.repeat(SCALE, 0).repeat(SCALE, 1)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if np.array_equal(self.picture(frame.shape), big):
                return True
            time.sleep(0.1)
        return False

    def end(self, timeout: float = 180) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running after {timeout} s")
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def sky_share(picture: np.ndarray, level_start: np.ndarray) -> float:
    """How much of a picture is SMB 1-1's sky blue (the colour Level1-1's first frame has most of)."""
    colours, counts = np.unique(level_start.reshape(-1, 3), axis=0, return_counts=True)
    return float((picture == colours[counts.argmax()]).all(-1).mean())


@pytest.fixture(scope="module")
def level_start() -> np.ndarray:
    """Level1-1's first frame as the emulator draws it (the screen after reset)."""
    from wrappers import make_env

    with make_env(smb_spec()) as env:
        env.reset()
        return env.get_wrapper_attr("screen")().copy()


@pytest.fixture(scope="module")
def movie(tmp_path_factory, smb_actions) -> tuple[Path, list[np.ndarray]]:
    """A .bk2 of 60 scripted steps on 1-1 (240 frames), and the frames its replay shows, in order."""
    from experiments.replay import movie_env, movie_steps
    from wrappers import make_env

    path = tmp_path_factory.mktemp("movie") / "run.bk2"
    with make_env(smb_spec()) as env:
        env.get_wrapper_attr("record_next")(str(path))
        env.reset()
        for a in smb_actions[:60]:
            env.step(a)
    frames = []
    with movie_env(path, render=True) as (mv, env):
        frames.append(env.render().copy())
        for _ in movie_steps(mv, env):
            frames.append(env.render().copy())
    return path, frames


@pytest.fixture(scope="module")
def smb_actions() -> list[int]:
    return [int(c) for c in (Path(__file__).parent / "data" / "smb_level1-1_run.txt").read_text().strip()]


@pytest.mark.slow
def test_replay_watch_pauses_steps_speeds_up_and_quits(xserver, movie):
    path, frames = movie
    shown = Shown(xserver, ["replay", str(path), "--watch", "--paused"])
    shown.window()
    assert shown.shows(frames[0]), "the paused window does not show the movie's first frame"
    for k in (1, 2, 3):  # each step key shows the next emulator frame, and no other
        shown.key("period")
        assert shown.shows(frames[k]), f"after {k} steps the window does not show frame {k}"
    time.sleep(1.0)
    assert shown.shows(frames[3], timeout=1), "a paused window moved on by itself"
    shown.key("space")  # play at 1x for a second: about 60 frames of the movie's 241
    time.sleep(1.0)
    shown.key("q")
    rc, out = shown.end()
    assert rc == 0, out
    played = int(out.split("frames shown")[0].split()[-1].replace(",", ""))
    # space played on (about 60 frames a second; q while paused would show 4), q stopped it before the end
    assert 10 <= played < len(frames) - 1 and "(window closed)" in out, out
    assert shown.windows() == []
    # as fast as possible ("0"), the movie plays to its end in less than the 4 s 1x takes, and the window closes
    shown = Shown(xserver, ["replay", str(path), "--watch", "--paused"], SDL_AUDIODRIVER="dummy")
    shown.window()
    shown.key("0")
    t0 = time.monotonic()
    shown.key("space")
    while shown.windows() and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    took = time.monotonic() - t0
    rc, out = shown.end()
    assert rc == 0 and f"{len(frames) - 1} frames shown" in out and "(window closed)" not in out, out
    assert took < (len(frames) - 1) / 60 / 2, f"{took:.2f} s: played at 1x or 2x, not as fast as possible"
    assert "sound on" in out, out  # SDL's dummy driver is an audio device: the sound path ran


@pytest.fixture(scope="module")
def neat_run(tmp_path_factory) -> Path:
    """A NEAT run of two tiny generations on 1-1's tile grid, trained headless."""
    tmp = tmp_path_factory.mktemp("watch_neat")
    exp = tiny_neat_experiment(tmp / "w.yaml", "wn")
    assert main(["train", str(exp), "--runs-dir", str(tmp / "runs")]) == 0
    return one_run(tmp / "runs")


class Recorder:
    """What an evaluation shows a window, kept instead of drawn: the expected frames."""

    rate, header, quit, next_episode = 60.0, "", False, False

    def __init__(self, count: int):
        self.count, self.frames = count, []

    def frame(self, picture):
        self.frames.append(picture.copy())
        self.quit = len(self.frames) >= self.count

    def status(self, s):
        pass


@pytest.mark.slow
def test_evaluate_watch_shows_the_policys_episode_frame_by_frame(xserver, neat_run, level_start):
    import agents.base as agents
    from experiments.evaluate import Evaluator
    from experiments.run import pick_agent

    spec, agent_dir, _ = pick_agent(neat_run)
    agent = agents.load(agent_dir)
    ev = Evaluator(agent.env_spec.model_copy(update={"state": ["Level1-1"]}), 1, ["Level1-1"], local=True)
    try:
        expected = Recorder(6)
        ev.run(agent.policy(), window=expected)
    finally:
        ev.close()
    assert np.array_equal(expected.frames[0], level_start)

    shown = Shown(xserver, ["evaluate", str(neat_run), "--watch", "--paused", "--episodes", "2"])
    shown.window()
    assert shown.shows(level_start), "the paused window does not show the episode's first frame"
    for k in (1, 2, 3, 4):
        shown.key("period")
        assert shown.shows(expected.frames[k]), f"after {k} steps the window does not show the policy's frame {k}"
    shown.key("n")  # the next episode starts, paused, from Level1-1 again
    assert shown.shows(level_start)
    shown.key("space")
    end, start = time.monotonic() + 15, level_start.repeat(SCALE, 0).repeat(SCALE, 1)
    while np.array_equal(shown.picture(level_start.shape), start) and time.monotonic() < end:
        time.sleep(0.2)
    assert not np.array_equal(shown.picture(level_start.shape), start), "space did not play the episode on"
    shown.key("q")
    rc, out = shown.end()
    assert rc == 0, out
    assert "episode 0: skipped in the window" in out and "nothing to report" in out, out
    assert not (neat_run / "eval" / "results.json").exists()


def _experiment(tmp: Path, algo: str) -> Path:
    agent = {"algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 32, "batch_size": 32, "n_epochs": 1}} \
        if algo == "ppo" else {"algo": "neat", "config": "smb", "pop_size": 6, "workers": 2, "last_action": True}
    env = {"actions": "right_only", "stuck_frames": 300} if algo == "ppo" else \
        {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 300}
    path = tmp / f"{algo}.yaml"
    path.write_text(yaml.safe_dump({
        "name": f"watch_{algo}", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb", "env": env,
        "agent": agent, "budget": {"frames": 10**9, "minutes": 0.75}, "seeds": [1],
        "eval": {"every_frames": 10**9, "episodes": 1}}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "neat"])
def test_train_watch_shows_env_0_live_and_closing_it_leaves_training(xserver, tmp_path, algo, level_start):
    runs = tmp_path / "runs"
    started = time.monotonic()
    shown = Shown(xserver, ["train", str(_experiment(tmp_path, algo)), "--runs-dir", str(runs), "--watch"])
    shown.window()
    # the window comes to show the game (mostly 1-1's sky) and moves on by itself, at training speed
    end, pictures = time.monotonic() + 60, []
    while time.monotonic() < end and len(pictures) < 2:
        picture = shown.picture(level_start.shape)
        if sky_share(picture, level_start) > 0.3 and not any(np.array_equal(picture, p) for p in pictures):
            pictures.append(picture)
        time.sleep(0.2)
    assert len(pictures) == 2, "the training window did not show the game moving"
    shown.key("q")
    end = time.monotonic() + 15
    while shown.windows() and time.monotonic() < end:
        time.sleep(0.2)
    assert shown.windows() == [], "q did not close the window"
    # the run's 45-second clock starts after the process does: a window closed sooner closed on a live run
    assert time.monotonic() - started < 45, "the window closed after the run's time budget: nothing was tested"
    rc, out = shown.end()
    assert rc == 0, out
    m = meta(one_run(runs))
    # closing the window did not stop the run: it trained on to its time budget
    assert m["status"] == "finished" and m["frames"] > 0, m
    assert m.get("end_message") == "time budget of 0.75 min reached" and m["train_seconds"] >= 45, m


@pytest.mark.slow
def test_play_keyboard_moves_mario_saves_a_state_and_records_a_movie(xserver, tmp_path, level_start, capsys):
    from experiments.replay import movie_env, movie_steps
    from wrappers import make_env

    movie = tmp_path / "kb.bk2"
    shown = Shown(xserver, ["play", "SuperMarioBros-Nes", "--state", "Level1-1", "--keyboard", "--save-as",
                            "watchtest", "--bk2", str(movie), "--agent-view"])
    shown.window()
    end = time.monotonic() + 20
    while sky_share(shown.picture(level_start.shape), level_start) < 0.5 and time.monotonic() < end:
        time.sleep(0.1)
    assert sky_share(shown.picture(level_start.shape), level_start) > 0.5, "the play window does not show 1-1"
    shown.xdo("keydown", "Right")
    time.sleep(2.0)
    shown.xdo("keyup", "Right")
    shown.key("F12")  # pause: the window holds the frame the emulator is at
    # 1-1's clock changes every 24 frames (0.4 s): a game still running never shows one picture 0.5 s apart
    end, paused, held = time.monotonic() + 15, None, False
    while not held and time.monotonic() < end:
        before = shown.picture(level_start.shape)
        time.sleep(0.5)
        paused = shown.picture(level_start.shape)
        held = np.array_equal(before, paused)
    assert held, "F12 did not pause"
    shown.key("F1")
    state_file = roms.store_dir() / roms.canonical_game("SuperMarioBros-Nes") / "watchtest-1.state"
    end = time.monotonic() + 10
    while not state_file.is_file() and time.monotonic() < end:
        time.sleep(0.1)
    shown.key("Escape")
    rc, out = shown.end()
    assert rc == 0 and "saved state watchtest-1" in out, out
    # the state is listed with the game's own, and Mario stands right of where 1-1 starts him (x 40)
    assert main(["roms", "list", "--json"]) == 0
    smb = next(r for r in json.loads(capsys.readouterr().out) if r["game"] == "SuperMarioBros-Nes")
    assert "watchtest-1" in smb["states"]
    with make_env(smb_spec(state="watchtest-1")) as env:
        env.reset()
        data = env.unwrapped.data
        assert 256 * data.lookup_value("player_page") + data.lookup_value("player_x") > 60
    # the movie replays to the frame the window held, and to the state the F-key saved
    with movie_env(movie, render=True) as (mv, env):
        frames = 0
        for frames in movie_steps(mv, env):  # noqa: B007
            pass
        assert frames > 60
        assert np.array_equal(env.render().repeat(SCALE, 0).repeat(SCALE, 1), paused)
        ram = env.unwrapped.get_ram().copy()
        env.unwrapped.em.set_state(gzip.decompress(state_file.read_bytes()))
        assert np.array_equal(env.unwrapped.get_ram(), ram)
    # and training starts from it
    exp = tmp_path / "from_state.yaml"
    exp.write_text(yaml.safe_dump({
        "name": "from_state", "game": "SuperMarioBros-Nes", "state": "watchtest-1", "profile": "smb",
        "env": {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 60},
        "agent": {"algo": "neat", "config": "smb", "pop_size": 2, "workers": 1},
        "budget": {"frames": 10**9, "generations": 1}, "seeds": [1], "eval": {"every_frames": 10**9, "episodes": 1}}))
    assert main(["train", str(exp), "--runs-dir", str(tmp_path / "runs")]) == 0
    run = one_run(tmp_path / "runs")
    history = [json.loads(line) for line in (run / "eval" / "history.jsonl").read_text().splitlines()]
    assert meta(run)["status"] == "finished" and history[-1]["episodes"][0]["state"] == "watchtest-1"
