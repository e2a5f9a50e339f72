"""Frame pacing of a watch window at 1x: how evenly frames reach the screen, with the real emulator behind them.

    DISPLAY=:99 .venv/bin/python benchmarks/watch_pacing.py [--frames 600] [--library pygame pyglet]

SMB 1-1 is stepped frame by frame (no buttons) and each frame handed to a window at the console's rate,
scaled 3x with nearest neighbour: retrodojo's own window (pygame, :class:`experiments.watch.Window`) and, for
the comparison that chose it, the same deadline pacing drawing through pyglet 1.5 (OpenGL; the one
stable-retro's own viewer uses). Each library runs in a process of its own (one emulator per process).
Printed per library: the intervals between draws (mean, standard deviation, 99th percentile, max, in ms) and
the time one draw takes. docs/watch.md has the figures and the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _frames():
    """The emulator, stepped one frame at a time: yields (frame, seconds spent emulating it)."""
    import stable_retro

    from wrappers import roms

    roms.register()
    env = stable_retro.make("SuperMarioBros-Nes-v0", state="Level1-1", inttype=roms.INTTYPE,
                            render_mode="rgb_array")
    env.reset()
    rate = float(env.unwrapped.em.get_screen_rate())
    noop = np.zeros(env.unwrapped.num_buttons, np.uint8)
    try:
        while True:
            t = time.perf_counter()
            env.step(noop)
            yield rate, env.render(), time.perf_counter() - t
    finally:
        env.close()


def run_pygame(n: int) -> dict:
    """retrodojo's Window at 1x: its own pacing and drawing."""
    from experiments.watch import Window

    window, draw = None, []
    for i, (rate, frame, _) in enumerate(_frames()):
        if window is None:
            window = Window("pacing: pygame", rate=rate)
            plain = window._draw

            def timed(plain=plain):
                t = time.perf_counter()
                plain()
                draw.append(time.perf_counter() - t)

            window._draw = timed
        window.frame(frame)
        if i >= n:
            break
    out = _stats(np.asarray(window.flips))
    window.close()
    return {**out, "draw_ms": 1000 * float(np.median(draw))}


def run_pyglet(n: int) -> dict:
    """The same deadline pacing, drawing with pyglet (a texture, GL_NEAREST, scaled 3x)."""
    import pyglet
    from pyglet import gl

    from experiments.watch import _sleep_until

    window, flips, draw, deadline = None, [], [], None
    for i, (rate, frame, _) in enumerate(_frames()):
        h, w = frame.shape[:2]
        if window is None:
            window = pyglet.window.Window(w * 3, h * 3, caption="pacing: pyglet", vsync=False)
        window.dispatch_events()
        now = time.perf_counter()
        deadline = now if deadline is None or deadline + 1 / rate < now - 0.1 else deadline + 1 / rate
        _sleep_until(deadline)
        t = time.perf_counter()
        window.switch_to()
        image = pyglet.image.ImageData(w, h, "RGB", np.ascontiguousarray(frame[::-1]).tobytes(), pitch=w * 3)
        texture = image.get_texture()
        gl.glTexParameteri(gl.GL_TEXTURE_2D, gl.GL_TEXTURE_MAG_FILTER, gl.GL_NEAREST)
        window.clear()
        texture.blit(0, 0, width=w * 3, height=h * 3)
        window.flip()
        flips.append(time.perf_counter())
        draw.append(flips[-1] - t)
        if i >= n:
            break
    window.close()
    return {**_stats(np.asarray(flips)), "draw_ms": 1000 * float(np.median(draw))}


def _stats(flips: np.ndarray) -> dict:
    d = np.diff(flips[10:]) * 1000  # the first draws open the window
    return {"draws": len(d), "mean_ms": float(d.mean()), "std_ms": float(d.std()),
            "p99_ms": float(np.percentile(d, 99)), "max_ms": float(d.max())}


def main() -> None:
    """Measure each library in a process of its own and print a table (or --json)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--library", nargs="+", default=["pygame", "pyglet"], choices=["pygame", "pyglet"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--one", choices=["pygame", "pyglet"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps({"pygame": run_pygame, "pyglet": run_pyglet}[args.one](args.frames)))
        return
    if not os.environ.get("DISPLAY"):
        sys.exit("no DISPLAY: run it on a desktop, or under Xvfb (DISPLAY=:99 after `Xvfb :99 &`)")
    results = {}
    for lib in args.library:
        out = subprocess.run([sys.executable, __file__, "--one", lib, "--frames", str(args.frames)],
                             capture_output=True, text=True, check=True)
        results[lib] = json.loads(out.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'library':8} {'draws':>6} {'mean ms':>8} {'std ms':>7} {'p99 ms':>7} {'max ms':>7} {'draw ms':>8}")
    for lib, r in results.items():
        print(f"{lib:8} {r['draws']:6d} {r['mean_ms']:8.2f} {r['std_ms']:7.2f} {r['p99_ms']:7.2f} {r['max_ms']:7.2f} "
              f"{r['draw_ms']:8.2f}")
    print(f"target interval at 1x: {1000 / 60.0988:.2f} ms (NES, 60.0988 frames/s); load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
