"""Raw emulator speed per console: what one emulator frame costs on Atari 2600, NES and Genesis.

    python benchmarks/emulator_speed.py [--seconds 5] [--rounds 3] [--json]

Each game's ``em.step()`` alone, random buttons held 4 frames, back to the start state every 1,000 frames,
one core, in a fresh process per measurement; the games alternate round by round so that a busy machine
slows them alike. Prints frames/s per game (median over rounds) and each game's cost per frame against
Atari Boxing's. docs/sf2.md uses the Genesis/Atari ratio to carry Boxing's machine times over to Street
Fighter II (a Genesis game on the same core as Airstriker, the Genesis ROM bundled with stable-retro).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._proc import run_isolated, stamp  # noqa: E402

GAMES = {"atari": ("Boxing-Atari2600", "Start"), "nes": ("SuperMarioBros-Nes", "Level1-1"),
         "genesis": ("Airstriker-Genesis", "Level1")}


def bench(game: str, state: str, seconds: float, q) -> None:
    """Frames/s of ``em.step()`` on ``game`` from ``state``, put on ``q``."""
    import numpy as np
    import stable_retro

    from wrappers import roms

    roms.register()
    env = stable_retro.make(roms.canonical_game(game), state, inttype=roms.INTTYPE, render_mode=None)
    env.reset()
    em, rng, n = env.em, np.random.default_rng(0), env.action_space.shape[0]
    start = em.get_state()
    frames, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(250):
            em.set_button_mask(rng.integers(0, 2, n).astype(np.uint8), 0)
            for _ in range(4):
                em.step()
        frames += 1000
        em.set_state(start)
    q.put(frames / (time.perf_counter() - t0))
    env.close()


def main() -> int:
    """Measure every console, print the table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print a JSON object")
    args = ap.parse_args()
    if args.seconds <= 0 or args.rounds < 1:
        ap.error("--seconds must be above 0 and --rounds at least 1")
    import numpy as np

    runs: dict[str, list[float]] = {k: [] for k in GAMES}
    for _ in range(args.rounds):
        for key, (game, state) in GAMES.items():
            runs[key].append(run_isolated(bench, game, state, args.seconds))
    med = {k: float(np.median(v)) for k, v in runs.items()}
    out = {"seconds": args.seconds, "rounds": args.rounds,
           **{f"{k}_game": GAMES[k][0] for k in GAMES},
           **{f"{k}_fps": round(med[k]) for k in GAMES},
           **{f"{k}_fps_rounds": [round(v) for v in runs[k]] for k in GAMES},
           **{f"{k}_cost_vs_atari": round(med["atari"] / med[k], 2) for k in GAMES}}
    if args.json:
        print(json.dumps({**stamp(), **out}, indent=2))
    else:
        for k, (game, _) in GAMES.items():
            print(f"{game:24s} {med[k]:8,.0f} frames/s (rounds {', '.join(f'{v:,.0f}' for v in runs[k])}); "
                  f"a frame costs {out[f'{k}_cost_vs_atari']:.2f}x Atari's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
