"""Env factory: one spec, the same preprocessed game for every agent.

Stack, inside out: ``RetroEnv`` (stable-retro, ``render_mode=None``) -> :class:`RetroGame` (frame skip,
max-pool, sticky actions, state pool, no-op starts) -> :class:`Discretizer` or :class:`ButtonActions` ->
:class:`ProfileReward` (shaped reward, done and success from RAM) -> :class:`NoProgressEnd` ->
:class:`FrameLimit` -> :class:`EpisodeStats` -> observation (:class:`GrayResize` + :class:`FrameStack`,
:class:`SmbTiles`, or :class:`RamObservation` of the profile's variables, alone or beside the pixels) ->
:class:`RewardScaleClip`.

stable-retro allows one emulator per process, so :func:`make_vec_env` runs each env in a worker process
(:class:`wrappers.vec_env.RetroVecEnv`) built from a picklable thunk (:func:`env_thunk`).
"""

from __future__ import annotations

import functools

import gymnasium as gym

from wrappers import roms
from wrappers.action import ButtonActions, Discretizer
from wrappers.episode import EpisodeStats, FrameLimit, NoProgressEnd
from wrappers.profile import action_set
from wrappers.retro_game import RetroGame
from wrappers.settings import EnvSpec
from wrappers.stateful_reward import ProfileReward, RewardScaleClip
from wrappers.tracker import condition_reader
from wrappers.transform_observation import FrameStack, GrayResize, RamObservation


def make_env(spec: EnvSpec | dict, seed: int | None = None, profile=None) -> gym.Env:
    """Build one env from a spec (an :class:`EnvSpec` or a plain dict of its fields).

    The emulator is created here, in the calling process: at most one live env per process.
    ``seed`` seeds the env's own randomness (sticky actions, no-ops, state pool) on its first reset.
    ``profile`` is a loaded profile to use instead of loading ``spec.profile`` (a worker on another machine
    gets the profile itself, not a path that exists only on the driver's).
    """
    import stable_retro

    if isinstance(spec, dict):
        spec = EnvSpec.model_validate(spec)
    roms.register()
    game, profile = spec.check(profile=profile)
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
                             state_weights=spec.state_weights,
                             failure_weighting=spec.pool_weighting == "failures",
                             scenario=profile.needs_scenario(), fast=spec.fast,
                             exact_added=spec.obs in ("tiles", "ram"))
    set_name = spec.actions or profile.default_actions
    if set_name in (None, "buttons"):
        env = ButtonActions(env)
    else:
        actions = action_set(profile, set_name)
        facing_left = condition_reader(profile, profile.mirror, base.data.lookup_value) \
            if profile.mirror and actions.has_macros else None
        env = Discretizer.from_action_set(env, actions, facing_left)
    env = ProfileReward(env, profile, episode=spec.episode)
    if spec.stuck_frames:
        env = NoProgressEnd(env, spec.stuck_frames, spec.frame_skip)
    if spec.max_frames:
        env = FrameLimit(env, spec.max_frames, spec.frame_skip)
    game_env = env.get_wrapper_attr("note_outcome") if spec.pool_weighting == "failures" else None
    env = EpisodeStats(env, spec.frame_skip, on_end=game_env)
    if spec.obs == "tiles":
        from wrappers.tiles import SmbTiles

        env = SmbTiles(env)
    elif spec.obs == "ram":
        env = RamObservation(env, profile.observe, stack=spec.frame_stack)
    else:
        env = GrayResize(env, spec.resize, spec.grayscale)
    if spec.frame_stack > 1 and spec.obs != "ram":
        env = FrameStack(env, spec.frame_stack)
    if spec.obs == "pixels+ram":
        env = RamObservation(env, profile.observe, stack=spec.ram_stack or 1, keep_pixels=True)
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
    """A picklable zero-argument factory for worker processes (:class:`RetroVecEnv`, NEAT workers)."""
    return functools.partial(_build, spec.model_dump(), seed)


def make_vec_env(spec: EnvSpec, n_envs: int, seed: int = 0, local: bool = True, start_method: str | None = None):
    """Build ``n_envs`` envs in worker processes (:class:`RetroVecEnv`), seeded ``seed + rank``.

    Observations come out (n_envs, frame_stack*C, H, W) uint8, the layout SB3's ``CnnPolicy`` expects,
    through shared memory (:class:`RetroVecEnv`). Env 0 runs in the calling process unless ``local`` is
    false; the caller must then hold no other emulator while the vec env lives.
    """
    from wrappers.vec_env import RetroVecEnv

    spec.check()  # fail here with a clear message, not inside a worker
    thunks = [env_thunk(spec, seed + rank) for rank in range(n_envs)]
    return RetroVecEnv(thunks, local=local, start_method=start_method)
