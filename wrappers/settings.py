"""The game an agent sees, declared once: env settings, the env spec, and the one check of both.

:class:`EnvSettings` is the shared wrapper stack (an experiment file's ``env:`` section); :class:`EnvSpec`
adds the game, its start state(s) and its profile. A new wrapper setting is one field of
:class:`EnvSettings`: the experiment schema, the env factory and the saved agents all read it from here.

:func:`env_problems` is the only place that checks a spec against stable-retro's integration files (game,
ROM, states, profile, action set, reward weights, observation kind). It returns every problem with its
key, so the experiment loader can report them all at once under their YAML paths, and the factory can
refuse a bad spec before any emulator or worker process starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from wrappers.errors import UserError
from wrappers.models import StrictModel  # re-exported: agents and experiments build their settings on it

#: (key, message): a problem of one field; keys are field names, ``state[1]`` for the second pool state.
Problem = tuple[str, str]


class EnvSettings(StrictModel):
    """The shared wrapper stack: frame skip, observation, episode ends, actions and reward shaping.

    Example:
        >>> EnvSettings(frame_skip=4, obs="tiles", frame_stack=1).stuck_frames
        600
    """

    frame_skip: int = Field(default=4, ge=1, le=64, description="Emulator frames per agent step.")
    max_pool: bool = Field(default=True, description="Observe the max of the window's last two frames.")
    sticky_prob: float = Field(default=0.0, ge=0.0, lt=1.0, description="Prob. the last action sticks a frame.")
    noop_max: int = Field(default=0, ge=0, description="Random 0..noop_max no-op frames at reset.")
    obs: Literal["pixels", "tiles", "ram", "pixels+ram"] = Field(
        default="pixels", description="pixels: the screen; tiles: SMB's tile grid from RAM (SMB only); ram: the "
                                      "profile's observe variables, scaled to 0..1; pixels+ram: both (a dict).")
    resize: tuple[int, int] | None = Field(default=(84, 84), description="[height, width]; null keeps the size.")
    grayscale: bool = Field(default=True, description="One luma channel instead of RGB.")
    frame_stack: int = Field(default=4, ge=1, le=32, description="Observations stacked along the channels.")
    ram_stack: int | None = Field(
        default=None, ge=1, le=32, description="obs: pixels+ram only: readings of the RAM variables side by side "
                                               "(default 1, the newest; frame_stack stacks the screens).")
    stuck_frames: int | None = Field(
        default=600, gt=0, description="End after this many frames without a new progress maximum.")
    max_frames: int | None = Field(default=18_000, gt=0, description="Episode time limit in frames.")
    actions: str | None = Field(
        default=None, description="Action set of the profile; 'buttons' for raw buttons; null: the default.")
    rewards: dict[str, float] | None = Field(
        default=None, description="Re-weight the profile's reward terms: {term: weight, or value of an event "
                                  "term}, e.g. {death: -50, coins: 1}.")
    reward_scale: float = Field(default=1.0, gt=0, description="Multiply rewards seen by learners.")
    reward_clip: float | None = Field(default=None, gt=0, description="Clip rewards to [-c, c] after scale.")
    fast: bool = Field(default=True, description="Fast frame skip (identical results, less work).")
    pool_weighting: Literal["fixed", "failures"] = Field(
        default="fixed", description="How a start-state pool is drawn: by its fixed weights, or 'failures': each "
                                     "weight times the state's failure rate so far in this env (start more often "
                                     "where the agent fails).")
    episode: Literal["round", "match", "run"] = Field(
        default="match", description="Fighting games (a profile with a fight section): one episode is a round, "
                                     "a match, or the whole run to the continue screen.")


class EnvSpec(EnvSettings):
    """Everything that defines the game an agent sees. Plain data: it pickles into worker processes.

    Example:
        >>> spec = EnvSpec(game="SuperMarioBros-Nes", state="Level1-1", profile="smb", actions="right_only")
        >>> spec.states
        ['Level1-1']
    """

    game: str = Field(description="stable-retro integration, e.g. SuperMarioBros-Nes (the -v0 is optional).")
    state: str | list[str] | dict[str, float] | None = Field(
        default=None, description="Start state, or a pool drawn from at each reset: a list (uniformly) or "
                                  "{state: weight} (in proportion to the weights).")
    profile: str = Field(description="Game profile name (configs/games), a YAML path, or 'scenario'.")
    render_mode: Literal["rgb_array", "human"] | None = Field(
        default=None, description="Rendering for humans or videos; None (headless) for training.")
    record_dir: str | None = Field(default=None, description="Write a .bk2 movie per episode here.")

    @field_validator("state")
    @classmethod
    def _states_nonempty(cls, v):
        if isinstance(v, (list, dict)) and not v:
            raise ValueError("an empty state pool; give at least one state or leave it out")
        if isinstance(v, dict) and any(w <= 0 for w in v.values()):
            raise ValueError("state weights must be > 0")
        return v

    @property
    def states(self) -> list[str] | None:
        """The start-state pool (None: the game's default state)."""
        if self.state is None:
            return None
        return [self.state] if isinstance(self.state, str) else list(self.state)

    @property
    def state_weights(self) -> list[float] | None:
        """The pool's weights, in the order of :attr:`states` (None: uniform)."""
        return list(self.state.values()) if isinstance(self.state, dict) else None

    @classmethod
    def from_settings(cls, settings: EnvSettings, **fields) -> EnvSpec:
        """An env spec from ``env:`` settings plus the game fields (``game``, ``state``, ``profile``)."""
        return cls(**settings.model_dump(), **fields)

    def check(self, require_rom: bool = True, profile=None):
        """Check the spec against stable-retro (see :func:`env_problems`) and return what the factory needs.

        Args:
            require_rom: the game's ROM must be imported.
            profile: an already loaded :class:`wrappers.profile.Profile` to use instead of loading
                ``self.profile`` (it travels to workers on machines without the profile's file).

        Returns:
            (canonical game name, the profile with the spec's reward weights applied).

        Raises:
            EnvError: listing every problem.
        """
        problems = env_problems(self.model_dump(), require_rom=require_rom, profile=profile)
        if problems:
            raise EnvError(problems)
        from wrappers import roms
        from wrappers.profile import load_profile, with_rewards

        game = roms.canonical_game(self.game)
        return game, with_rewards(profile or load_profile(self.profile, game=game), self.rewards)


class EnvError(UserError):
    """An env spec names something stable-retro or the profile does not have; one line per problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [f"{key}: {msg}" for key, msg in problems]
        super().__init__(lines[0] if len(lines) == 1 else
                         f"the env has {len(lines)} problems:\n  " + "\n  ".join(lines))


def state_problems(game: str, states: Any, key: str = "state") -> list[Problem]:
    """Problems of a state name or list of names for ``game`` (an integration name stable-retro knows)."""
    from wrappers import roms

    names = [states] if isinstance(states, str) else list(states) if isinstance(states, (list, dict)) else []
    known = roms.states(game)
    out = []
    for i, s in enumerate(names):
        if s in known:
            continue
        where = key if isinstance(states, str) else f"{key}.{s}" if isinstance(states, dict) else f"{key}[{i}]"
        near = difflib.get_close_matches(str(s), known, n=1)
        hint = f" Did you mean {near[0]}?" if near else ""
        out.append((where, f"unknown state '{s}' for {roms.short_name(game)}.{hint} Its states: {', '.join(known)}"))
    return out


def env_problems(data: Mapping[str, Any], require_rom: bool = True, profile=None) -> list[Problem]:
    """Every problem of an env spec's game, ROM, states, profile, action set, reward weights and obs kind.

    Checked against stable-retro's integration files and the profile, without making an emulator.
    ``data`` holds :class:`EnvSpec` fields as plain data, possibly invalid: a value of the wrong type is
    skipped here (the model reports it), so one call finds every problem the model cannot.

    Args:
        data: env spec fields (``game``, ``state``, ``profile``, ``actions``, ``rewards``, ``obs``, ...).
        require_rom: also require the game's ROM to be imported (off to check a config for a game whose
            ROM this machine lacks).
        profile: an already loaded profile to check against instead of loading ``data["profile"]``.

    Returns:
        (key, message) pairs; keys are field names (``state[1]``, ``actions``).
    """
    from wrappers import roms
    from wrappers.profile import ProfileError, action_masks, load_profile

    game = data.get("game")
    if not isinstance(game, str):
        return []
    try:
        canonical = roms.canonical_game(game)
    except roms.RomError as e:
        return [("game", str(e))]
    problems: list[Problem] = []
    if require_rom:
        try:
            roms.require_rom(canonical)
        except roms.RomError as e:
            problems.append(("game", str(e)))
    problems += state_problems(canonical, data.get("state"))
    profile_name = data.get("profile")
    if profile is None:
        if not isinstance(profile_name, str):
            return problems
        try:
            profile = load_profile(profile_name, game=canonical)
        except ProfileError as e:
            return [*problems, ("profile", str(e))]
    actions = data.get("actions")
    if isinstance(actions, str) and actions != "buttons":
        try:
            action_masks(profile, actions)
        except ProfileError:
            near = difflib.get_close_matches(actions, list(profile.actions), n=1)
            hint = f", did you mean {near[0]}?" if near else ""
            problems.append(("actions", f"no action set '{actions}' in profile {profile.name}{hint} "
                                        f"(sets: {', '.join(profile.actions) or 'none'}, or 'buttons')"))
    rewards = data.get("rewards")
    if isinstance(rewards, dict):
        unknown = [k for k in rewards if k not in profile.rewards]
        if unknown:
            problems.append(("rewards", f"unknown reward term(s) {', '.join(map(str, unknown))} for profile "
                                        f"{profile.name} (its terms: {', '.join(profile.rewards)})"))
    if data.get("obs") == "tiles" and not roms.short_name(canonical).startswith("SuperMarioBros-Nes"):
        problems.append(("obs", f"tiles reads Super Mario Bros' RAM and does not work for {game}"))
    ram_stack = data.get("ram_stack", 1)
    if isinstance(ram_stack, int) and ram_stack > 1 and data.get("obs") != "pixels+ram":
        problems.append(("ram_stack", "stacks the RAM part of obs: pixels+ram; with obs: ram, frame_stack stacks "
                                      "the readings: leave ram_stack out"))
    if data.get("obs") in ("ram", "pixels+ram") and not profile.observe:
        problems.append(("obs", f"{data['obs']} needs the variables to observe: profile {profile.name} has no "
                                "observe section"))
    return problems
