"""Replay a stable-retro ``.bk2`` movie headless and film it: ``retrodojo replay FILE.bk2 --video OUT.mp4``.

A bk2 holds the game, the start state and every button press, frame by frame: tiny and exact, it replays the
episode identically on any machine that has the ROM. The mp4 gets every emulator frame at the console's own
frame rate (stable-retro declares none: it is read from the emulator core, 60.1 for the NES), with the
game's sound muxed in by the ffmpeg that imageio-ffmpeg ships.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.errors import UserError


@dataclass
class Replay:
    """What a replay played: the movie's game and state, frames, frames per second, and the video."""

    game: str
    state: str | None
    frames: int
    fps: float
    video: Path | None
    audio: bool


def _open_movie(path: Path):
    import stable_retro

    if path.is_dir():
        raise UserError(f"{path} is a folder, not a .bk2 movie. Movies are the .bk2 files `retrodojo evaluate --bk2` "
                        "writes (under the run's eval/bk2/).")
    if not path.is_file():
        raise UserError(f"{path}: no such movie. Movies are the .bk2 files `retrodojo evaluate --bk2` writes "
                        "(under the run's eval/bk2/).")
    try:
        return stable_retro.Movie(str(path))
    except Exception as e:  # a truncated or foreign file raises from the C++ reader
        raise UserError(f"{path} is not a readable stable-retro .bk2 movie ({type(e).__name__}: {e}).") from None


def check_movie(path: str | Path) -> None:
    """Raise the UserError :func:`movie_env` would for a path that is not a readable .bk2 movie (a missing file,
    a folder, a truncated or foreign file), before anything is played."""
    _open_movie(Path(path)).close()


@contextmanager
def movie_env(path: str | Path, render: bool = False):
    """``(movie, env)``: the movie opened and an emulator of its game at its start state, ready to step.

    The movie's first frame is the one the env's reset plays, as in stable-retro's own playback.
    """
    import stable_retro

    from wrappers import roms

    path = Path(path)
    movie = _open_movie(path)
    game = movie.get_game()
    try:
        roms.require_rom(game)
    except roms.RomError as e:
        movie.close()
        raise UserError(f"{path} is a movie of {roms.short_name(game)}. {e}") from None
    roms.register()
    movie.step()
    env = stable_retro.make(game, state=stable_retro.State.NONE, use_restricted_actions=stable_retro.Actions.ALL,
                            players=movie.players, render_mode="rgb_array" if render else None,
                            inttype=roms.INTTYPE)
    try:
        env.unwrapped.initial_state = movie.get_state()
        env.reset()
        yield movie, env
    finally:
        movie.close()
        env.close()


def movie_steps(movie, env) -> Iterator[int]:
    """Step ``env`` with the movie's buttons, frame by frame; yields the frame count after each."""
    buttons = env.unwrapped.num_buttons
    frames = 0
    while movie.step():
        env.step(np.array([movie.get_key(i, p) for p in range(movie.players) for i in range(buttons)], np.uint8))
        frames += 1
        yield frames


def replay(path: str | Path, video: str | Path | None = None, scale: int = 2, sound: bool = True) -> Replay:
    """Play ``path`` in the emulator (no window) and write ``video`` (an mp4) if given."""
    from experiments.video import VideoWriter
    from wrappers import roms

    audio_chunks = []
    frames = 0
    with movie_env(path, render=video is not None) as (movie, env):
        game = movie.get_game()
        em = env.unwrapped.em
        fps = float(em.get_screen_rate())
        audio_rate = em.get_audio_rate()
        writer = VideoWriter(video, fps=fps, scale=scale) if video else None
        try:
            for frames in movie_steps(movie, env):  # noqa: B007 - the count is read after the loop
                if writer:
                    writer.add(env.render())
                    if sound:
                        audio_chunks.append(em.get_audio())
        finally:
            if writer:
                writer.close()
    has_audio = bool(writer and sound and audio_chunks) and _mux_audio(Path(video), np.concatenate(audio_chunks),
                                                                      audio_rate)
    return Replay(game=roms.short_name(game), state=None, frames=frames, fps=fps,
                  video=Path(video) if video else None, audio=has_audio)


def _mux_audio(video: Path, samples: np.ndarray, rate: float) -> bool:
    """Put the game's sound into the mp4 (AAC) with imageio-ffmpeg's ffmpeg; False if that fails."""
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(int(round(rate)))
            w.writeframes(np.ascontiguousarray(samples, np.int16).tobytes())
        out = Path(tmp) / video.name
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(video), "-i", str(wav),
               "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-shortest", str(out)]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return False
        out.replace(video)
    return True
