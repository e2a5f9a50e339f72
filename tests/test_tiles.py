"""SMB's tile grid from RAM: shapes through the stack, and the cells it must show on known frames."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import smb_spec

from wrappers import EnvError, EnvSpec, make_env
from wrappers.tiles import ABOVE, BEHIND, COLS, ROWS


def test_tiles_at_the_start_of_1_1_and_over_the_first_pipe(smb_run):
    with make_env(smb_spec(obs="tiles", frame_stack=2, stuck_frames=None)) as env:
        assert env.observation_space.shape == (2, ROWS, COLS) and env.observation_space.dtype == np.float32
        obs, _ = env.reset()
        grid = obs[-1]
        # Mario stands on the ground: the window is centred on him, ground right below, nothing above
        assert (grid[ABOVE + 1 : ABOVE + 3] == 1).all()
        assert not grid[: ABOVE + 1].any() and not grid[ABOVE + 3 :].any()  # below the level bottom: empty
        for a in smb_run[:105]:
            obs, *_ = env.step(a)
        grid = obs[-1]
        # the first pit, three tiles wide, a few tiles ahead in both ground rows; solid ground around it
        ground = grid[ABOVE + 1]
        assert (ground[: BEHIND + 7] == 1).all() and (ground[BEHIND + 7 : BEHIND + 10] == 0).all()
        assert (ground[BEHIND + 10 :] == 1).all() and (grid[ABOVE + 2] == ground).all()
        assert (grid == -1).any() and set(np.unique(grid)) <= {-1.0, 0.0, 1.0}  # a Goomba on the blocks above


def test_tiles_only_for_smb():
    with pytest.raises(EnvError, match="obs: tiles reads Super Mario Bros' RAM"):
        EnvSpec(game="Pong-Atari2600", profile="pong", obs="tiles").check()
