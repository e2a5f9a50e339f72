"""Super Mario Bros' tile grid from RAM, as an observation (``env.obs: tiles``), usable by any agent.

MarI/O saw the level as a grid of tiles rather than pixels. SMB keeps the tiles of the two screens around
the scroll position in RAM (0x0500-0x069F: 2 pages x 13 rows x 16 columns, 16 px tiles, the top row at
y=32), Mario's level position at 0x006D/0x0086 (x) and 0x03B8 (y), and up to five enemies (drawn flag
0x000F+i, x 0x006E+i/0x0087+i, y 0x00CF+i). The grid here is centred on Mario, as MarI/O's was: 13 rows
(6 above him, 6 below) by 16 columns (3 behind, 12 ahead), so an input always means the same place
relative to Mario: "a wall just ahead" is the same cells on a pipe, a step or in a valley. Values: 0 empty
(and outside the level), 1 a block (ground, pipe, brick, ...), -1 an enemy. Mario is the centre row of
column 3.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ROWS, COLS, BEHIND, ABOVE = 13, 16, 3, 6
LEVEL_ROWS = 13
_TILES = slice(0x100, 0x2A0)  # 0x0500-0x069F within the RAM block at 0x0400


class SmbTiles(gym.ObservationWrapper):
    """Replace the screen with SMB's tile grid around Mario: a (1, 13, 16) float32 observation.

    Reads two RAM blocks per step (no ``update_ram``), a few microseconds; the pixels below are ignored.

    Example:
        >>> env = SmbTiles(env)  # doctest: +SKIP
        >>> env.observation_space.shape
        (1, 13, 16)
    """

    def __init__(self, env: gym.Env):
        if not hasattr(env.unwrapped, "data") or not env.unwrapped.gamename.startswith("SuperMarioBros-Nes"):
            raise TypeError("SmbTiles reads Super Mario Bros' RAM: it needs a SuperMarioBros-Nes RetroEnv")
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1, ROWS, COLS), np.float32)
        self._cols = np.arange(COLS) - BEHIND
        self._rows = np.arange(ROWS)[:, None]

    def grid(self) -> np.ndarray:
        """The current (13, 16) grid around Mario."""
        blocks = self.env.unwrapped.data.memory.blocks
        low = np.frombuffer(blocks[0], np.uint8)
        high = np.frombuffer(blocks[1024], np.uint8)
        tiles = high[_TILES].reshape(2, LEVEL_ROWS, 16)
        mario_x = int(low[0x6D]) * 256 + int(low[0x86])
        # Mario's y (0x03B8) is 16 px above the enemies' convention: +16, +8 to round, -32 for the HUD rows.
        top = (int(low[0x3B8]) - 8) // 16 - ABOVE  # level row of the window's first row
        col = (mario_x + 8) // 16 + self._cols  # level tile columns of the window
        page, sub = (col // 16) % 2, col % 16
        rows = top + self._rows
        inside = (rows >= 0) & (rows < LEVEL_ROWS)
        out = (tiles[page[None, :], np.clip(rows, 0, LEVEL_ROWS - 1), sub[None, :]] != 0) & inside
        out = out.astype(np.float32)
        left = col[0]
        for i in range(5):
            if low[0x0F + i]:
                ex = (int(low[0x6E + i]) * 256 + int(low[0x87 + i]) + 8) // 16 - left
                ey = (int(low[0xCF + i]) + 8 - 32) // 16 - top
                if 0 <= ey < ROWS and 0 <= ex < COLS:
                    out[ey, ex] = -1.0
        return out

    def observation(self, observation):
        """The tile grid as (1, 13, 16)."""
        return self.grid()[None]
