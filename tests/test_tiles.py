"""SMB's tile grid from RAM: shapes through the stack, and the cells it must show on known frames."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import smb_spec

from wrappers.factory import EnvSpec, make_env, validate_spec
from wrappers.roms import RomError
from wrappers.tiles import BEHIND, COLS, ROWS


def test_tiles_at_the_start_of_1_1_and_over_the_first_pipe(smb_run):
    with make_env(smb_spec(obs="tiles", frame_stack=2, stuck_frames=None)) as env:
        assert env.observation_space.shape == (2, ROWS, COLS) and env.observation_space.dtype == np.float32
        obs, _ = env.reset()
        grid = obs[-1]
        assert (grid[11:] == 1).all()  # the two ground rows
        assert not grid[:9].any()  # open sky above Mario at the start
        assert grid[9, BEHIND] == 2  # Mario, standing on the ground, in his column
        assert set(np.unique(grid)) <= {0.0, 1.0, 2.0}
        for a in smb_run[:61]:
            obs, *_ = env.step(a)
        grid = obs[-1]
        assert (grid == 2).sum() == 1 and (grid == -1).any()  # Mario in the air over the pipe, Goombas ahead
        pipe = grid[7:11, BEHIND:BEHIND + 2]
        assert (pipe == 1).all(), grid  # the first pipe right under Mario


def test_tiles_only_for_smb():
    with pytest.raises(RomError, match="tiles reads Super Mario Bros' RAM"):
        validate_spec(EnvSpec(game="Pong-Atari2600", profile="pong", obs="tiles"))
