"""What a new user sees: the training bar at 80 columns and with a time budget, the runs table, shipped
experiments by name, and configs found from an installed wheel."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from experiments.progress import TrainingBar
from experiments.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent


def _fake_run(frames: int = 20_000_000, minutes: float | None = None, generations: int | None = None):
    budget = SimpleNamespace(frames=frames, minutes=minutes, generations=generations)
    spec = SimpleNamespace(budget=budget, agent=SimpleNamespace(algo="neat"))
    return SimpleNamespace(dir=Path("runs/smb_neat/neat-s1-20261201-101500"), resumes=0, start_frames=0,
                           spec=spec, seed=1, last_eval=None, seconds_before=0.0)


def _render(width: int, **budget) -> tuple[TrainingBar, str]:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    bar = TrainingBar(console)
    bar.start_run(_fake_run(**budget))
    bar.update(0, {"fps": 0.0, "seconds": 0.0, "generation": 0})
    ev = {"frames": 1_000_000, "progress": 1838.0, "success_rate": 0.0}
    bar.update(1_234_567, {"fps": 4321.0, "seconds": 90.0, "generation": 12, "last_eval": ev})
    bar.progress.refresh()
    bar.stop()
    return bar, out.getvalue()


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_the_bar_fits_the_terminal_by_dropping_fields_not_cutting_them(width):
    bar, text = _render(width)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # cursor and erase codes take no columns
    last = [line for line in text.replace("\r", "\n").splitlines() if "frames" in line][-1]
    assert "…" not in text and len(last.rstrip()) <= width
    assert "1.23M frames" in last and "ETA" in last  # the two things kept longest
    if width >= 160:
        assert "eval@1M: progress 1838" in last and "fps" in last
    assert bar.line(30).startswith("1.23M frames")


def test_the_bar_follows_the_budget_that_binds():
    bar, _ = _render(100, minutes=5.0)
    frac, kind = bar.fraction()
    assert kind == "minutes" and frac == pytest.approx(90 / 300)
    assert bar.eta() == pytest.approx(210) and "of 5 min" in bar.line() and "ETA 3:30" in bar.line()
    bar, _ = _render(100, generations=40)
    assert bar.fraction() == (pytest.approx(12 / 40), "generations") and "gen 12/40" in bar.line()
    bar, _ = _render(100, frames=2_000_000, minutes=60.0)  # frames bind: 62% of frames, 2.5% of the time
    assert bar.fraction()[1] == "frames" and "of 2M" in bar.line()


def test_runs_table_keeps_the_run_folder_whole_at_80_columns(tmp_path, monkeypatch, capsys):
    import experiments.cli as cli
    from experiments.run import Run
    from experiments.spec import validate_spec

    spec = validate_spec({"name": "smb_neat", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
                          "agent": {"algo": "neat"}, "budget": {"frames": 20_000_000}}, "x")
    monkeypatch.chdir(tmp_path)
    for seed in (1, 2):
        Run.create(spec, seed, "runs").close("finished")
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=80, color_system=None))
    assert cli.main(["runs"]) == 0
    text = out.getvalue()
    names = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "runs" / "smb_neat").iterdir())
    for name in names:
        assert name in text
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80


def test_shipped_experiments_load_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout: the name is found among the installed configs
    spec = load_spec("smb_ppo")
    assert spec.name == "smb_ppo"
    # a user's own config folder wins over the shipped one
    mine = tmp_path / "mine"
    (mine / "experiments").mkdir(parents=True)
    (mine / "experiments" / "smb_ppo.yaml").write_text(
        (ROOT / "configs/experiments/smb_ppo.yaml").read_text().replace("name: smb_ppo", "name: my_smb_ppo"))
    monkeypatch.setenv("RETRODOJO_CONFIGS", str(mine))
    assert load_spec("smb_ppo").name == "my_smb_ppo"


def test_the_cli_docstring_names_every_command():
    import argparse

    from experiments import cli

    def commands(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, f"{prefix} {name}")
                return
        yield prefix

    names = list(commands(cli.build_parser(), "retrodojo"))
    assert "retrodojo states make" in names and "retrodojo tune" in names
    missing = [n for n in names if n not in cli.__doc__]
    assert not missing, f"experiments/cli.py's docstring does not show {missing}"


def test_an_experiment_can_use_the_games_own_scenario():
    from experiments.spec import validate_spec
    from wrappers import make_env

    spec = validate_spec({"name": "pong", "game": "Pong-Atari2600", "profile": "scenario", "agent": {"algo": "ppo"},
                          "budget": {"frames": 1000}, "env": {"stuck_frames": None, "frame_stack": 1}}, "x")
    # the env it trains on takes reward and done from Pong's scenario.json: -1 a point conceded, the game
    # over when one side passes 20. A paddle that never moves concedes all 21 points.
    with make_env(spec.env_spec(), seed=0) as env:
        assert env.action_space.n == 18  # every combination of the 2600's button groups
        env.reset()
        data = env.unwrapped.data
        for _ in range(5000):
            _, reward, terminated, truncated, info = env.step(0)
            if terminated or truncated:
                break
        assert terminated and info["reason"] == "scenario"
        assert (data.lookup_value("score1"), data.lookup_value("score2")) == (21, 0)
        assert info["episode"]["r"] == -21.0 and info["episode"]["terms"] == {"scenario": -21.0}


@pytest.mark.slow
def test_an_installed_wheel_finds_its_profiles_and_neat_configs(tmp_path):
    """A plain (non-editable) install: the shipped configs travel as package data."""
    src, wheels = tmp_path / "src", tmp_path / "wheels"
    # built from a copy: setuptools writes build/ and egg-info beside the sources
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "docs", "tests",
                                                             "*.egg-info", "__pycache__", ".*cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(src)], check=True, cwd=tmp_path, timeout=300)
    (wheel,) = wheels.glob("retrodojo-*.whl")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    probe = (
        "import wrappers, agents.neat_config as nc, wrappers.profile as wp, experiments.spec as es\n"
        "assert str(wrappers.__file__).startswith(SITE), wrappers.__file__\n"
        "p = wp.load_profile('smb')\n"
        "assert p.path.startswith(SITE), p.path\n"
        "cfg, _ = nc.load_neat_config('smb', 10, 3)\n"
        "assert cfg.pop_size == 100 and str(nc.config_path('smb')).startswith(SITE)\n"
        "assert es.load_spec('smb_neat', require_rom=False).agent.algo == 'neat'\n"
        "print('ok', len(wp.available_profiles()))\n"
    ).replace("SITE", repr(str(site)))
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr
