"""Find a scripted run through a Super Mario Bros level by beam search over savestates.

The result, a string of right_only action indices (one per 4-frame agent step), is test data: the
emulator is deterministic, so replaying it from the state reaches the flag every time. Usage:
    .venv/bin/python scripts/find_smb_run.py --state Level1-1 --out tests/data/smb_level1-1_run.txt
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from wrappers import roms
from wrappers.profile import action_masks, load_profile
from wrappers.tracker import GameTracker

SKIP = 4
CHUNK = 8


def patterns() -> list[list[int]]:
    """Candidate 8-step chunks of right_only actions (0 NOOP, 1 R, 2 R+A, 3 R+B, 4 R+A+B)."""
    pats = [[3] * CHUNK, [4] * CHUNK, [1] * CHUNK, [0] * CHUNK, [2] * CHUNK]
    for k in range(1, CHUNK):
        pats.append([4] * k + [3] * (CHUNK - k))
        pats.append([3] * k + [4] * (CHUNK - k))
        pats.append([0] * k + [4] * (CHUNK - k))
    return pats


def main() -> None:
    """Run the search and write the action string."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--state", default="Level1-1")
    ap.add_argument("--beam", type=int, default=6)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import stable_retro

    roms.register()
    profile = load_profile("smb")
    env = stable_retro.make("SuperMarioBros-Nes-v0", args.state, inttype=roms.INTTYPE, render_mode=None)
    env.reset()
    data, em = env.data, env.em
    for name, var in profile.variables.items():
        data.set_variable(name, {"address": var.address, "type": var.type})
    masks, _ = action_masks(profile, "right_only")
    tracker = GameTracker(profile, data.lookup_value)

    def run(state: bytes, actions: list[int]):
        em.set_state(state)
        tracker.reset()
        for a in actions:
            em.set_button_mask(masks[a], 0)
            for _ in range(SKIP):
                em.step()
            res = tracker.step()
            if res.success:
                return em.get_state(), res, True
            if res.terminated:
                return None, res, False
        return em.get_state(), res, False

    start = em.get_state()
    beam = [(0.0, start, [], 0.0)]  # (score, state, actions, x)
    t0 = time.time()
    x_of = lambda: data.lookup_value("xscrollHi") * 256 + data.lookup_value("xscrollLo")  # noqa: E731
    for depth in range(200):
        cands = []
        for _score, state, acts, _x in beam:
            for pat in patterns():
                new_state, res, won = run(state, pat)
                if won:
                    seq = acts + pat[: len(pat)]
                    # trim: replay to find the exact step the flag is reached
                    em.set_state(start)
                    tracker.reset()
                    for i, a in enumerate(seq):
                        em.set_button_mask(masks[a], 0)
                        for _ in range(SKIP):
                            em.step()
                        if tracker.step().success:
                            seq = seq[: i + 1]
                            break
                    with open(args.out, "w") as f:
                        f.write("".join(map(str, seq)) + "\n")
                    print(f"flag after {len(seq)} steps ({len(seq) * SKIP} frames); search {time.time() - t0:.0f}s")
                    return
                if new_state is None:
                    continue
                x = x_of()
                cands.append((x + 0.01 * data.lookup_value("player_x"), new_state, acts + pat, x))
        if not cands:
            raise SystemExit("search died out: every branch dies")
        cands.sort(key=lambda c: -c[0])
        seen, beam = set(), []
        for c in cands:
            key = round(c[0])
            if key in seen:
                continue
            seen.add(key)
            beam.append(c)
            if len(beam) >= args.beam:
                break
        print(f"depth {depth} best x {beam[0][3]:.0f} ({time.time() - t0:.0f}s)", flush=True)
    raise SystemExit("no flag within the depth limit")


if __name__ == "__main__":
    np.set_printoptions(linewidth=200)
    main()
