"""Shared fixtures: a private ROM store with the bundled ROMs, and env helpers.

stable-retro allows one emulator per process: every test that makes an env closes it (``with``), and
anything needing two at once uses worker processes.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

DATA = Path(__file__).parent / "data"

# CI (.ci/run sets CI) fuzzes the same examples on every clean clone, so a red run is one a rerun shows again;
# other runs draw new examples, and Hypothesis keeps any failing one in .hypothesis/ to replay
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session", autouse=True)
def rom_store(tmp_path_factory) -> Path:
    """Point RETRODOJO_HOME at a fresh folder and register the bundled ROMs there, once per session."""
    home = tmp_path_factory.mktemp("retrodojo_home")
    os.environ["RETRODOJO_HOME"] = str(home)
    from wrappers import roms

    roms.import_bundled()
    return home / "roms"


@pytest.fixture
def smb_run() -> list[int]:
    """The scripted right_only action sequence that reaches the flag of SMB 1-1 (see scripts/)."""
    return [int(c) for c in (DATA / "smb_level1-1_run.txt").read_text().strip()]


def smb_spec(**kw):
    """An SMB 1-1 env spec with the smb profile; keyword arguments override fields."""
    from wrappers import EnvSpec

    base = dict(game="SuperMarioBros-Nes", state="Level1-1", profile="smb", actions="right_only")
    base.update(kw)
    return EnvSpec(**base)


def one_run(runs: Path) -> Path:
    """The single run folder under a runs dir."""
    (run,) = [p.parent for p in runs.glob("*/*/meta.json")]
    return run


def meta(run: Path) -> dict:
    """A run's meta.json."""
    return json.loads((run / "meta.json").read_text())


def tb_scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar as TensorBoard shows it (purged events dropped)."""
    from experiments.run import read_scalars

    return read_scalars(run, tag)

def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc: the env workers are children of the forkserver)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tiny_neat_experiment(path: Path, name: str, generations: int = 2, seed: int = 2) -> Path:
    """A NEAT experiment of a few tiny generations on 1-1's tile grid (pop 6, 2 workers), written to ``path``."""
    import yaml

    path.write_text(yaml.safe_dump({
        "name": name, "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 120},
        "agent": {"algo": "neat", "config": "smb", "pop_size": 6, "workers": 2, "last_action": True},
        "budget": {"frames": 10_000_000, "generations": generations}, "seeds": [seed],
        "eval": {"every_frames": 10**9, "episodes": 1}}))
    return path


def load_script(path: str):
    """A script of the repository (``scripts/record_run.py``, ``benchmarks/atari_parity.py``) as a module:
    they are run as files, not imported as packages."""
    file = Path(__file__).resolve().parents[1] / path
    spec = importlib.util.spec_from_file_location(file.stem, file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
