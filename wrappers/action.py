"""Action wrappers: named button-combination sets (with move macros), and raw buttons that SB3 can learn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


class MaskSequence(tuple):
    """A move macro as the emulator runs it: ((button mask, frames), ...), played to the end in one agent
    step by :class:`wrappers.retro_game.RetroGame`."""

    __slots__ = ()


@dataclass(frozen=True)
class ActionSet:
    """A named action set, ready to play: one label per action, the mask of each plain combination, and
    for each macro its steps (and the steps mirrored, LEFT and RIGHT swapped, or None)."""

    labels: list[str]
    masks: np.ndarray
    macros: list[tuple | None]
    mirrored: list[tuple | None]

    @property
    def has_macros(self) -> bool:
        """Whether any action is a macro."""
        return any(m is not None for m in self.macros)


class Discretizer(gym.ActionWrapper):
    """Map ``Discrete(n)`` actions to the button masks (or move macros) of a named action set.

    Args:
        env: an env whose action space is ``MultiBinary(n_buttons)`` (e.g. :class:`RetroGame`).
        masks: array (n_actions, n_buttons) of 0/1, one row per action.
        labels: a readable name per action (``RIGHT+A``, ``hadouken``), kept for logs and videos.
        macros: per action, None (the mask is held for the frame skip) or a macro's ((mask, frames), ...).
        mirrored: per action, the macro with LEFT and RIGHT swapped (or None: never mirrored).
        facing_left: called at each step when a mirrored macro is chosen: True plays the mirrored one.

    Example:
        >>> masks, labels = action_masks(load_profile("smb"), "right_only")  # doctest: +SKIP
        >>> env = Discretizer(env, masks, labels)                            # doctest: +SKIP
    """

    def __init__(self, env: gym.Env, masks: np.ndarray, labels: list[str] | None = None,
                 macros: list[tuple | None] | None = None, mirrored: list[tuple | None] | None = None,
                 facing_left: Callable[[], bool] | None = None):
        if not isinstance(env.action_space, gym.spaces.MultiBinary):
            raise TypeError(f"Discretizer requires a MultiBinary action space, got {env.action_space}")
        masks = np.asarray(masks, np.uint8)
        if masks.ndim != 2 or masks.shape[1] != env.action_space.n:
            raise ValueError(f"Discretizer masks must be (n_actions, {env.action_space.n}), got {masks.shape}")
        super().__init__(env)
        self.masks = masks
        # One array per action, built once: RetroGame caches its filtered mask by the array's bytes.
        self._rows: list = [m.copy() for m in masks]
        self._mirrored: list = [None] * len(masks)
        for i, macro in enumerate(macros or []):
            if macro is not None:
                self._rows[i] = MaskSequence(macro)
                if mirrored and mirrored[i] is not None and facing_left is not None:
                    self._mirrored[i] = MaskSequence(mirrored[i])
        self._facing_left = facing_left
        self.labels = labels or [str(i) for i in range(len(masks))]
        self.action_space = gym.spaces.Discrete(len(masks))

    @classmethod
    def from_action_set(cls, env: gym.Env, actions: ActionSet,
                        facing_left: Callable[[], bool] | None = None) -> Discretizer:
        """A Discretizer for an :class:`ActionSet` (see :func:`wrappers.profile.action_set`)."""
        return cls(env, actions.masks, actions.labels, actions.macros, actions.mirrored, facing_left)

    def nearest(self, held) -> int:
        """The plain action (not a macro) closest to the buttons a person holds (a 0/1 mask): most of its
        buttons held, a button it presses but nobody holds counting twice against it; ties go to the
        earlier action (a set's NOOP comes first)."""
        held = np.asarray(held, bool)
        best, best_score = 0, None
        for i, row in enumerate(self.masks.astype(bool)):
            if isinstance(self._rows[i], MaskSequence):
                continue
            score = int((row & held).sum()) - 2 * int((row & ~held).sum())
            if best_score is None or score > best_score:
                best, best_score = i, score
        return best

    def action(self, action):
        """Return the button mask (or macro) of a discrete action, mirrored when the fighter faces left."""
        a = int(action)
        mirrored = self._mirrored[a]
        if mirrored is not None and self._facing_left():
            return mirrored
        return self._rows[a]


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
