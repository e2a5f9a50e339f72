"""A backward curriculum from the agent's own savestates (the experiment's ``curriculum:`` section).

The method follows Salimans and Chen 2018 (learning Montezuma's Revenge from one demonstration: start
episodes near the end of a trajectory, move the start backwards as the agent succeeds from there) and
Go-Explore (Ecoffet et al. 2021: return to a promising emulator state, then explore from it). Here the
trajectory is the agent's own best evaluation episode, so no demonstration is needed:

- **Source states.** Every evaluation plays the real start; along each episode the emulator's state is cut
  every ``every_frames`` frames. When the best episode goes further than any before (the *frontier*, in the
  profile's progress units), its states become the curriculum's source.
- **Where to train.** The pool is the real start plus ``size`` source states just behind the frontier (the
  last ``margin_frames`` before the episode ended are skipped: there the fall or the hit is already under
  way). Training episodes start from the real start with weight ``start_share``, from the pool's states
  with the rest.
- **The backward step.** An episode from a pool state succeeds when it passes the frontier by ``beyond``
  (or meets the profile's success rule). Once ``advance_at`` of the last ``window`` such episodes succeed,
  the pool moves ``stride`` states back along the source, and the real start's share grows in proportion,
  reaching 1 when the pool has walked back to the start. A new frontier starts the walk again.
- **When.** From the first evaluation, or once the best evaluation progress has not risen for
  ``stall_frames`` frames.

Everything is env-side: the run pushes the pool to the training envs (``RetroGame.set_pool``) and NEAT
plays every pool state with every genome (shared starts, fitness weighted by the pool's weights). The
curriculum's state and its source states are saved in each checkpoint, so a resumed run continues exactly.
Evaluation always starts from the real start.
"""

from __future__ import annotations

import gzip
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from experiments.errors import UserError
from wrappers.errors import read_json_file
from wrappers.retro_game import ADDED_PREFIX as PREFIX
from wrappers.retro_game import is_added_state as is_curriculum_state
from wrappers.settings import StrictModel

FORMAT = 1
#: The most a saved start state may unpack to (an emulator state is kilobytes; a Genesis one ~300 KB).
MAX_STATE_BYTES = 16 * 1024 * 1024


class CurriculumSettings(StrictModel):
    """``curriculum:``: a backward curriculum from the agent's own evaluation episodes (module docstring).

    Example:
        >>> CurriculumSettings(size=3).start_share
        0.5
    """

    every_frames: int = Field(default=60, ge=1, description="Cut a state along the best episode every this "
                                                            "many emulator frames.")
    margin_frames: int = Field(default=60, ge=0, description="Leave out states cut this close to the episode's "
                                                             "end (the fall or hit already under way).")
    size: int = Field(default=2, ge=1, description="Source states in the pool at once.")
    stride: int = Field(default=1, ge=1, description="Source states the pool moves back at each backward step.")
    start_share: float = Field(default=0.5, gt=0.0, lt=1.0, description="Weight of the real start while the "
                                                                       "pool sits at the frontier.")
    advance_at: float = Field(default=0.5, gt=0.0, le=1.0, description="Success rate from the pool's states "
                                                                      "that moves the pool back.")
    window: int = Field(default=10, ge=1, description="Episodes from the pool's states the success rate is "
                                                      "taken over.")
    beyond: float = Field(default=0.0, ge=0.0, description="Success from a pool state: getting further than the "
                                                           "frontier by more than this (or the profile's success).")
    stall_frames: int = Field(default=0, ge=0, description="Start once the best evaluation progress has not "
                                                           "risen for this many frames (0: from the start).")


@dataclass
class SourceState:
    """A state cut along the best episode: its name, and frames, progress and shaped return into it."""

    name: str
    frames: int
    progress: float
    ret: float = 0.0
    action: int | list[float] | None = None  # the action taken just before the cut


class CurriculumError(UserError):
    """A curriculum checkpoint that cannot be read."""


