"""Windows without a window: --watch on a machine without a display, headless paths that never import a GUI
library, the keyboard's action and its keys files. The windows themselves are tested on a real X server in
test_watch_window.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import smb_spec

from experiments.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv", [["evaluate", "runs/none", "--watch"], ["replay", "none.bk2", "--watch"],
                                  ["train", "smb_ppo", "--watch"],
                                  ["play", "SuperMarioBros-Nes", "--keyboard"]])
def test_a_window_without_a_display_is_one_line_and_exit_2(argv, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no display" in err and "Traceback" not in err, err


def test_a_display_that_does_not_answer_is_one_line_and_exit_2(monkeypatch, capsys):
    pytest.importorskip("pygame", reason="needs pygame (pip install 'retrodojo[watch]')")
    monkeypatch.setenv("DISPLAY", ":987")  # no X server there: SDL must not fall back to drawing nowhere
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    assert main(["play", "SuperMarioBros-Nes", "--keyboard"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot open a window" in err and "DISPLAY=:987" in err, err


def test_a_window_tries_a_refused_display_again(monkeypatch):
    pg = pytest.importorskip("pygame", reason="needs pygame (pip install 'retrodojo[watch]')")
    from experiments.watch import Window

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # a display SDL always has, asked for by name
    real, calls = pg.display.init, []

    def refuse_once():
        calls.append(1)
        if len(calls) == 1:
            raise pg.error("x11 not available")
        real()

    monkeypatch.setattr(pg.display, "init", refuse_once)
    window = Window("retry", rate=60.0)
    try:
        assert len(calls) == 2 and pg.display.get_init()
    finally:
        window.close()


def test_headless_paths_import_no_gui_library(tmp_path):
    code = ("import sys\n"
            "from experiments.cli import main\n"
            f"assert main(['play', 'SuperMarioBros-Nes', '--frames', '80', '--video', {str(tmp_path / 'p.mp4')!r}]) "
            "== 0\n"
            "import experiments.watch, wrappers.tap\n"
            "print('GUI' if 'pygame' in sys.modules else 'headless')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "headless"
    assert (tmp_path / "p.mp4").stat().st_size > 0


def test_a_held_key_picks_the_nearest_action_of_a_named_set():
    from wrappers import make_env

    with make_env(smb_spec(actions="right_only")) as env:
        nearest, labels = env.get_wrapper_attr("nearest"), env.get_wrapper_attr("labels")
        buttons = list(env.unwrapped.buttons)

        def held(*names):
            return np.array([b in names for b in buttons], np.uint8)

        assert labels[nearest(held())] == "NOOP" and labels[nearest(held("RIGHT"))] == "RIGHT"
        assert labels[nearest(held("RIGHT", "A"))] == "RIGHT+A"
        assert labels[nearest(held("LEFT"))] == "NOOP"  # right_only has no LEFT: nothing it has is held
        assert labels[nearest(held("RIGHT", "DOWN"))] == "RIGHT"


def test_keys_files_rebind_buttons_and_say_every_problem(tmp_path):
    pytest.importorskip("pygame", reason="needs pygame (pip install 'retrodojo[watch]')")
    from experiments.errors import UserError
    from experiments.watch import key_bindings

    default = key_bindings("SuperMarioBros-Nes")
    assert default["RIGHT"] == ["right"] and default["A"] == ["x"] and default["START"] == ["return"]
    good = tmp_path / "keys.yaml"
    good.write_text("RIGHT: d\nA: [k, space]\nselect: null\n")
    mine = key_bindings("SuperMarioBros-Nes", good)
    assert mine["RIGHT"] == ["d"] and mine["A"] == ["k", "space"] and "SELECT" not in mine
    assert mine["LEFT"] == ["left"]  # what the file leaves out keeps the console's binding
    bad = tmp_path / "bad.yaml"
    bad.write_text("RIGHT: dd\nC: x\nSTART: f1\n")
    with pytest.raises(UserError) as e:
        key_bindings("SuperMarioBros-Nes", bad)
    text = str(e.value)
    assert "RIGHT: unknown key 'dd'" in text and "C: not a Nes button" in text and "f1 stays the window's" in text
    assert main(["play", "SuperMarioBros-Nes", "--keys", str(good)]) == 2  # --keys goes with --keyboard


def test_a_feed_carries_the_newest_frame_only_while_a_window_reads_it():
    import pickle

    from wrappers import make_env
    from wrappers.tap import CLOSED, OPEN, FeedSink, FrameFeed, Tap

    feed = FrameFeed.create()
    try:
        other = pickle.loads(pickle.dumps(feed))  # what a worker or the window's process attaches to
        assert other.name == feed.name and other.read() is None
        with make_env(smb_spec()) as env:
            tap = Tap(env, FeedSink(feed, "env 0 of 1"), every_frame=False)
            tap.reset()
            tap.step(1)
            assert feed.read() is None  # no window yet: nothing is copied
            other.set_viewer(OPEN)
            for _ in range(3):
                tap.step(1)
                time.sleep(0.02)  # past the 60-a-second limit
            seq, picture, lines = other.read()
            assert np.array_equal(picture, env.get_wrapper_attr("screen")())
            assert lines[0] == "env 0 of 1, episode 1, state Level1-1" and lines[2] == "action RIGHT"
            assert other.read(seq) is None  # nothing newer
            other.set_viewer(CLOSED)
            tap.step(1)
            assert other.read(seq) is None  # closed: nothing more is copied
        other.release()
    finally:
        feed.release()
        feed.unlink()
