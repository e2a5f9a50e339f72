"""Write episodes to mp4 (imageio + imageio-ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class VideoWriter:
    """Collects RGB frames and writes an H.264 mp4 (yuv420p, so every player opens it).

    Args:
        path: output file; its folder is created.
        fps: frames per second of the video (60 / frame_skip plays in real time).
        scale: integer upscale (nearest neighbour), for crisp pixels on large screens.
    """

    def __init__(self, path: str | Path, fps: float = 15.0, scale: int = 2):
        import imageio.v2 as imageio

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.scale = scale
        self._writer = imageio.get_writer(str(self.path), fps=fps, codec="libx264", quality=7,
                                          pixelformat="yuv420p", macro_block_size=8)
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame."""
        if self.scale > 1:
            frame = frame.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
        self._writer.append_data(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and return its path."""
        self._writer.close()
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
