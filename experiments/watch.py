"""Windows for people: an agent, a movie or a training run shown live, and a game played from the keyboard.

Everything drawn here is handed in: the frames of an env (through :class:`wrappers.tap.Tap`), of a policy's
episodes (:meth:`experiments.evaluate.Evaluator.run`), of a movie (:func:`watch_movies`) or of an env in
another process (:class:`wrappers.tap.FrameFeed`, :class:`Viewer`). pygame (SDL2) draws: it needs no OpenGL,
so the window opens on a plain X server, under Xvfb, and under WSL with VcXsrv or WSLg alike; the choice and
its measured frame pacing are in docs/watch.md. pygame is imported only once a window is asked for: every
other path of retrodojo stays headless.

Keys of a watch window: space pause, ``.`` one frame, ``+``/``-`` faster/slower (1x, 2x, 4x, as fast as
possible; or 1, 2, 4, 0), ``n`` next episode (next movie), ``q`` or Esc quit. Of a play window: the console's
buttons (stable-retro's own key bindings, or a ``--keys`` file), F1-F9 save a state, F12 (or Pause) pause,
F11 one frame, Esc quit.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.errors import UserError

#: Speeds a watch window cycles through, as multiples of the console's rate; None: as fast as possible.
SPEEDS: tuple[float | None, ...] = (1.0, 2.0, 4.0, None)
#: At most this many draws a second (faster speeds skip drawing frames, not playing them).
DRAW_HZ = 60.0
#: Keys that stay the window's in a play window: a ``--keys`` file cannot give them to a button.
PLAY_CONTROL_KEYS = ("escape", "pause", *(f"f{i}" for i in range(1, 13)))
#: stable-retro's key names that SDL spells otherwise.
_SDL_NAMES = {"ENTER": "return"}
_PANEL_LINE = 20
_MIN_WIDTH = 480

HELP = {
    "watch": "space pause   . step   +/- speed   n next episode   q quit",
    "movie": "space pause   . step   +/- speed   n next movie   q quit",
    "train": "space pause   . next frame   q close (training goes on)",
    "play": "Esc quit   F12 pause   F11 step   F1-F9 save state",
}


#: Attempts at connecting to the display before a window gives up.
DISPLAY_TRIES = 3


def require_display(what: str) -> None:
    """Raise a one-line UserError when ``what`` cannot open a window here: no display, or no pygame."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError(f"{what} opens a window and this machine has no display (DISPLAY is not set); run it on a "
                        "desktop, or under WSL with WSLg or an X server such as VcXsrv (docs/watch.md).")
    try:
        _pygame()
    except ImportError:
        raise UserError(f"{what} opens a window with pygame, which is not installed: pip install "
                        "'retrodojo[watch]'.") from None


def _pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    return pygame


def has_audio_device() -> bool:
    """Whether sound has somewhere to go: a sound server or a playback device (or a driver the user chose in
    ``SDL_AUDIODRIVER``). Asked first so that a machine without one stays silent, not noisy."""
    if os.environ.get("SDL_AUDIODRIVER") or not sys.platform.startswith("linux"):
        return True
    runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
    if os.environ.get("PULSE_SERVER") or (runtime / "pulse" / "native").exists() or (runtime / "pipewire-0").exists():
        return True
    return any(Path("/dev/snd").glob("pcmC*D*p"))


def _sleep_until(deadline: float) -> None:
    """Sleep to ``deadline`` (perf_counter seconds); the last 1.5 ms spun, since a sleep overshoots."""
    delay = deadline - time.perf_counter()
    if delay > 0.002:
        time.sleep(delay - 0.0015)
    while time.perf_counter() < deadline:
        pass


