"""What a window shows of an env, taken without a GUI library: a tap on the stack and a shared-memory feed.

:class:`Tap` sits on top of an env's wrapper stack and hands a *sink* the emulator's screen (every frame as it
is played, or once per agent step) and, after each step, what the episode has done so far: its shaped
return, progress, frames and the action chosen. A window in the same process is such a sink
(``experiments.watch``); so is a :class:`FeedSink`, which writes into a :class:`FrameFeed`.

A :class:`FrameFeed` is a one-slot mailbox in shared memory: the newest picture and a few lines of text of
an env that lives in one process (a vec env's env 0 in the trainer, NEAT's first worker), for a window in a
process of its own. The env never waits for the window: publishing is one copy of the screen, at most at
the display's rate and only while a window is open, and a window that was closed stops even that.
"""

from __future__ import annotations

import time
from multiprocessing import shared_memory

import gymnasium as gym
import numpy as np

#: The largest screen a feed carries (every console stable-retro emulates fits).
MAX_HEIGHT, MAX_WIDTH = 480, 640
_TEXT_BYTES = 2048
_HEADER = 8  # int64 slots: seq, height, width, viewer, ended, text length, spare, spare
WAITING, OPEN, CLOSED = 0, 1, 2


class Tap(gym.Wrapper):
    """Hand ``sink`` the pictures and the progress of the episode being played (see the module doc).

    Args:
        env: a stack made by :func:`wrappers.factory.make_env` (it has ``RetroGame`` and ``EpisodeStats``).
        sink: has ``frame(screen)`` and ``status(dict)``; the dict holds ``r`` (shaped return so far),
            ``progress``, ``frames``, ``steps``, ``state``, ``action`` (a label, or the buttons pressed) and
            ``ended`` (the ``info["episode"]`` record when the step ended the episode, else None).
        every_frame: hand over every emulator frame as it is played (a window at the console's rate);
            otherwise the screen at the end of each agent step (a window at training speed), and then only
            when the sink's ``due()`` (if it has one) says it wants one: no screen is copied for nothing.
    """

    def __init__(self, env: gym.Env, sink, every_frame: bool = True):
        super().__init__(env)
        self.sink = sink
        self.every_frame = every_frame
        self._screen = env.get_wrapper_attr("screen")
        self._running = env.get_wrapper_attr("running")
        self._buttons = list(env.unwrapped.buttons)
        try:
            self._labels = env.get_wrapper_attr("labels")
        except AttributeError:
            self._labels = None
        self._progress = 0.0
        self._due = getattr(sink, "due", None)
        if every_frame:
            env.get_wrapper_attr("set_frame_hook")(sink.frame)

    def action_label(self, action) -> str:
        """A readable name for an action: its label in a named set, or the buttons it presses."""
        if self._labels is not None and np.ndim(action) == 0:
            return str(self._labels[int(action)])
        pressed = [b for b, on in zip(self._buttons, np.asarray(action).ravel() > 0.5) if on and b]
        return "+".join(pressed) or "nothing"

    def _status(self, action, ended) -> dict:
        live = self._running()
        return {"r": float(live["r"]), "frames": int(live["frames"]), "steps": int(live["l"]),
                "state": live["state"], "progress": float(self._progress),
                "action": None if action is None else self.action_label(action), "ended": ended}

    def reset(self, **kwargs):
        """Reset; the sink gets the start picture and an empty episode."""
        obs, info = self.env.reset(**kwargs)
        self._progress = float(info.get("progress", 0.0))
        self.sink.frame(self._screen())
        self.sink.status(self._status(None, None))
        return obs, info

    def step(self, action):
        """Step; the sink gets the picture (unless it had every frame) and the episode so far."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not self.every_frame and (self._due is None or self._due()):
            self.sink.frame(self._screen())
        self._progress = float(info.get("progress", self._progress))
        self.sink.status(self._status(action, info.get("episode") if terminated or truncated else None))
        return obs, reward, terminated, truncated, info

    def detach(self) -> gym.Env:
        """Stop handing frames over; returns the env below, as it was before the tap."""
        if self.every_frame:
            self.env.get_wrapper_attr("set_frame_hook")(None)
        return self.env


class FrameFeed:
    """A one-slot shared-memory mailbox: the newest picture and text of an env, for a window elsewhere.

    The process that :meth:`create` s it owns it (and :meth:`unlink` s it); a feed pickles as its name, so
    a worker process or the window's process attaches to the same block. Reads are consistent without a
    lock: the writer makes the sequence number odd while it writes, and a reader copies until it sees the
    same even number before and after its copy.
    """

    def __init__(self, name: str, create: bool = False):
        size = _HEADER * 8 + MAX_HEIGHT * MAX_WIDTH * 3 + _TEXT_BYTES
        self._shm = shared_memory.SharedMemory(name=None if create else name, create=create, size=size)
        self.name = self._shm.name
        buf = self._shm.buf
        self._head = np.ndarray((_HEADER,), np.int64, buf, 0)
        self._pixels = np.ndarray((MAX_HEIGHT * MAX_WIDTH * 3,), np.uint8, buf, _HEADER * 8)
        self._text = np.ndarray((_TEXT_BYTES,), np.uint8, buf, _HEADER * 8 + MAX_HEIGHT * MAX_WIDTH * 3)
        if create:
            self._head[:] = 0

    @classmethod
    def create(cls) -> FrameFeed:
        """A new feed, owned by this process."""
        return cls("", create=True)

    def __reduce__(self):
        return FrameFeed, (self.name,)

    # ------------------------------------------------------------------ the window's side

    @property
    def viewer(self) -> int:
        """Whether a window reads the feed: ``WAITING`` (not yet), ``OPEN`` or ``CLOSED`` (it was closed)."""
        return int(self._head[3])

    def set_viewer(self, state: int) -> None:
        """The window says it opened (``OPEN``) or was closed (``CLOSED``)."""
        self._head[3] = state

    @property
    def ended(self) -> bool:
        """Whether the owner is done with the feed (training ended): the window closes."""
        return bool(self._head[4])

    def end(self) -> None:
        """Tell the window that nothing more will come."""
        self._head[4] = 1

    def read(self, after: int = -1) -> tuple[int, np.ndarray, list[str]] | None:
        """``(seq, picture, lines)`` of the newest publication if it is newer than ``after``, else None."""
        for _ in range(100):
            seq = int(self._head[0])
            if seq == after or seq == 0:
                return None
            if seq % 2:
                time.sleep(0.0005)
                continue
            h, w, n = int(self._head[1]), int(self._head[2]), int(self._head[5])
            picture = self._pixels[:h * w * 3].reshape(h, w, 3).copy()
            text = bytes(self._text[:n]).decode("utf-8", "replace")
            if int(self._head[0]) == seq:
                return seq, picture, text.split("\n") if text else []
        return None

    # ------------------------------------------------------------------ the env's side

    def publish(self, picture: np.ndarray, lines: list[str]) -> bool:
        """Write a picture (H, W, 3 uint8) and lines of text; False (nothing written) when it does not fit."""
        h, w = picture.shape[:2]
        if h > MAX_HEIGHT or w > MAX_WIDTH or picture.ndim != 3 or picture.shape[2] != 3:
            return False
        text = "\n".join(lines).encode("utf-8")[:_TEXT_BYTES]
        head = self._head
        head[0] += 1  # odd: a write is under way
        self._pixels[:h * w * 3] = np.asarray(picture, np.uint8).reshape(-1)
        self._text[:len(text)] = np.frombuffer(text, np.uint8)
        head[1], head[2], head[5] = h, w, len(text)
        head[0] += 1
        return True

    def release(self) -> None:
        """Let go of the block in this process (the owner still has to :meth:`unlink` it)."""
        self._head = self._pixels = self._text = None
        self._shm.close()

    def unlink(self) -> None:
        """The owner removes the block (after :meth:`release`)."""
        self._shm.unlink()


class FeedSink:
    """A :class:`Tap` sink that publishes into a :class:`FrameFeed`, at most ``max_rate`` times a second and
    only while a window is open; ``context`` heads its text (``env 0 of 8``, ``genome 57``)."""

    def __init__(self, feed: FrameFeed, context: str = "", max_rate: float = 60.0):
        self.feed = feed
        self.context = context
        self.min_interval = 1.0 / max_rate
        self.episodes = 0
        self._frame: np.ndarray | None = None
        self._last = 0.0

    def due(self) -> bool:
        """Whether a window reads the feed and the next picture is due (the tap copies a screen only then)."""
        return self.feed.viewer == OPEN and time.perf_counter() - self._last >= self.min_interval

    def frame(self, screen: np.ndarray) -> None:
        """Keep the screen; it goes out with the step's status."""
        self._frame = screen

    def status(self, s: dict) -> None:
        """Publish the screen handed over for this step with the episode so far (when a window reads)."""
        if s["steps"] == 0:
            self.episodes += 1
        frame, self._frame = self._frame, None
        if frame is None or self.feed.viewer != OPEN:
            return
        self._last = time.perf_counter()
        ended = s["ended"]
        lines = [f"{self.context}, episode {self.episodes}" + (f", state {s['state']}" if s["state"] else ""),
                 f"return {s['r']:.1f}   progress {s['progress']:.0f}   frames {s['frames']:,}",
                 f"action {s['action'] or '-'}" + (f"   (episode ended: {ended['reason']})" if ended else "")]
        self.feed.publish(frame, lines)
