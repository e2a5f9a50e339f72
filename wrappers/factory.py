"""Env factory: one spec, the same preprocessed game for every agent.

Stack, inside out: ``RetroEnv`` (stable-retro, ``render_mode=None``) -> :class:`RetroGame` (frame skip,
max-pool, sticky actions, state pool, no-op starts) -> :class:`Discretizer` or :class:`ButtonActions` ->
:class:`ProfileReward` (shaped reward, done and success from RAM) -> :class:`NoProgressEnd` ->
:class:`FrameLimit` -> :class:`EpisodeStats` -> observation (:class:`GrayResize` + :class:`FrameStack`, or
:class:`SmbTiles`) -> :class:`RewardScaleClip`.

stable-retro allows one emulator per process, so :func:`make_vec_env` runs each env in a worker process
(``SubprocVecEnv``) built from a picklable thunk (:func:`env_thunk`).
"""

from __future__ import annotations

import functools
from typing import Literal

import gymnasium as gym
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wrappers import roms
from wrappers.action import ButtonActions, Discretizer
from wrappers.episode import EpisodeStats, FrameLimit, NoProgressEnd
from wrappers.profile import Profile, action_masks, load_profile, with_rewards
from wrappers.retro_game import RetroGame
from wrappers.stateful_reward import ProfileReward, RewardScaleClip
from wrappers.transform_observation import FrameStack, GrayResize