class Window:
    """A pygame window that draws the frames it is given, scaled up (nearest neighbour), with lines of text
    under the picture, paced at the console's rate times the chosen speed.

    Args:
        title: the window's title (and the first line of text).
        rate: frames per second at 1x (the console's: :meth:`wrappers.retro_game.RetroGame.screen_rate`).
        scale: integer upscale of the picture.
        mode: ``watch`` (a policy), ``movie``, ``train`` (frames at training speed, never paced) or ``play``.
        paused: start paused (the first frame is drawn, then the window waits for a key).

    Raises:
        UserError: no display could be opened.
    """

    def __init__(self, title: str, rate: float = 60.0, scale: int = 3, mode: str = "watch", paused: bool = False):
        pg = _pygame()
        if sys.platform.startswith("linux") and not os.environ.get("SDL_VIDEODRIVER"):
            # the display the environment names: SDL would otherwise fall back to drawing nowhere ("offscreen")
            os.environ["SDL_VIDEODRIVER"] = "x11" if os.environ.get("DISPLAY") else "wayland"
        for attempt in range(DISPLAY_TRIES):
            try:
                pg.display.init()
                if pg.display.get_driver() in ("offscreen", "dummy") and not os.environ.get("SDL_VIDEODRIVER"):
                    raise pg.error(f"SDL found no display, only its {pg.display.get_driver()} driver")
                break
            except pg.error as e:
                pg.display.quit()
                # a busy X server can refuse one connection (seen once under Xvfb in CI); a missing one
                # refuses them all, so a few tries cost a second only where there is no display anyway
                if attempt + 1 == DISPLAY_TRIES:
                    raise UserError(f"cannot open a window: {e} (DISPLAY={os.environ.get('DISPLAY', '')}); see "
                                    "docs/watch.md for a desktop or WSL.") from None
                time.sleep(0.5)
        pg.display.set_caption(title)
        pg.font.init()
        self.pg = pg
        self.font = pg.font.Font(None, 22)
        self.title, self.rate, self.scale, self.mode = title, float(rate), max(1, int(scale)), mode
        self.paused, self.quit, self.next_episode = paused, False, False
        self.speed_index = 0
        self.header = title
        self.lines: list[str] = []
        self.side: np.ndarray | None = None  # a picture beside the screen (what the agent sees)
        self.on_save = None  # play: called with the F-key's number
        self.flips: collections.deque[float] = collections.deque(maxlen=100_000)  # draw times, for pacing
        self.frames = 0
        self._flash: tuple[str, float] | None = None
        self._frame: np.ndarray | None = None
        self._display = None
        self._size = None
        self._scaled = None  # the window's picture area
        self._deadline: float | None = None
        self._last_draw = 0.0
        self.step_requested = False  # paused: let one more frame through
        self._text_cache: dict[str, object] = {}
        self._channel = None
        self._pending: list[np.ndarray] = []

    # ------------------------------------------------------------------ what callers hand in

    def frame(self, picture: np.ndarray) -> None:
        """One emulator frame: drawn at its time (1x: the console's rate), or held while paused."""
        self._frame = picture
        self.frames += 1
        speed = SPEEDS[self.speed_index]
        if speed is not None or time.perf_counter() - self._last_draw >= 1 / DRAW_HZ:
            self._events()
        if self.quit or self.next_episode:
            return
        if self.paused:
            self._hold()
            return
        now = time.perf_counter()
        if speed is None:
            self._deadline = None
            if now - self._last_draw >= 1 / DRAW_HZ:
                self._draw()
            return
        target = now if self._deadline is None else self._deadline + 1 / (self.rate * speed)
        if target < now - 0.1:  # far behind (a slow policy step, a busy machine): go on from now, not race
            target = now
        _sleep_until(target)
        self._deadline = target
        if speed == 1.0 or time.perf_counter() - self._last_draw >= 0.9 / DRAW_HZ:
            self._draw()

    def show(self, picture: np.ndarray) -> None:
        """Draw a picture now, unpaced (a training env's newest frame)."""
        self._frame = picture
        self.frames += 1
        self._draw()

    def status(self, s: dict) -> None:
        """What a :class:`wrappers.tap.Tap` reports after each step: the episode's return, progress, action."""
        ended = s["ended"]
        self.lines = [f"return {s['r']:.1f}   progress {s['progress']:.0f}   frames {s['frames']:,}",
                      f"action {s['action'] or '-'}" + (f"   (episode ended: {ended['reason']})" if ended else "")]

    def flash(self, text: str, seconds: float = 3.0) -> None:
        """A line shown for a few seconds (a state saved)."""
        self._flash = (text, time.perf_counter() + seconds)
        self._draw()

    def idle(self, seconds: float = 1 / DRAW_HZ) -> None:
        """Wait, answering keys (and redrawing after one)."""
        time.sleep(seconds)
        if self._events() or (self._flash and time.perf_counter() > self._flash[1]):
            self._draw()

    def held(self, bindings: dict[int, list[int]], n_buttons: int) -> np.ndarray:
        """The buttons held now, as a 0/1 mask: ``bindings`` maps a button's index to its keys."""
        pressed = self.pg.key.get_pressed()
        mask = np.zeros(n_buttons, np.uint8)
        for button, keys in bindings.items():
            mask[button] = any(pressed[k] for k in keys)
        return mask

    # ------------------------------------------------------------------ sound

    def open_sound(self, rate: float) -> str:
        """Open the audio device at the emulator's sample rate; returns what the user is told (sound on, or
        why not). Without a device the window stays silent."""
        if not has_audio_device():
            return "no audio device: silent"
        pg = self.pg
        try:
            pg.mixer.init(frequency=int(round(rate)), size=-16, channels=2, buffer=1024, allowedchanges=0)
        except pg.error as e:
            return f"no sound ({e})"
        self._channel = pg.mixer.Channel(0)
        return f"sound on ({pg.mixer.get_init()[0]} Hz)"

    def audio(self, samples: np.ndarray) -> None:
        """One frame's sound, (n, 2) int16; played at 1x only, in chunks queued behind the one playing."""
        if self._channel is None:
            return
        if self.paused or SPEEDS[self.speed_index] != 1.0 or self.quit:
            self._pending.clear()
            return
        self._pending.append(np.asarray(samples, np.int16).reshape(-1, 2))
        n = sum(len(p) for p in self._pending)
        if n < 2048 or self._channel.get_queue() is not None:
            while n > 12_000 and len(self._pending) > 1:  # the device fell behind: drop the oldest, keep in sync
                n -= len(self._pending.pop(0))
            return
        sound = self.pg.sndarray.make_sound(np.ascontiguousarray(np.concatenate(self._pending)))
        self._pending = []
        if self._channel.get_busy():
            self._channel.queue(sound)
        else:
            self._channel.play(sound)

    # ------------------------------------------------------------------ drawing and keys

    def _hold(self) -> None:
        """Paused: draw the frame and wait for a key; a step key lets exactly this frame go."""
        self._draw()
        shown = time.perf_counter()
        while self.paused and not self.step_requested and not self.quit and not self.next_episode:
            time.sleep(1 / DRAW_HZ)
            if self._events() or time.perf_counter() - shown > 0.5:  # after a key, and now and then (exposed)
                self._draw()
                shown = time.perf_counter()
        self.step_requested = False
        self._deadline = None

    def _speed_text(self) -> str:
        if self.mode in ("train", "play"):
            return "paused" if self.paused else ("training speed" if self.mode == "train" else "")
        speed = SPEEDS[self.speed_index]
        return "paused" if self.paused else ("max speed" if speed is None else f"{speed:g}x")

    def _layout(self, h: int, w: int) -> tuple[int, int]:
        side_w = 0
        if self.side is not None:
            sh, sw = self.side.shape[:2]
            side_w = 8 + sw * self._side_scale(h, sh)
        lines = 3 + max(3, len(self.lines))  # the title, the status, a flash, the keys
        return max(w * self.scale + side_w, _MIN_WIDTH), h * self.scale + 8 + lines * _PANEL_LINE

    def _side_scale(self, h: int, side_h: int) -> int:
        """The side picture's upscale: about half the screen's height (an 84x84 observation at 4x)."""
        return max(1, (h * self.scale) // (2 * side_h))

    def _draw(self) -> None:
        pg = self.pg
        if self._frame is None:
            return
        frame = np.ascontiguousarray(self._frame[..., :3], np.uint8)
        h, w = frame.shape[:2]
        size = self._layout(h, w)
        if self._display is None or size != self._size:
            self._display = pg.display.set_mode(size)
            self._size, self._scaled = size, None
        screen = self._display
        # converted to the window's pixel format while small, then scaled straight into the window
        surf = pg.image.frombuffer(frame, (w, h), "RGB").convert(screen)
        area = (w * self.scale, h * self.scale)
        if self._scaled is None or self._scaled.get_size() != area:
            self._scaled = screen.subsurface((0, 0, *area))
            screen.fill((20, 20, 24))
        pg.transform.scale(surf, area, self._scaled)
        screen.fill((20, 20, 24), (0, area[1], size[0], size[1] - area[1]))
        if area[0] < size[0]:
            screen.fill((20, 20, 24), (area[0], 0, size[0] - area[0], area[1]))
        if self.side is not None:
            side = np.ascontiguousarray(self.side, np.uint8)
            sh, sw = side.shape[:2]
            k = self._side_scale(h, sh)
            screen.blit(pg.transform.scale(pg.image.frombuffer(side, (sw, sh), "RGB"), (sw * k, sh * k)),
                        (w * self.scale + 8, 0))
            screen.blit(self._text(f"what the agent sees ({sw}x{sh})", (150, 150, 160)),
                        (w * self.scale + 12, sh * k + 6))
        if self._flash is not None and time.perf_counter() > self._flash[1]:
            self._flash = None
        top = h * self.scale + 6
        for i, line in enumerate([self.header, *self.lines]):
            screen.blit(self._text(line, (235, 235, 235)), (6, top + i * _PANEL_LINE))
        bottom = size[1] - _PANEL_LINE - 2  # the keys on the last line, a flash just above them
        if self._flash:
            screen.blit(self._text(self._flash[0], (255, 220, 120)), (6, bottom - _PANEL_LINE))
        keys = "   ".join(t for t in (self._speed_text(), HELP[self.mode]) if t)
        screen.blit(self._text(keys, (150, 150, 160)), (6, bottom))
        pg.display.flip()
        self._last_draw = time.perf_counter()
        self.flips.append(self._last_draw)

    def _text(self, line: str, colour):
        key = f"{colour}{line}"
        surf = self._text_cache.get(key)
        if surf is None:
            if len(self._text_cache) > 256:
                self._text_cache.clear()
            surf = self._text_cache[key] = self.font.render(line, True, colour)
        return surf

    def _events(self) -> bool:
        """Handle the window's events; True when one changed what is shown."""
        pg = self.pg
        changed = False
        for ev in pg.event.get():
            if ev.type == pg.QUIT:
                self.quit = True
            elif ev.type == pg.KEYDOWN:
                changed |= self._key(ev.key)
            elif ev.type in (pg.VIDEOEXPOSE, pg.WINDOWEXPOSED):
                changed = True
        return changed

    def _key(self, key: int) -> bool:
        pg = self.pg
        if self.mode == "play":
            if key == pg.K_ESCAPE:
                self.quit = True
            elif key in (pg.K_F12, pg.K_PAUSE):
                self.paused = not self.paused
            elif key == pg.K_F11:
                self.paused, self.step_requested = True, True
            elif pg.K_F1 <= key <= pg.K_F9 and self.on_save is not None:
                self.on_save(key - pg.K_F1 + 1)
            else:
                return False
            return True
        if key in (pg.K_q, pg.K_ESCAPE):
            self.quit = True
        elif key in (pg.K_SPACE, pg.K_p):
            self.paused = not self.paused
        elif key in (pg.K_PERIOD, pg.K_RIGHT):
            self.paused, self.step_requested = True, True
        elif self.mode == "train":
            return False
        elif key in (pg.K_n, pg.K_TAB):
            self.next_episode = True
        elif key in (pg.K_PLUS, pg.K_EQUALS, pg.K_KP_PLUS):
            self.speed_index = min(self.speed_index + 1, len(SPEEDS) - 1)
        elif key in (pg.K_MINUS, pg.K_KP_MINUS):
            self.speed_index = max(self.speed_index - 1, 0)
        elif key in (pg.K_1, pg.K_2, pg.K_4, pg.K_0):
            self.speed_index = {pg.K_1: 0, pg.K_2: 1, pg.K_4: 2, pg.K_0: 3}[key]
        else:
            return False
        self._deadline = None
        return True

    def pacing(self) -> dict:
        """Intervals between the draws so far (ms): mean, standard deviation, max, count."""
        d = np.diff(np.asarray(self.flips)) * 1000
        if len(d) == 0:
            return {"draws": len(self.flips)}
        return {"draws": len(self.flips), "mean_ms": float(d.mean()), "std_ms": float(d.std()),
                "max_ms": float(d.max())}

    def close(self) -> None:
        """Close the window (and the sound)."""
        pg = self.pg
        if pg.mixer.get_init():
            pg.mixer.quit()
        pg.display.quit()


# --------------------------------------------------------------------------- a training env, shown from elsewhere


def _viewer_main(feed, title: str, conn) -> None:
    """The window's process: draw what the feed brings until the window is closed or the feed ends."""
    from wrappers.tap import CLOSED, OPEN

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the trainer, which ends the feed
    try:
        window = Window(title, mode="train")
    except UserError as e:
        conn.send(str(e))
        return
    conn.send(None)
    feed.set_viewer(OPEN)
    window.header = "live, at training speed (the window does not slow the other envs)"
    window.lines = ["waiting for the env's first frame (the run is starting)"]
    window.show(np.zeros((224, 240, 3), np.uint8))  # open at once, at a NES screen's size until a frame comes
    seq = -1
    try:
        while not window.quit and not feed.ended:
            got = feed.read(seq) if not window.paused or window.step_requested else None
            if got is None:
                window.idle()
                continue
            window.step_requested = False
            seq, picture, window.lines = got
            window.show(picture)
            window.idle(0.0)
    finally:
        feed.set_viewer(CLOSED)
        window.close()
        feed.release()


class Viewer:
    """A window in a process of its own, showing what a :class:`wrappers.tap.FrameFeed` brings: a training
    env's frames, which live in the trainer or in a worker. Closing the window leaves training alone.

    Raises:
        UserError: the window could not open (no display), before any training starts.
    """

    def __init__(self, title: str):
        from wrappers.tap import FrameFeed

        self.feed = FrameFeed.create()
        from wrappers.vec_env import worker_context

        ctx = worker_context()
        mine, theirs = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_viewer_main, args=(self.feed, title, theirs), daemon=True,
                                name="retrodojo-window")
        self.proc.start()
        theirs.close()
        try:
            message = mine.recv() if mine.poll(60) else "the window's process did not answer within 60 s"
        except EOFError:
            message = f"the window's process ended while opening (exit code {self.proc.exitcode})"
        if message:
            self.close()
            raise UserError(message)

    def close(self) -> None:
        """Tell the window that training ended; it closes."""
        from wrappers.vec_env import end_process

        self.feed.end()
        end_process(self.proc)
        self.feed.release()
        self.feed.unlink()


