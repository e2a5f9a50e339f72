"""Super Mario Bros' tile grid from RAM, as an observation (``env.obs: tiles``), usable by any agent.

MarI/O saw the level as a grid of tiles rather than pixels. SMB keeps the tiles of the two screens around
the scroll position in RAM (0x0500-0x069F: 2 pages x 13 rows x 16 columns, 16 px tiles, the top row at
y=32), Mario's level position at 0x006D/0x0086 (x) and 0x03B8 (y), and up to five enemies (drawn flag
0x000F+i, x 0x006E+i/0x0087+i, y 0x00CF+i). The grid here is 13 rows (the whole height) by 16 columns,
from 3 tiles behind Mario to 12 ahead, so the same input always means the same distance from Mario:
0 empty, 1 a block (ground, pipe, brick, ...), -1 an enemy, 2 Mario.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ROWS, COLS, BEHIND = 13, 16, 3
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
        self.observation_space = gym.spaces.Box(-1.0, 2.0, (1, ROWS, COLS), np.float32)
        self._cols = np.arange(COLS) - BEHIND
        self._rows = np.arange(ROWS)[:, None]

    def grid(self) -> np.ndarray:
        """The current (13, 16) grid."""
        blocks = self.env.unwrapped.data.memory.blocks
        low = np.frombuffer(blocks[0], np.uint8)
        high = np.frombuffer(blocks[1024], np.uint8)
        tiles = high[_TILES].reshape(2, ROWS, 16)
        mario_x = int(low[0x6D]) * 256 + int(low[0x86])
        mario_y = int(low[0x3B8])
        col = (mario_x + 8) // 16 + self._cols  # level tile columns of the window
        page, sub = (col // 16) % 2, col % 16
        out = (tiles[page[None, :], self._rows, sub[None, :]] != 0).astype(np.float32)
        left = col[0]
        for i in range(5):
            if low[0x0F + i]:
                ex = (int(low[0x6E + i]) * 256 + int(low[0x87 + i]) + 8) // 16 - left
                ey = (int(low[0xCF + i]) + 8 - 32) // 16
                if 0 <= ey < ROWS and 0 <= ex < COLS:
                    out[ey, ex] = -1.0
        my = (mario_y + 8 - 32) // 16
        if 0 <= my < ROWS:
            out[my, BEHIND] = 2.0
        return out

    def observation(self, observation):
        """The tile grid as (1, 13, 16)."""
        return self.grid()[None]