class Curriculum:
    """The curriculum's state and its decisions (see the module docstring); owned by the run."""

    def __init__(self, settings: CurriculumSettings, start: str):
        self.s = settings
        self.start = start  # the real start's state name
        self.active = settings.stall_frames == 0
        self.best_progress = float("-inf")
        self.best_frames = 0  # when the best evaluation progress last rose
        self.frontier: float | None = None
        self.source: list[SourceState] = []  # along the frontier episode, usable ones only, in order
        self.states: dict[str, bytes] = {}
        self.step = 0  # how many source states the pool has moved back from the frontier
        self.version = 0  # counts pool changes
        self.recent: deque[bool] = deque(maxlen=settings.window)
        self.per_state: dict[str, list[int]] = {}  # name -> [successes, episodes] in this pool
        self.last_rate: float | None = None  # the success rate that made the last backward step

    # ------------------------------------------------------------------ decisions

    def after_eval(self, frames: int, episodes: list[dict]) -> bool:
        """Take an evaluation's episodes (from the real start, with ``cuts``); True when the pool changed."""
        if not episodes:
            return False
        best = max(episodes, key=lambda e: (e["progress"], e["frames"]))
        if best["progress"] > self.best_progress:
            self.best_progress, self.best_frames = float(best["progress"]), frames
        if not self.active and frames - self.best_frames >= self.s.stall_frames:
            self.active = True
        if not self.active or (self.frontier is not None and best["progress"] <= self.frontier):
            return False
        cuts = best.get("cuts", [])
        # where the episode first stood at its furthest: after that it only stalled (an episode ended for
        # making no progress spends its last seconds against the wall), and those states teach nothing new
        reached = next((c["frames"] for c in cuts if c["progress"] >= best["progress"]), best["frames"])
        usable = [c for c in cuts if 0 < c["frames"] <= min(best["frames"], reached) - self.s.margin_frames]
        if not usable:
            return False
        self.frontier = float(best["progress"])
        self.source = [SourceState(f"{PREFIX}p{c['progress']:07.1f}-f{c['frames']:06d}", int(c["frames"]),
                                   float(c["progress"]), float(c.get("return", 0.0)), c.get("action"))
                       for c in usable]
        self.states = {s.name: c["state"] for s, c in zip(self.source, usable)}
        self.step = 0
        self.last_rate = None
        self._new_pool()
        return True

    def observe(self, episodes: list[dict]) -> bool:
        """Take training episodes; those from pool states count towards the backward step. True when the
        pool moved."""
        names = set(self.pool_states())
        for e in episodes:
            name = e.get("state")
            if name not in names:
                continue
            src = self._by_name(name)
            ok = bool(e["success"]) or src.progress + e["progress"] > self.frontier + self.s.beyond
            self.recent.append(ok)
            tally = self.per_state.setdefault(name, [0, 0])
            tally[0] += ok
            tally[1] += 1
        if (len(self.recent) >= self.s.window and sum(self.recent) / len(self.recent) >= self.s.advance_at
                and names):
            self.last_rate = sum(self.recent) / len(self.recent)
            self.step += self.s.stride
            self._new_pool()
            return True
        return False

    def _new_pool(self) -> None:
        self.version += 1
        self.recent.clear()
        self.per_state = {}

    def _by_name(self, name: str) -> SourceState:
        return next(s for s in self.source if s.name == name)

    # ------------------------------------------------------------------ the pool

    def pool_states(self) -> list[str]:
        """Names of the source states in the pool now (none before the curriculum starts)."""
        if not self.active or not self.source:
            return []
        end = len(self.source) - self.step
        return [s.name for s in self.source[max(0, end - self.s.size):max(0, end)]]

    def start_share(self) -> float:
        """The real start's weight: ``start_share`` at the frontier, rising to 1 at the level's start."""
        if not self.pool_states():
            return 1.0
        walked = min(1.0, self.step / max(1, len(self.source)))
        return self.s.start_share + (1.0 - self.s.start_share) * walked

    def pool(self) -> tuple[dict[str, bytes], dict[str, float]]:
        """(extra states by name, weights by name including the real start) for ``RetroGame.set_pool``."""
        names = self.pool_states()
        share = self.start_share()
        weights = {self.start: share, **{n: (1.0 - share) / len(names) for n in names}} if names else {}
        return {n: self.states[n] for n in names}, weights

    def offsets(self) -> dict[str, float]:
        """The source episode's shaped return up to each pool state: added to an episode's return from that
        state, it scores the episode as a whole one (the source's play up to there, then this one), on the
        scale of an episode from the real start. NEAT's fitness over shared starts uses it, so fitness does
        not drop when the pool starts or moves (elitism, the champion and stagnation compare across it)."""
        return {n: self._by_name(n).ret for n in self.pool_states()}

    def actions(self) -> dict[str, int | list[float] | None]:
        """The action the source episode took just before each pool state (a policy that sees its last
        action starts there seeing it, as it did when the state was cut)."""
        return {n: self._by_name(n).action for n in self.pool_states()}

    def scalars(self) -> dict[str, float]:
        """What TensorBoard shows under ``curriculum/``."""
        out = {"curriculum/active": float(self.active), "curriculum/states": float(len(self.pool_states())),
               "curriculum/start_share": self.start_share(), "curriculum/step": float(self.step)}
        if self.frontier is not None:
            out["curriculum/frontier_x"] = self.frontier
        if self.recent:
            out["curriculum/success"] = sum(self.recent) / len(self.recent)
        elif self.last_rate is not None:  # just stepped back: the rate that did it
            out["curriculum/success"] = self.last_rate
        for name, (ok, n) in self.per_state.items():
            out[f"curriculum/success/at{self._by_name(name).progress:06.0f}"] = ok / n
        return out

    # ------------------------------------------------------------------ checkpoints

    def save(self, folder: Path) -> None:
        """Write ``curriculum.json`` and the source states (gzip, as stable-retro's savestates) into ``folder``."""
        folder = Path(folder)
        (folder / "curriculum").mkdir(parents=True, exist_ok=True)
        for name, data in self.states.items():
            with gzip.open(folder / "curriculum" / f"{name}.state", "wb", compresslevel=3) as f:
                f.write(data)
        doc = {"format": FORMAT, "start": self.start, "active": self.active, "best_progress": self.best_progress
               if self.best_progress != float("-inf") else None, "best_frames": self.best_frames,
               "frontier": self.frontier, "source": [vars(s) for s in self.source], "step": self.step,
               "version": self.version, "recent": list(self.recent), "per_state": self.per_state,
               "last_rate": self.last_rate}
        (folder / "curriculum.json").write_text(json.dumps(doc, indent=1))

    def load(self, folder: Path) -> None:
        """Restore from a checkpoint folder written by :meth:`save` (a checkpoint without one: a run that had
        no curriculum yet, which starts it fresh)."""
        path = Path(folder) / "curriculum.json"
        if not path.is_file():
            return
        fix = f"Delete the checkpoint folder {Path(folder).name} to resume from the one before it."
        doc = read_json_file(path, "curriculum record", fix, error=CurriculumError)
        try:
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            source = [SourceState(str(s["name"]), int(s["frames"]), float(s["progress"]), float(s.get("ret", 0)),
                                  _action(s.get("action"))) for s in doc["source"]]
            states = {}
            for s in source:
                if not s.name.startswith(PREFIX) or "/" in s.name or "\\" in s.name:
                    raise ValueError(f"bad state name {s.name!r}")
                with gzip.open(Path(folder) / "curriculum" / f"{s.name}.state", "rb") as f:
                    states[s.name] = f.read(MAX_STATE_BYTES + 1)  # a state is kilobytes: no gzip bomb
                if len(states[s.name]) > MAX_STATE_BYTES:
                    raise ValueError(f"state {s.name} unpacks to more than {MAX_STATE_BYTES:,} bytes")
            self.active = bool(doc["active"])
            self.best_progress = float("-inf") if doc["best_progress"] is None else float(doc["best_progress"])
            self.best_frames = int(doc["best_frames"])
            self.frontier = None if doc["frontier"] is None else float(doc["frontier"])
            self.source, self.states = source, states
            self.step, self.version = int(doc["step"]), int(doc["version"])
            self.recent = deque((bool(x) for x in doc["recent"]), maxlen=self.s.window)
            self.per_state = {str(k): [int(v[0]), int(v[1])] for k, v in doc["per_state"].items()}
            if set(self.per_state) - {s.name for s in source}:
                raise ValueError("success counts for states that are not in the source")
            self.last_rate = None if doc.get("last_rate") is None else float(doc["last_rate"])
        except (OSError, ValueError, KeyError, TypeError, EOFError, gzip.BadGzipFile) as e:
            raise CurriculumError(f"{path}: the checkpoint's curriculum is unreadable ({type(e).__name__}: {e}). "
                                  f"{fix}") from None

__all__ = ["Curriculum", "CurriculumError", "CurriculumSettings", "SourceState", "is_curriculum_state"]


def _action(value):
    """An action as saved in curriculum.json: an index, a list of button values, or None."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, list) and len(value) <= 64 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                           for v in value):
        return [float(v) for v in value]
    raise ValueError(f"bad action {value!r}")
