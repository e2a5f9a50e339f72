"""Observation wrappers: grayscale + resize with OpenCV, a channel-first frame stack, and RAM variables."""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np

# Each env runs in its own worker process; OpenCV's thread pool only adds contention there.
cv2.setNumThreads(1)


class GrayResize(gym.ObservationWrapper):
    """Convert RGB frames to grayscale and/or resize them with ``cv2.INTER_AREA``; output is (C, H, W).

    Channel-first output is what SB3's ``CnnPolicy`` expects, so no ``VecTransposeImage`` is needed.

    Args:
        env: an env with a (H, W, 3) uint8 Box observation space.
        shape: (height, width) after resizing, or None to keep the size.
        grayscale: convert to one channel (ITU-R 601 luma, as OpenCV and ALE do).

    Example:
        >>> env = GrayResize(env, (84, 84))  # doctest: +SKIP
        >>> env.observation_space.shape      # doctest: +SKIP
        (1, 84, 84)
    """

    def __init__(self, env: gym.Env, shape: tuple[int, int] | None = (84, 84), grayscale: bool = True):
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3 or space.shape[2] != 3:
            raise TypeError(f"GrayResize requires a (H, W, 3) Box observation space, got {space}")
        if shape is not None and (len(shape) != 2 or min(shape) <= 0):
            raise ValueError(f"GrayResize shape must be (height, width) > 0, got {shape}")
        super().__init__(env)
        self.size = None if shape is None else (int(shape[1]), int(shape[0]))  # cv2 wants (w, h)
        self.grayscale = grayscale
        h, w = (space.shape[0], space.shape[1]) if shape is None else tuple(shape)
        c = 1 if grayscale else 3
        self.observation_space = gym.spaces.Box(0, 255, (c, h, w), np.uint8)

    def observation(self, observation):
        """Return the (C, H, W) uint8 frame."""
        frame = observation
        if self.grayscale:
            frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if self.size is not None and (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        return frame[None] if self.grayscale else np.ascontiguousarray(frame.transpose(2, 0, 1))


class FrameStack(gym.ObservationWrapper):
    """Stack the last ``n`` (C, H, W) frames along the channel axis: (n*C, H, W), oldest first.

    At reset the first frame fills the stack. Written for channel-first frames because gymnasium's
    ``FrameStackObservation`` adds a new leading axis, giving (n, C, H, W), which CnnPolicy rejects.
    """

    def __init__(self, env: gym.Env, n: int):
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 3:
            raise TypeError(f"FrameStack requires a (C, H, W) Box observation space, got {space}")
        if n < 1:
            raise ValueError(f"FrameStack n must be >= 1, got {n}")
        super().__init__(env)
        self.n = n
        c, h, w = space.shape
        self.c = c
        self.observation_space = gym.spaces.Box(0, 255, (n * c, h, w), space.dtype)
        self._stack = np.zeros(self.observation_space.shape, space.dtype)

    def reset(self, **kwargs):
        """Reset and fill the stack with the first frame."""
        obs, info = self.env.reset(**kwargs)
        self._stack[:] = np.tile(obs, (self.n, 1, 1))
        return self._stack.copy(), info

    def observation(self, observation):
        """Shift in the newest frame; returns a fresh array (callers may keep it)."""
        self._stack[: -self.c] = self._stack[self.c :]
        self._stack[-self.c :] = observation
        return self._stack.copy()


class RamObservation(gym.ObservationWrapper):
    """The profile's ``observe`` variables (RAM values and fight signals), each scaled from its
    ``[low, high]`` to 0..1 and clipped, as a float32 vector; the last ``stack`` readings side by side.

    It reads what :class:`wrappers.stateful_reward.ProfileReward` below already read this step, so it
    costs no RAM access. With ``keep_pixels`` the observation is a dict: ``pixels`` (the frames below)
    and ``ram`` (for SB3's ``MultiInputPolicy``).

    Example:
        >>> env = RamObservation(env, {"health": (0, 176), "x": (0, 512)})  # doctest: +SKIP
        >>> env.observation_space.shape                                       # doctest: +SKIP
        (2,)
    """

    def __init__(self, env: gym.Env, ranges: dict[str, tuple[float, float]], stack: int = 1,
                 keep_pixels: bool = False):
        if not ranges:
            raise ValueError("RamObservation needs at least one variable (the profile's observe section)")
        if stack < 1:
            raise ValueError(f"RamObservation stack must be >= 1, got {stack}")
        super().__init__(env)
        self._tracker = env.get_wrapper_attr("tracker")
        self.names = list(ranges)
        self._low = np.array([lo for lo, _ in ranges.values()], np.float64)
        self._span = np.array([hi - lo for lo, hi in ranges.values()], np.float64)
        self.stack = stack
        self._buf = np.zeros((stack, len(ranges)), np.float32)
        ram = gym.spaces.Box(0.0, 1.0, (stack * len(ranges),), np.float32)
        self.keep_pixels = keep_pixels
        self.observation_space = gym.spaces.Dict({"pixels": env.observation_space, "ram": ram}) if keep_pixels \
            else ram

    def _vector(self) -> np.ndarray:
        v = self._tracker.last_values
        x = (np.array([v[n] for n in self.names], np.float64) - self._low) / self._span
        return np.clip(x, 0.0, 1.0).astype(np.float32)

    def reset(self, **kwargs):
        """Reset; the stack starts filled with the first reading."""
        obs, info = self.env.reset(**kwargs)
        self._buf[:] = self._vector()
        return self._pack(obs), info

    def observation(self, observation):
        """Shift in this step's reading."""
        self._buf[:-1] = self._buf[1:]
        self._buf[-1] = self._vector()
        return self._pack(observation)

    def _pack(self, pixels):
        ram = self._buf.ravel().copy()
        return {"pixels": pixels, "ram": ram} if self.keep_pixels else ram