# --------------------------------------------------------------------------- movies


@dataclass
class Watched:
    """What a window showed of a movie: its frames, and whether the viewer quit there."""

    path: Path
    frames: int
    quit: bool


def watch_movies(paths: list[Path], scale: int = 3, paused: bool = False, sound: bool = True,
                 notify=print) -> list[Watched]:
    """Replay .bk2 movies one after another in a window at the console's rate, with their sound when the
    machine has an audio device; ``n`` goes to the next movie, ``q`` stops."""
    from experiments.replay import movie_env, movie_steps

    out: list[Watched] = []
    window = None
    try:
        for k, path in enumerate(paths):
            with movie_env(path, render=True) as (movie, env):
                em = env.unwrapped.em
                rate = float(em.get_screen_rate())
                if window is None:
                    window = Window(f"retrodojo replay: {path.name}", rate=rate, scale=scale, mode="movie",
                                    paused=paused)
                    note = window.open_sound(em.get_audio_rate()) if sound else "sound off"
                    notify(note)
                window.rate, window.next_episode = rate, False
                window.header = f"{path.name} ({k + 1} of {len(paths)}): {movie.get_game()}"
                window.lines = ["frame 0 (0.0 s)", note]
                window.frame(env.render())
                frames = 0
                for frames in movie_steps(movie, env):
                    if window.quit or window.next_episode:
                        break
                    window.audio(em.get_audio())
                    window.lines[0] = f"frame {frames:,} ({frames / rate:.1f} s)"
                    window.frame(env.render())
                out.append(Watched(path, frames, window.quit))
            if window.quit:
                break
    finally:
        if window is not None:
            window.close()
    return out


