"""Play a game through the full wrapper stack with a simple policy, and film it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from experiments.video import VideoWriter
from wrappers.factory import make_env
from wrappers.settings import EnvSpec


@dataclass
class PlayReport:
    """What a play session did: its episodes (``info["episode"]`` dicts) and the video written."""

    frames: int = 0
    episodes: list[dict] = field(default_factory=list)
    video: Path | None = None


def play_random(spec: EnvSpec, frames: int, video: str | Path | None = None, seed: int = 0,
                progress=None) -> PlayReport:
    """Play ``frames`` emulator frames with uniformly random actions of the spec's action set.

    Args:
        spec: the env spec; rendering is switched to ``rgb_array`` for the video.
        frames: emulator frames to play (episodes restart as they end).
        video: mp4 path, or None for no video.
        seed: seeds the env and the random policy.
        progress: optional callable ``progress(frames_done)`` for a progress bar.
    """
    spec = spec.model_copy(update={"render_mode": "rgb_array" if video else None})
    report = PlayReport()
    writer = None
    with make_env(spec, seed=seed) as env:
        if video:  # the console's own rate (stable-retro declares no render_fps), so the video plays at real speed
            writer = VideoWriter(video, fps=env.get_wrapper_attr("screen_rate")() / spec.frame_skip)
        env.reset()
        while report.frames < frames:
            # sample() fits every action space: a discrete set, or raw buttons (each pressed with p = 0.5)
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            report.frames += spec.frame_skip
            if writer:
                writer.add(env.render())
            if progress:
                progress(report.frames)
            if terminated or truncated:
                report.episodes.append(info["episode"])
                env.reset()
    if writer:
        report.video = writer.close()
    return report
