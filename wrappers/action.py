"""Action wrappers: named button-combination sets, and raw buttons that SB3 can learn."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Discretizer(gym.ActionWrapper):
    """Map ``Discrete(n)`` actions to the button masks of a named action set.

    Args:
        env: an env whose action space is ``MultiBinary(n_buttons)`` (e.g. :class:`RetroGame`).
        masks: array (n_actions, n_buttons) of 0/1, one row per action.
        labels: a readable name per action (``RIGHT+A``), kept for logs and videos.

    Example:
        >>> masks, labels = action_masks(load_profile("smb"), "right_only")  # doctest: +SKIP
        >>> env = Discretizer(env, masks, labels)                            # doctest: +SKIP
    """

    def __init__(self, env: gym.Env, masks: np.ndarray, labels: list[str] | None = None):
        if not isinstance(env.action_space, gym.spaces.MultiBinary):
            raise TypeError(f"Discretizer requires a MultiBinary action space, got {env.action_space}")
        masks = np.asarray(masks, np.uint8)
        if masks.ndim != 2 or masks.shape[1] != env.action_space.n:
            raise ValueError(f"Discretizer masks must be (n_actions, {env.action_space.n}), got {masks.shape}")
        super().__init__(env)
        self.masks = masks
        # One array per action, built once: RetroGame caches its filtered mask by the array's bytes.
        self._rows = [m.copy() for m in masks]
        self.labels = labels or [str(i) for i in range(len(masks))]
        self.action_space = gym.spaces.Discrete(len(masks))

    def action(self, action):
        """Return the button mask of a discrete action."""
        return self._rows[int(action)]


class FloatMultiBinary(gym.spaces.MultiBinary):
    """``MultiBinary`` with float32 samples.

    gymnasium's ``MultiBinary`` is int8, and SB3 stores actions in the space's dtype, so its Bernoulli
    log-prob fails ("result type Float can't be cast to the desired output type Char"). Same space, float.
    """

    def __init__(self, n: int, seed=None):
        super().__init__(n, seed=seed)
        self.dtype = np.dtype(np.float32)

    def sample(self, mask=None, probability=None) -> np.ndarray:
        """Sample buttons as float32 0/1."""
        return self.np_random.integers(0, 2, size=self.shape).astype(np.float32)


class ButtonActions(gym.ActionWrapper):
    """Raw buttons for learners: a float32 ``MultiBinary`` outside, 0/1 uint8 masks inside."""

    def __init__(self, env: gym.Env):
        if not isinstance(env.action_space, gym.spaces.MultiBinary):
            raise TypeError(f"ButtonActions requires a MultiBinary action space, got {env.action_space}")
        super().__init__(env)
        self.action_space = FloatMultiBinary(env.action_space.n)
        self.labels = None

    def action(self, action):
        """Threshold at 0.5 (policies may hand back floats) and return a uint8 mask."""
        return (np.asarray(action, np.float32) > 0.5).astype(np.uint8)
