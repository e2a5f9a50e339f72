"""Start states cut from an episode: ``retrodojo states make SOURCE [--every FRAMES]``.

The source is a run folder or a saved agent (its policy plays one greedy episode from ``--from`` or its
first evaluation state), or a ``.bk2`` movie (replayed). Every ``--every`` emulator frames the emulator's
state is saved, gzip-compressed as stable-retro's own savestates are, into the ROM store beside the game's
states (or ``--out``): ``retrodojo roms list`` shows them and any experiment can start from them
(``states: {Level1-1: 1, Level1-1-at001200: 1}``). A pool of points along a level lets training start where
the agent fails, not only at the level's start.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.errors import UserError


@dataclass
class MadeState:
    """One state written: its name, where, and how far into the episode (frames, the profile's progress)."""

    name: str
    path: Path
    frames: int
    progress: float | None


def _folder(game: str, out: str | Path | None) -> Path:
    from wrappers import roms

    folder = Path(out) if out else roms.store_dir() / roms.canonical_game(game)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_state(game: str, name: str, state: bytes, out: str | Path | None = None) -> Path:
    """Write a raw emulator state as ``name.state`` into the ROM store beside the game's own states (or into
    ``out``), gzip-compressed as stable-retro's are: `roms list` shows it and any experiment starts from it."""
    return _write(_folder(game, out), name, state)


def _write(folder: Path, name: str, state: bytes) -> Path:
    path = folder / f"{name}.state"
    tmp = folder / f".{name}.state.tmp"
    with gzip.open(tmp, "wb") as f:
        f.write(state)
    tmp.replace(path)
    return path


def from_agent(source: Path, every: int, start: str | None = None, out: str | Path | None = None,
               prefix: str | None = None, stochastic: bool = False, seed: int = 0,
               trust_pickles: bool = False) -> list[MadeState]:
    """Play one episode of a saved policy and cut a state every ``every`` frames (the start's included)."""
    import agents.base as agents
    from experiments.run import pick_agent
    from wrappers import make_env

    spec, agent_dir, _note = pick_agent(source)
    agent = agents.load(agent_dir, trust_pickles=trust_pickles)
    states = spec.eval_states() if spec else agent.env_spec.states
    start = start or (states[0] if states else None)
    env_spec = agent.env_spec.model_copy(update={"state": start, "sticky_prob": 0.0 if not stochastic else
                                                 agent.env_spec.sticky_prob})
    folder = _folder(env_spec.game, out)
    prefix = prefix or f"{start or 'default'}-at"
    policy = agent.policy()
    made: list[MadeState] = []
    with make_env(env_spec, seed=seed) as env:
        obs, info = env.reset()
        em = env.unwrapped.em
        frames, next_cut, done, progress = 0, 0, False, 0.0
        recurrent, first = None, np.ones((1,), bool)
        while not done:
            if frames >= next_cut:
                name = f"{prefix}{frames:06d}"
                made.append(MadeState(name, _write(folder, name, em.get_state()), frames, progress))
                next_cut += every
            batch = {k: v[None] for k, v in obs.items()} if isinstance(obs, dict) else obs[None]
            action, recurrent = policy.predict(batch, state=recurrent, episode_start=first,
                                               deterministic=not stochastic)
            first = np.zeros((1,), bool)
            obs, _r, terminated, truncated, info = env.step(action[0])
            frames += info.get("frames", env_spec.frame_skip)
            progress = float(info.get("progress", progress))
            done = terminated or truncated
    return made


def from_movie(movie_path: Path, every: int, out: str | Path | None = None,
               prefix: str | None = None) -> list[MadeState]:
    """Replay a .bk2 movie and cut a state every ``every`` frames (the start's included)."""
    from experiments.replay import movie_env, movie_steps

    prefix = prefix or f"{movie_path.stem}-at"
    made: list[MadeState] = []
    with movie_env(movie_path) as (movie, env):
        folder = _folder(movie.get_game(), out)
        em = env.unwrapped.em
        made.append(MadeState(f"{prefix}{0:06d}", _write(folder, f"{prefix}{0:06d}", em.get_state()), 0, None))
        for frames in movie_steps(movie, env):
            if frames % every == 0:
                name = f"{prefix}{frames:06d}"
                made.append(MadeState(name, _write(folder, name, em.get_state()), frames, None))
    return made


def make_states(source: str | Path, every: int = 600, start: str | None = None, out: str | Path | None = None,
                prefix: str | None = None, trust_pickles: bool = False) -> list[MadeState]:
    """States along an episode of ``source``: a run folder, a saved agent folder or a .bk2 movie (an earlier
    version's pickled agent only with ``trust_pickles``)."""
    if every < 1:
        raise UserError(f"--every {every}: give a positive number of frames")
    path = Path(source)
    if path.suffix == ".bk2":
        return from_movie(path, every, out, prefix)
    if not path.exists():
        raise UserError(f"{path}: no such run, saved agent or .bk2 movie.")
    return from_agent(path, every, start, out, prefix, trust_pickles=trust_pickles)
