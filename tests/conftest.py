"""Shared fixtures: a private ROM store with the bundled ROMs, and env helpers.

stable-retro allows one emulator per process: every test that makes an env closes it (``with``), and
anything needing two at once uses worker processes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


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
