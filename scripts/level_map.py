"""A picture of a whole scrolling level, with how far each method got marked (the Mario issue's level figure).

    .venv/bin/python scripts/level_map.py MOVIE.bk2 [MOVIE.bk2 ...] --mark "NEAT seed 1=3010" \
        [--mark LABEL=X ...] [--x-var x] [--profile smb] --out docs/smb_level_map.png

The level is pieced together from the screens the movies show: each frame is pasted where the profile's
progress variable (the screen's scroll position: ``x`` of configs/games/smb.yaml) says it stands, so the
movie of an episode that reached the flag gives the whole level. Each mark is the furthest screen of an
episode whose best progress was X: a box from X to X + the screen's width, labelled, since progress is the
screen's left edge and Mario stands somewhere inside it. Movies come from ``retrodojo evaluate RUN --bk2``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def piece(level: np.ndarray | None, frame: np.ndarray, x: int) -> np.ndarray:
    """``level`` with ``frame`` pasted at column ``x`` (grown to fit; screens already there are overwritten)."""
    h, w = frame.shape[:2]
    if level is None:
        level = np.zeros((h, 0, 3), np.uint8)
    if level.shape[1] < x + w:
        level = np.concatenate([level, np.zeros((h, x + w - level.shape[1], 3), np.uint8)], 1)
    level[:, x:x + w] = frame
    return level


def movie_level(path: Path, profile, var: str) -> np.ndarray:
    """The part of the level a movie shows: its frames pasted where ``var`` (a profile variable) says."""
    from experiments.replay import movie_env, movie_steps
    from wrappers.stateful_reward import add_variables
    from wrappers.tracker import VariableReader

    level = None
    with movie_env(path, render=True) as (movie, env):
        data = env.unwrapped.data
        add_variables(data, profile)
        x_of = VariableReader(profile, [var], data.lookup_value)
        for _ in movie_steps(movie, env):
            level = piece(level, env.unwrapped.em.get_screen(), int(x_of()[var]))
    if level is None:
        raise SystemExit(f"{path}: the movie has no frames")
    return level


def mark(level: np.ndarray, marks: list[tuple[str, int]], screen_width: int) -> np.ndarray:
    """The level with a labelled box on the furthest screen of each mark, and a band of labels above it."""
    import cv2

    band = 22 * len(marks) + 6
    out = np.concatenate([np.full((band, level.shape[1], 3), 255, np.uint8), level.copy()], 0)
    for i, (label, x) in enumerate(marks):
        colour = COLOURS[i % len(COLOURS)]
        top = 4 + 22 * i
        cv2.rectangle(out, (x, band), (min(x + screen_width, out.shape[1]) - 1, out.shape[0] - 1), colour, 3)
        cv2.line(out, (x, top + 16), (x, band), colour, 3)
        text = f"{label}: x {x:,}"
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        cv2.putText(out, text, (max(0, min(x + 4, out.shape[1] - tw - 2)), top + 14), cv2.FONT_HERSHEY_SIMPLEX,
                    0.55, colour, 1, cv2.LINE_AA)
    return out


def main(argv: list[str] | None = None) -> int:
    """Piece the level together from the movies, mark it, write the PNG (exit 2 with one paragraph on bad input)."""
    from experiments.errors import UserError

    try:
        return _main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None) -> int:
    import cv2

    from wrappers.profile import integration_variables, load_profile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("movies", nargs="+", type=Path)
    ap.add_argument("--mark", action="append", default=[], metavar="LABEL=X")
    ap.add_argument("--profile", default="smb", help="the profile whose variable is the scroll position")
    ap.add_argument("--x-var", default=None, help="that variable (default: the profile's progress)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    marks = []
    for m in args.mark:
        label, sep, x = m.rpartition("=")
        if not sep or not x.strip().isdigit():
            ap.error(f"--mark {m!r}: give LABEL=X with X a whole number of pixels, e.g. --mark 'NEAT s1=3010'")
        marks.append((label, int(x)))
    profile = load_profile(args.profile)
    var = args.x_var or profile.progress
    known = set(profile.variables) | set(profile.derived) | set(integration_variables(profile.game))
    if var not in known:
        ap.error(f"--x-var {var!r}: not a variable of the {args.profile} profile (give one, e.g. --x-var x)")
    level = None
    for path in args.movies:
        part = movie_level(path, profile, var)
        if level is None:
            level = part
        elif part.shape[1] > level.shape[1]:
            level = piece(level, part[:, level.shape[1]:], level.shape[1])
    screen_width = min(level.shape[1], 240)
    picture = mark(level, marks, screen_width)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), picture[..., ::-1])
    print(f"{args.out}: the level to x {level.shape[1]:,}, {len(marks)} marks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
