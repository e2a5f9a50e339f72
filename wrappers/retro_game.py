"""The innermost wrapper: a stable-retro game stepped a frame-skip window at a time.

Frame skip lives at the bottom of the stack because only here can it skip the work it throws away:
on the intermediate frames of a window, the emulator needs neither a screen copy nor a RAM snapshot
(``GameData.update_ram`` alone costs ~60% of a raw frame on SMB), since the profile reads the RAM at the
end of the window and the observation is the max of the last two screens.
"""

from __future__ import annotations

import gzip

import gymnasium as gym
import numpy as np
import stable_retro
import stable_retro.data as rdata

from wrappers import roms
from wrappers.action import MaskSequence

#: Start states put in a pool with :meth:`RetroGame.set_pool` (a curriculum's) carry this prefix in their
#: names, so an episode's ``state`` says whether it started from the level's own start or from one of them.
ADDED_PREFIX = "curriculum-"


def is_added_state(name: str | None) -> bool:
    """Whether a start state's name is one :meth:`RetroGame.set_pool` added (not a configured start)."""
    return bool(name) and name.startswith(ADDED_PREFIX)


class RetroGame(gym.Wrapper):
    """Frame skip (with max-pool and sticky actions), a start-state pool and no-op starts on a RetroEnv.

    Actions are button masks (``MultiBinary``); put :class:`wrappers.action.Discretizer` on top for a named
    action set. The reward and ``terminated`` are those of the integration's scenario.json over the window
    when ``scenario`` is true (this costs one RAM snapshot per window); otherwise they are 0 and False and a
    :class:`wrappers.stateful_reward.ProfileReward` above decides.

    Args:
        env: a ``stable_retro.RetroEnv`` made with ``render_mode=None`` (or an explicit render mode).
        frame_skip: emulator frames per agent step; the action is held for all of them.
        max_pool: observe the pixel-wise max of the window's last two frames (removes sprite flicker).
        sticky_prob: probability that the previous action is held for the first frame of a window
            (stable-retro's ``StochasticFrameSkip`` semantics).
        states: start-state pool; each reset draws one (``options={"state": name}`` picks one).
        state_weights: the pool's weights (None: uniform).
        failure_weighting: multiply each pool weight by the state's failure rate in this env so far,
            (failures + 1) / (episodes + 2), fed by :meth:`note_outcome`: start more often where the agent fails.
        noop_max: at reset, run a random 0..noop_max frames with no button pressed.
        scenario: compute the scenario's reward and done flag (see above).
        fast: skip screen and RAM copies on intermediate frames. ``False`` runs ``RetroEnv.step`` on every
            frame instead; both give identical observations, rewards and done flags.
        exact_added: start an added state (:meth:`set_pool`) exactly where it was cut, without the no-button
            frame ``RetroEnv.reset`` plays; the first picture is then stale, so only for observations read
            from RAM (tiles, ram).

    Example:
        >>> env = RetroGame(stable_retro.make("Airstriker-Genesis-v0", render_mode=None), frame_skip=4)
    """

    def __init__(self, env: stable_retro.RetroEnv, frame_skip: int = 4, max_pool: bool = True,
                 sticky_prob: float = 0.0, states: list[str] | None = None, noop_max: int = 0,
                 state_weights: list[float] | None = None, failure_weighting: bool = False,
                 scenario: bool = False, fast: bool = True, exact_added: bool = False):
        if not isinstance(env.unwrapped, stable_retro.RetroEnv):
            raise TypeError(f"RetroGame requires a stable_retro.RetroEnv, got {type(env.unwrapped).__name__}")
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        if not 0.0 <= sticky_prob < 1.0:
            raise ValueError(f"sticky_prob must be in [0, 1), got {sticky_prob}")
        super().__init__(env)
        self.retro: stable_retro.RetroEnv = env.unwrapped
        self.frame_skip = frame_skip
        self.max_pool = max_pool and frame_skip > 1
        self.sticky_prob = sticky_prob
        self.noop_max = noop_max
        self.scenario = scenario
        self.fast = fast
        self.exact_added = exact_added
        self.n_buttons = self.retro.num_buttons
        self.action_space = gym.spaces.MultiBinary(self.n_buttons)
        self._states: dict[str, bytes] = {}
        for name in states or []:
            self._states[name] = _read_state(self.retro.gamename, name)
        self._configured = (dict(self._states), list(state_weights) if state_weights else None)
        self.state_name = next(iter(self._states), self.retro.statename)
        self._failure_weighting = failure_weighting
        self._set_weights(state_weights)
        self._prev_mask = np.zeros(self.n_buttons, np.uint8)
        self._zero = np.zeros(self.n_buttons, np.uint8)
        self._mask_cache: dict[bytes, np.ndarray] = {}
        self._record_next: str | None = None
        self._recording = False
        self._frame_hook = None
        self.rng = np.random.default_rng()
        x, y, w, h = self.retro.data.crop_info(0)
        # Most games have neither crop nor rotation: then the raw screen is the observation, one call less.
        self._screen = (self.retro.em.get_screen if not (x or y or w or h) and self.retro._rotation_steps() == 0
                        else lambda: self.retro.get_screen(apply_rotation=True))

    # ------------------------------------------------------------------ reset

    def reset(self, *, seed=None, options=None):
        """Reset to a start state (drawn from the pool) and run the no-op start frames."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        if self._states:
            wanted = (options or {}).get("state")
            if wanted is not None and wanted not in self._states:
                raise ValueError(f"state '{wanted}' is not in this env's pool {list(self._states)}")
            names = list(self._states)
            draw = self.rng.integers(len(names)) if self._p is None else self.rng.choice(len(names), p=self._p)
            self.state_name = wanted or names[int(draw)]
            self.retro.initial_state = self._states[self.state_name]
            self.retro.statename = self.state_name + ".state"
        if self._recording:  # the episode that just ended: its movie is complete
            self.retro.stop_record()
            self._recording = False
        if self._record_next is not None:
            # started before RetroEnv.reset steps the emulator, so the movie replays frame for frame
            self.retro.record_movie(self._record_next)
            self._record_next, self._recording = None, True
        obs, info = self.env.reset(seed=seed, options=options)
        if self.exact_added and is_added_state(self.state_name):
            # RetroEnv.reset plays a frame without buttons after loading a state; an added state was cut from
            # an episode at a window's start, and only without that frame does its episode go on as it did
            # there. The emulator restores RAM but not the picture: for RAM or tile observations only.
            self.retro.em.set_state(self._states[self.state_name])
            self.retro.data.reset()
            self.retro.data.update_ram()
        self._prev_mask = self._zero
        noops = int(self.rng.integers(self.noop_max + 1)) if self.noop_max else 0
        if noops:
            em = self.retro.em
            em.set_button_mask(self._zero, 0)
            for _ in range(noops):
                self._movie_frame(self._zero)
                em.step()
                if self._frame_hook is not None:
                    self._frame_hook(self._screen())
            obs = self.retro._update_obs()
            if self.scenario:
                self.retro.data.update_ram()
                self.retro.data.current_reward()
        info = {"state": self.state_name}
        return obs, info

    def _set_weights(self, weights: list[float] | None) -> None:
        n = len(self._states)
        self._base = np.asarray(weights if weights else [1.0] * n, float)
        self._p = self._base / self._base.sum() if weights else None
        self.failure_weighting = self._failure_weighting and n > 1
        self._episodes = np.zeros(n)
        self._failures = np.zeros(n)

    def set_pool(self, extra: dict[str, bytes] | None, weights: dict[str, float] | None = None) -> None:
        """Put ``extra`` start states (raw emulator states by name) in the pool beside the configured ones,
        drawn with ``weights`` by name (a name left out: weight 0; None: uniform). ``set_pool(None)`` restores
        the configured pool. A curriculum calls this as it moves; failure counts start again with each pool.
        """
        configured, base = self._configured
        if not extra and weights is None and self._states.keys() == configured.keys():
            return  # nothing added: the configured pool stands, its failure counts too
        if not configured and extra:  # the game's default state joins the pool under its own name
            name = self.retro.statename.removesuffix(".state") if self.retro.statename else "default"
            configured = {name: self.retro.initial_state}
            self._configured = (configured, None)
        unnamed = [name for name in extra or {} if not is_added_state(name)]
        if unnamed:
            raise ValueError(f"added start states are named {ADDED_PREFIX}*, got {unnamed}")
        self._states = {**configured, **(extra or {})}
        if weights is None and not extra:
            self._set_weights(base)
            return
        if weights is not None:
            unknown = set(weights) - set(self._states)
            if unknown:
                raise ValueError(f"weights for states not in the pool: {sorted(unknown)}")
            w = [float(weights.get(name, 0.0)) for name in self._states]
            if sum(w) <= 0 or min(w) < 0:
                raise ValueError(f"pool weights must be >= 0 with a positive sum, got {weights}")
        else:
            w = [1.0] * len(self._states)
        self._set_weights(w)

    def emulator_state(self) -> bytes:
        """The emulator's state now, as stable-retro's savestates hold it (uncompressed)."""
        return self.retro.em.get_state()

    def note_outcome(self, success: bool) -> None:
        """An episode from the current start state ended (successfully or not): reweigh the pool."""
        if not self.failure_weighting or self.state_name not in self._states:
            return
        i = list(self._states).index(self.state_name)
        self._episodes[i] += 1
        self._failures[i] += not success
        w = self._base * (self._failures + 1) / (self._episodes + 2)
        self._p = w / w.sum()

    def pool_weights(self) -> dict[str, float]:
        """The pool's current draw probabilities, by state."""
        p = self._p if self._p is not None else np.full(len(self._states), 1 / max(len(self._states), 1))
        return dict(zip(self._states, map(float, p)))

    def record_next(self, path: str) -> None:
        """Record the next episode, from its reset to the one after, as a stable-retro ``.bk2`` movie."""
        self._record_next = str(path)

    def set_frame_hook(self, hook) -> None:
        """Call ``hook(screen)`` with every emulator frame's screen as it is played (a window showing every
        frame at the console's rate), or stop with None. Costs one screen copy a frame, only while set."""
        self._frame_hook = hook

    def screen(self) -> np.ndarray:
        """The emulator's screen now, (H, W, 3) uint8, cropped and rotated as the observation is."""
        return self._screen()

    def screen_rate(self) -> float:
        """The console's frames per second (NES 60.1, Genesis 59.9): what videos play at to be real speed."""
        return float(self.retro.em.get_screen_rate())

    def close(self):
        """Finish the episode's .bk2 movie (stable-retro's own close leaves it unwritten), then close."""
        if self.retro.movie is not None:
            self.retro.stop_record()
        super().close()
        self._screen = None  # a bound method of the emulator: it would keep the emulator alive
        self._frame_hook = None

    # ------------------------------------------------------------------ step

    def _mask(self, action) -> np.ndarray:
        """Button mask after the integration's action filter, cached per distinct action."""
        key = np.asarray(action, np.uint8).tobytes()
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = self.retro.action_to_array(np.frombuffer(key, np.uint8))[0]
            self._mask_cache[key] = mask
        return mask

    def _movie_frame(self, mask: np.ndarray) -> None:
        movie = self.retro.movie
        if movie:
            for i in range(self.n_buttons):
                movie.set_key(i, bool(mask[i]), 0)
            movie.step()

    def step(self, action):
        """Hold ``action`` for ``frame_skip`` frames, or play a move macro (a :class:`MaskSequence`) to its
        end; observation, reward and done at the end. ``info["frames"]`` is the emulator frames played."""
        if isinstance(action, MaskSequence):
            return self._step_sequence(action)
        mask = self._mask(action)
        first = mask
        if self.sticky_prob and self.rng.random() < self.sticky_prob:
            first = self._prev_mask
        self._prev_mask = mask
        if self.fast:
            obs, reward, terminated = self._step_fast(first, mask)
        else:
            obs, reward, terminated = self._step_plain(first, mask)
        return obs, reward, terminated, False, {"frames": self.frame_skip}

    def idle(self, frames: int | None = None):
        """Play ``frames`` frames (default: the frame skip) with no button pressed, outside any agent step:
        the frames between a fight's rounds. Returns what :meth:`step` does."""
        n = frames or self.frame_skip
        self._prev_mask = self._zero
        return self._step_sequence(MaskSequence(((self._zero, n),)), sticky=False)

    def _step_sequence(self, seq: MaskSequence, sticky: bool = True):
        """Play each (mask, frames) of a macro in turn; sticky actions delay only its first frame."""
        plan = [(self._mask(m), n) for m, n in seq]
        total = sum(n for _, n in plan)
        if sticky and self.sticky_prob and self.rng.random() < self.sticky_prob:
            plan = [(self._prev_mask, 1), (plan[0][0], plan[0][1] - 1), *plan[1:]]
        self._prev_mask = plan[-1][0]
        if not self.fast:
            reward, done, frames = 0.0, False, []
            for mask, n in plan:
                for _ in range(n):
                    ob, r, d, _trunc, _info = self.env.step(mask)
                    if self._frame_hook is not None:
                        self._frame_hook(ob)
                    reward += r
                    done = done or d
                    frames = [*frames[-1:], ob]
            obs = np.maximum(*frames) if self.max_pool and len(frames) == 2 else frames[-1]
            return obs, (reward if self.scenario else 0.0), bool(done) and self.scenario, False, {"frames": total}
        em = self.retro.em
        recording = self.retro.movie is not None
        prev_screen, done_frames = None, 0
        for mask, n in plan:
            if n <= 0:
                continue
            em.set_button_mask(mask, 0)
            for _ in range(n):
                if recording:
                    self._movie_frame(mask)
                em.step()
                if self._frame_hook is not None:
                    self._frame_hook(self._screen())
                done_frames += 1
                if self.max_pool and done_frames == total - 1:
                    prev_screen = self._screen()
        obs, reward, terminated = self._window_end(prev_screen)
        return obs, reward, terminated, False, {"frames": total}

    def _step_fast(self, first: np.ndarray, mask: np.ndarray):
        retro, em, n = self.retro, self.retro.em, self.frame_skip
        recording = retro.movie is not None
        em.set_button_mask(first, 0)
        prev_screen = None
        for i in range(n):
            if i == 1 and first is not mask:
                em.set_button_mask(mask, 0)
            if recording:
                self._movie_frame(first if i == 0 else mask)
            em.step()
            if self._frame_hook is not None:
                self._frame_hook(self._screen())
            if self.max_pool and i == n - 2:
                prev_screen = self._screen()
        return self._window_end(prev_screen)

    def _window_end(self, prev_screen):
        """The window's observation (max-pooled with the frame before), and the scenario's reward and done."""
        retro = self.retro
        screen = self._screen()
        obs = np.maximum(prev_screen, screen) if prev_screen is not None else screen
        retro.img = screen
        reward, terminated = 0.0, False
        if self.scenario:
            retro.data.update_ram()
            reward = float(retro.data.current_reward())
            terminated = bool(retro.data.is_done())
        return obs, reward, terminated

    def _step_plain(self, first: np.ndarray, mask: np.ndarray):
        """The reference path: ``RetroEnv.step`` on every frame, all its work kept."""
        total, done, frames = 0.0, False, []
        for i in range(self.frame_skip):
            ob, r, done, _trunc, _info = self.env.step(first if i == 0 else mask)
            if self._frame_hook is not None:
                self._frame_hook(ob)
            total += r
            frames.append(ob)
        obs = np.maximum(frames[-2], frames[-1]) if self.max_pool else frames[-1]
        if not self.scenario:
            return obs, 0.0, False
        return obs, total, bool(done)


def _read_state(game: str, name: str) -> bytes:
    path = rdata.get_file_path(game, name + ".state", roms.INTTYPE)
    if path is None:
        available = rdata.list_states(game, roms.INTTYPE)
        raise roms.RomError(f"Unknown state '{name}' for {roms.short_name(game)}. Its states are: "
                            f"{', '.join(available) or 'none'}.")
    with gzip.open(path, "rb") as f:
        return f.read()