# --------------------------------------------------------------------------- a person plays


def key_bindings(game: str, keys_file: str | Path | None = None) -> dict[str, list[str]]:
    """Keys for each button of ``game``'s console: stable-retro's own bindings (its player's), with a
    ``--keys`` YAML file's ``BUTTON: key`` entries on top (pygame's key names: ``x``, ``return``,
    ``right shift``; ``null`` unbinds). Returns ``{button: [key names]}``.

    Raises:
        UserError: one paragraph naming every unknown button, unknown key, and key the window keeps.
    """
    import stable_retro.data as rdata

    from wrappers import roms

    pg = _pygame()
    system = roms.short_name(roms.canonical_game(game)).rsplit("-", 1)[-1]
    info = rdata.EMU_INFO.get(system, {})
    buttons, defaults = info.get("buttons", []), info.get("keybinds", [])
    names: dict[str, list[str]] = {b: [_SDL_NAMES.get(k, k.lower())] for b, k in zip(buttons, defaults) if b and k}
    problems: list[str] = []
    if keys_file is not None:
        from experiments.spec import SpecError, parse_yaml
        from wrappers.errors import read_text_file

        fix = f"A keys file maps {system} buttons ({', '.join(b for b in buttons if b)}) to key names, one a line."
        try:
            data = parse_yaml(read_text_file(keys_file, "keys file", fix), str(keys_file))
        except SpecError as e:
            raise UserError(f"{keys_file}: {'; '.join(e.errors)}. {fix}") from None
        if not isinstance(data, dict):
            raise UserError(f"{keys_file} holds no mapping of buttons to keys. {fix}")
        for button, key in data.items():
            b = str(button).upper()
            if b not in buttons:
                problems.append(f"{button}: not a {system} button")
                continue
            keys = key if isinstance(key, list) else [] if key is None else [key]
            bad = [k for k in keys if not isinstance(k, str) or not _key_code(pg, k)]
            kept = [k for k in keys if isinstance(k, str) and k.lower() in PLAY_CONTROL_KEYS]
            if bad:
                problems.append(f"{button}: unknown key {', '.join(map(repr, bad))}")
            elif kept:
                problems.append(f"{button}: {', '.join(kept)} stays the window's (Esc quits, F1-F9 save, F11 steps, "
                                "F12 and Pause pause)")
            else:
                names[b] = [k.lower() for k in keys]
        if problems:
            raise UserError(f"{keys_file}: {'; '.join(problems)}. {fix} Key names are pygame's (x, return, "
                            "right shift, up).")
    return {b: ks for b, ks in names.items() if ks}