class EnvSpec(BaseModel):
    """Everything that defines the game an agent sees. Plain data: it pickles into worker processes."""

    model_config = ConfigDict(extra="forbid")

    game: str = Field(description="stable-retro integration, e.g. SuperMarioBros-Nes (the -v0 is optional).")
    state: str | list[str] | None = Field(
        default=None, description="Start state, or a list: a start-state pool drawn from at each reset.")
    profile: str = Field(description="Game profile name under configs/games, or a YAML path.")
    frame_skip: int = Field(default=4, ge=1, le=64, description="Emulator frames per agent step.")
    max_pool: bool = Field(default=True, description="Observe the max of the window's last two frames.")
    sticky_prob: float = Field(default=0.0, ge=0.0, lt=1.0, description="Prob. the last action sticks a frame.")
    noop_max: int = Field(default=0, ge=0, description="Random 0..noop_max no-op frames at reset.")
    obs: Literal["pixels", "tiles"] = Field(
        default="pixels", description="pixels: the screen; tiles: SMB's tile grid from RAM (SMB only).")
    resize: tuple[int, int] | None = Field(default=(84, 84), description="(height, width); null keeps size.")
    grayscale: bool = True
    frame_stack: int = Field(default=4, ge=1, le=32)
    stuck_frames: int | None = Field(
        default=600, gt=0, description="End after this many frames without a new progress maximum.")
    max_frames: int | None = Field(default=18_000, gt=0, description="Episode time limit in frames.")
    actions: str | None = Field(
        default=None, description="Action set of the profile; 'buttons' for raw buttons; null: default.")
    rewards: dict[str, float] | None = Field(
        default=None, description="Re-weight the profile's reward terms: {term: weight, or value of an event "
                                  "term}, e.g. {death: -50, coins: 1}.")
    reward_scale: float = Field(default=1.0, gt=0)
    reward_clip: float | None = Field(default=None, gt=0, description="Clip rewards to [-c, c] after scale.")
    fast: bool = Field(default=True, description="Fast frame skip (identical results, less work).")
    render_mode: Literal["rgb_array", "human"] | None = None
    record_dir: str | None = Field(default=None, description="Write a .bk2 movie per episode here.")

    @field_validator("state")
    @classmethod
    def _states_nonempty(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("an empty state list; give at least one state or leave it out")
        return v

    @model_validator(mode="after")
    def _tiles_shape(self) -> EnvSpec:
        if self.obs == "tiles" and self.frame_stack < 1:
            raise ValueError("frame_stack must be >= 1")
        return self

    @property
    def states(self) -> list[str] | None:
        """The start-state pool (None: the game's default state)."""
        if self.state is None:
            return None
        return [self.state] if isinstance(self.state, str) else list(self.state)


def validate_spec(spec: EnvSpec) -> tuple[str, Profile]:
    """Check game, ROM, states, profile and action set without making an emulator.

    Returns:
        (canonical game name, profile).

    Raises:
        roms.RomError: unknown game, missing ROM or unknown state.
        wrappers.profile.ProfileError: a bad profile or action set.
    """
    game = roms.canonical_game(spec.game)
    roms.require_rom(game)
    known = roms.states(game)
    for s in spec.states or []:
        if s not in known:
            import difflib

            near = difflib.get_close_matches(s, known, n=1)
            hint = f" Did you mean {near[0]}?" if near else ""
            raise roms.RomError(f"Unknown state '{s}' for {roms._short(game)}.{hint} Its states are: "
                                f"{', '.join(known)}.")
    profile = with_rewards(load_profile(spec.profile, game=game), spec.rewards)
    if spec.actions not in (None, "buttons"):
        action_masks(profile, spec.actions)
    if spec.obs == "tiles" and not roms._short(game).startswith("SuperMarioBros-Nes"):
        raise roms.RomError(f"obs: tiles reads Super Mario Bros' RAM and does not work for {spec.game}.")
    return game, profile


def make_env(spec: EnvSpec | dict, seed: int | None = None) -> gym.Env:
    """Build one env from a spec (an :class:`EnvSpec` or a plain dict of its fields).

    The emulator is created here, in the calling process: at most one live env per process.
    ``seed`` seeds the env's own randomness (sticky actions, no-ops, state pool) on its first reset.
    """
    import stable_retro

    if isinstance(spec, dict):
        spec = EnvSpec.model_validate(spec)
    roms.register()
    game, profile = validate_spec(spec)
    states = spec.states
    base = stable_retro.make(
        game,
        state=states[0] if states else stable_retro.State.DEFAULT,
        inttype=roms.INTTYPE,
        render_mode=spec.render_mode,
        record=spec.record_dir or False,
    )
    env: gym.Env = RetroGame(base, frame_skip=spec.frame_skip, max_pool=spec.max_pool,
                             sticky_prob=spec.sticky_prob, states=states, noop_max=spec.noop_max,
                             scenario=profile.needs_scenario(), fast=spec.fast)
    action_set = spec.actions or profile.default_actions
    if action_set in (None, "buttons"):
        env = ButtonActions(env)
    else:
        masks, labels = action_masks(profile, action_set)
        env = Discretizer(env, masks, labels)
    env = ProfileReward(env, profile)
    if spec.stuck_frames:
        env = NoProgressEnd(env, spec.stuck_frames, spec.frame_skip)
    if spec.max_frames:
        env = FrameLimit(env, spec.max_frames, spec.frame_skip)
    env = EpisodeStats(env, spec.frame_skip)
    if spec.obs == "tiles":
        from wrappers.tiles import SmbTiles

        env = SmbTiles(env)
    else:
        env = GrayResize(env, spec.resize, spec.grayscale)
    if spec.frame_stack > 1:
        env = FrameStack(env, spec.frame_stack)
    if spec.reward_scale != 1.0 or spec.reward_clip is not None:
        env = RewardScaleClip(env, spec.reward_scale, spec.reward_clip)
    if seed is not None:
        env.action_space.seed(seed)
        env = SeedOnFirstReset(env, seed)
    return env


class SeedOnFirstReset(gym.Wrapper):
    """Pass ``seed`` to the first ``reset`` that has none: vec envs and evaluators reset without one."""

    def __init__(self, env: gym.Env, seed: int):
        super().__init__(env)
        self._seed: int | None = seed

    def reset(self, *, seed=None, options=None):
        """Reset, seeding the first time."""
        if seed is None and self._seed is not None:
            seed = self._seed
        self._seed = None
        return self.env.reset(seed=seed, options=options)


def _build(spec_data: dict, seed: int | None) -> gym.Env:
    return make_env(EnvSpec.model_validate(spec_data), seed=seed)


def env_thunk(spec: EnvSpec, seed: int | None = None) -> functools.partial:
    """A picklable zero-argument factory for worker processes (``SubprocVecEnv``, NEAT workers)."""
    return functools.partial(_build, spec.model_dump(), seed)


def make_vec_env(spec: EnvSpec, n_envs: int, seed: int = 0, local: bool = True, start_method: str | None = None):
    """Build ``n_envs`` envs in worker processes (``SubprocVecEnv``), seeded ``seed + rank``.

    Observations come out (n_envs, frame_stack*C, H, W) uint8, the layout SB3's ``CnnPolicy`` expects,
    through shared memory (:class:`RetroVecEnv`). Env 0 runs in the calling process unless ``local`` is
    false; the caller must then hold no other emulator while the vec env lives.
    """
    from wrappers.vec_env import RetroVecEnv

    validate_spec(spec)  # fail here with a clear message, not inside a worker
    thunks = [env_thunk(spec, seed + rank) for rank in range(n_envs)]
    return RetroVecEnv(thunks, local=local, start_method=start_method)