def _key_code(pg, name: str) -> int | None:
    import warnings

    with warnings.catch_warnings():  # pygame warns that it is not initialised: key names need no display
        warnings.simplefilter("ignore")
        try:
            return pg.key.key_code(name)
        except ValueError:
            return None


def obs_picture(obs, grayscale: bool = True) -> np.ndarray | None:
    """The newest frame of an observation as an RGB picture (what the agent sees), or None for an
    observation that is no picture (RAM values)."""
    if isinstance(obs, dict):
        obs = obs.get("pixels")
    a = np.asarray(obs)
    if a.ndim != 3 or a.shape[0] < 1:
        return None
    if a.dtype != np.uint8:  # SMB's tile grid, -1..1
        a = ((np.clip(a, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    if grayscale or a.shape[0] < 3:
        return np.repeat(a[-1][..., None], 3, axis=2)
    return np.ascontiguousarray(a[-3:].transpose(1, 2, 0))


@dataclass
class Played:
    """What a person's play did: frames, the episodes that ended, the movies and the states written."""

    frames: int = 0
    episodes: list[dict] = field(default_factory=list)
    movies: list[Path] = field(default_factory=list)
    states: dict[str, Path] = field(default_factory=dict)


def play_keyboard(spec, bindings: dict[str, list[str]], movie: Path, save_as: str, scale: int = 3,
                  agent_view: bool = False, seed: int = 0, notify=print) -> Played:
    """A person plays ``spec``'s game through the full wrapper stack, paced at the console's rate.

    Args:
        spec: the env spec (its action set decides what the keys can do: raw buttons, or the nearest action
            of a named set).
        bindings: :func:`key_bindings`.
        movie: the first episode's .bk2 (the next ones get ``-001``, ``-002``, ... beside it).
        save_as: F1-F9 save the emulator's state as ``save_as-1`` ... ``save_as-9`` into the ROM store.
        agent_view: show the observation's newest frame beside the screen.
    """
    import gymnasium as gym

    from experiments.states import save_state
    from wrappers import make_env, roms
    from wrappers.tap import Tap

    game = roms.canonical_game(spec.game)
    played = Played()
    window = Window(f"retrodojo play: {roms.short_name(game)}", scale=scale, mode="play")
    env = None
    try:
        env = make_env(spec, seed=seed)
        window.rate = env.get_wrapper_attr("screen_rate")()
        n_buttons = env.unwrapped.num_buttons
        buttons = list(env.unwrapped.buttons)
        codes = {buttons.index(b): [_key_code(window.pg, k) for k in keys] for b, keys in bindings.items()
                 if b in buttons}
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        nearest = env.get_wrapper_attr("nearest") if discrete else None
        snapshot = env.get_wrapper_attr("emulator_state")

        def save(slot: int) -> None:
            name = f"{save_as}-{slot}"
            played.states[name] = save_state(game, name, snapshot())
            window.flash(f"saved state {name}")
            notify(f"saved state {name}: {played.states[name]}")

        window.on_save = save
        tap = Tap(env, window, every_frame=True)
        env = tap
        record = env.get_wrapper_attr("record_next")
        movie.parent.mkdir(parents=True, exist_ok=True)
        record(str(movie.resolve()))
        played.movies.append(movie)
        window.header = f"{roms.short_name(game)} from {spec.states[0] if spec.states else 'its default state'}, " \
                        f"recording {movie.name}"
        if agent_view:  # the window opens at its full size, the agent's view beside the screen
            window.side = obs_picture(np.zeros_like(env.observation_space.sample()), spec.grayscale)
        obs, _ = env.reset()
        if agent_view:
            window.side = obs_picture(obs, spec.grayscale)
        while not window.quit:
            held = window.held(codes, n_buttons)
            action = nearest(held) if discrete else held.astype(np.float32)
            obs, _r, terminated, truncated, info = env.step(action)
            played.frames += info.get("frames", spec.frame_skip)
            if agent_view:
                window.side = obs_picture(obs, spec.grayscale)
            if (terminated or truncated) and not window.quit:
                played.episodes.append(info["episode"])
                nxt = movie.with_name(f"{movie.stem}-{len(played.movies):03d}.bk2")
                record(str(nxt.resolve()))
                played.movies.append(nxt)
                window.header = f"episode ended ({info['episode']['reason']}), again from the start; recording " \
                                f"{nxt.name}"
                obs, _ = env.reset()
    finally:
        if env is not None:
            env.close()  # finishes the movie being recorded
        window.close()
    return played
