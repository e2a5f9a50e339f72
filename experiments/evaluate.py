"""The evaluation protocol: a policy plays fixed episodes on fixed states, in its own env process.

Every algorithm is judged the same way (same states, same episodes, same env seed), which is what makes
``eval/*`` curves of NEAT, PPO and A2C comparable.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

import numpy as np

from experiments.errors import UserError
from wrappers.factory import env_thunk
from wrappers.settings import EnvSettings, EnvSpec, env_problems

#: The eval env's seed: the same for every run, so every algorithm meets the same sticky-action draws.
EVAL_SEED = 20_241_124

#: Env settings that shape what a policy sees or does: a saved policy plays only with the ones it learnt on.
POLICY_SHAPING = ("obs", "resize", "grayscale", "frame_stack", "actions")


def override_env(env_spec: EnvSpec, overrides: list[str] | None) -> tuple[EnvSpec, dict]:
    """The saved env spec with ``env.KEY=VALUE`` overrides (values read as YAML) applied, as
    rl-baselines3-zoo's ``enjoy`` takes env kwargs: a whole bout for a policy trained on rounds, sticky
    actions for one trained without. ``env.rewards.TERM=VALUE`` re-weights one reward term.

    Returns:
        (the new spec, ``{key: {"saved": value, "evaluated": value}}`` for each setting that changed).

    Raises:
        UserError: one paragraph naming every bad override: not ``env.*``, an unknown setting (with a
            did-you-mean), one that shapes the policy's inputs or outputs, or a value the setting or the
            game's profile refuses.
    """
    from pydantic import ValidationError

    from experiments.spec import SpecError, parse_yaml

    if not overrides:
        return env_spec, {}
    fields = list(EnvSettings.model_fields)
    data = env_spec.model_dump()
    errors: list[str] = []
    touched: list[str] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        path = key.split(".")
        if not sep or path[0] != "env" or len(path) < 2:
            hint = f" (did you mean env.{key}?)" if key in fields else ""
            errors.append(f"{item}: give env.KEY=VALUE{hint}")
            continue
        name = path[1]
        if name == "state":
            errors.append(f"{key}: give the states to play with --state")
            continue
        if name not in fields:
            near = difflib.get_close_matches(name, fields, n=1)
            errors.append(f"{key}: unknown env setting" + (f", did you mean env.{near[0]}?" if near else
                                                           f" (the settings: {', '.join(fields)})"))
            continue
        if name in POLICY_SHAPING:
            errors.append(f"{key}: the policy learnt on {name} {data[name]!r}, which shapes what it sees or does, "
                          "so it cannot play with another")
            continue
        if len(path) > 2 and (name != "rewards" or len(path) > 3):
            errors.append(f"{key}: only env.rewards takes a part (env.rewards.TERM=VALUE)")
            continue
        try:
            value = parse_yaml(raw, key)
        except SpecError as e:
            errors += [f"{key}: {m}" for m in e.errors]
            continue
        if len(path) == 3:
            data["rewards"] = {**(data["rewards"] or {}), path[2]: value}
        else:
            data[name] = value
        touched.append(name)
    # the well-formed overrides are checked even when others were not, so every problem shows at once
    new = None
    try:
        new = EnvSpec.model_validate(data)
    except ValidationError as e:
        errors += [f"env.{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')} "
                   f"(got {err['input']!r})" for err in e.errors()]
    errors += [f"env.{k}: {m}" for k, m in env_problems(data, require_rom=False) if k in touched]
    if errors:
        raise UserError("retrodojo evaluate --set: " + "; ".join(errors) + ". Overrides are settings of the "
                        "experiment's env: section, given as env.KEY=VALUE (e.g. env.sticky_prob=0.25); "
                        f"{', '.join(POLICY_SHAPING)} stay as the policy learnt them.")
    before, after = env_spec.model_dump(mode="json"), new.model_dump(mode="json")
    changed = {k: {"saved": before[k], "evaluated": after[k]} for k in dict.fromkeys(touched) if before[k] != after[k]}
    return new, changed


def summarize(episodes: list[dict]) -> dict:
    """Means over episodes: return, progress, success_rate, episode_frames, and each profile metric."""
    if not episodes:
        return {"return": 0.0, "progress": 0.0, "success_rate": 0.0, "episode_frames": 0.0}
    out = {
        "return": float(np.mean([e["r"] for e in episodes])),
        "progress": float(np.mean([e["progress"] for e in episodes])),
        "success_rate": float(np.mean([bool(e["success"]) for e in episodes])),
        "episode_frames": float(np.mean([e["frames"] for e in episodes])),
    }
    for name in episodes[0].get("metrics", {}):
        out[name] = float(np.mean([e.get("metrics", {}).get(name, 0.0) for e in episodes]))
    return out


def wilson_interval(successes: int, n: int, z: float = 1.96) -> list[float]:
    """The 95% Wilson score interval of a success rate (a win rate over bouts): unlike the normal
    approximation it stays inside [0, 1] and is not zero-width at 0 of n or n of n."""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def describe(episodes: list[dict], deterministic: bool = False) -> dict:
    """Per-quantity statistics of episodes (mean, std, median, min, max), the success rate, and how many
    distinct episodes there were: a greedy policy on a deterministic env plays the same episode every time
    from one state, and N copies of it are one sample, not N."""
    if not episodes:
        return {"episodes": 0}
    out: dict = {"episodes": len(episodes)}
    quantities = {"return": [e["r"] for e in episodes], "progress": [e["progress"] for e in episodes],
                  "frames": [e["frames"] for e in episodes]}
    for name in episodes[0].get("metrics", {}):
        quantities[name] = [e.get("metrics", {}).get(name, 0.0) for e in episodes]
    for name, vals in quantities.items():
        a = np.asarray(vals, float)
        out[name] = {"mean": float(a.mean()), "std": float(a.std()), "median": float(np.median(a)),
                     "min": float(a.min()), "max": float(a.max())}
    wins = sum(bool(e["success"]) for e in episodes)
    out["success_rate"] = wins / len(episodes)
    out["success_interval"] = wilson_interval(wins, len(episodes))
    fingerprints = {(e.get("state"), round(e["r"], 6), e["frames"], e["progress"], e["reason"]) for e in episodes}
    out["distinct"] = len(fingerprints)
    out["identical"] = len(fingerprints) < len(episodes) and (
        deterministic or len(fingerprints) == len({e.get("state") for e in episodes}))
    return out


#: The fields of an episode record that results.json keeps (``r`` is written as ``return``).
RESULT_FIELDS = ("r", "progress", "success", "frames", "reason", "state", "terms", "metrics", "actions", "bk2")


def results(episodes: list[dict], mean: dict, env_spec: EnvSpec, deterministic: bool, *, run: str | Path,
            agent: str | Path, checkpoint: str, algo: str, states: list[str] | None,
            video: str | Path | None = None, bk2: str | Path | None = None,
            env_overrides: dict | None = None, seed: int = EVAL_SEED) -> dict:
    """What ``retrodojo evaluate`` reports and keeps in ``eval/results.json``: every episode, statistics per
    state (:func:`describe`) and over all of them, the means, and whether the episodes could differ at all.

    Args:
        episodes: the episode records of :meth:`Evaluator.run`; ``mean``: its means.
        env_spec: the env they were played in; ``deterministic``: whether actions were greedy.
        run, agent, checkpoint, algo, states, video, bk2: what was played and written, recorded as given.
        env_overrides: ``{key: {saved, evaluated}}`` for each env setting ``--set`` changed.
        seed: the env seed the episodes were played with.
    """
    # A greedy policy on an env without randomness plays one episode per state, however often it is asked.
    fixed = deterministic and env_spec.sticky_prob == 0 and env_spec.noop_max == 0
    per_state = {st: describe([e for e in episodes if e["state"] == st], fixed)
                 for st in dict.fromkeys(e["state"] for e in episodes)}
    return {"run": str(run), "agent": str(agent), "checkpoint": checkpoint, "algo": algo, "deterministic": fixed,
            "states": states, "env_overrides": env_overrides or {}, "seed": seed,
            "episodes": [{("return" if k == "r" else k): e.get(k) for k in RESULT_FIELDS} for e in episodes],
            "per_state": per_state, "overall": describe(episodes, fixed), "mean": mean,
            "video": str(video) if video else None, "bk2": str(bk2) if bk2 else None}


def save_results(out: dict, out_dir: str | Path) -> Path:
    """Write :func:`results` to ``out_dir/results.json``; returns its path."""
    path = Path(out_dir) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    return path


def action_shares(episodes: list[dict]) -> dict[str, float]:
    """How often each action of a discrete set was chosen, as a share of all choices in ``episodes``."""
    counts: dict[str, int] = {}
    for e in episodes:
        for label, n in e.get("actions", {}).items():
            counts[label] = counts.get(label, 0) + n
    total = sum(counts.values())
    return {label: n / total for label, n in counts.items()} if total else {}


def _one_torch_thread() -> int | None:
    """Play with one torch thread; returns the count to restore (None where torch is not loaded: NEAT).

    Evaluation runs one observation at a time, where more intra-op threads buy nothing and on a busy machine
    cost a lot: a Nature CNN forward pass took 21 ms with 2 threads against 1.7 ms with 1 beside a PPO run
    on this 2-core machine (benchmarks/eval_threads.py)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return threads


def _restore_torch_threads(threads: int | None) -> None:
    """Undo :func:`_one_torch_thread`."""
    if threads is not None:
        sys.modules["torch"].set_num_threads(threads)


class Evaluator:
    """Plays a :class:`agents.base.Policy` on the eval protocol; the env lives until :meth:`close`.

    Args:
        env_spec: the run's env spec.
        episodes: episodes per evaluation.
        states: states cycled through episode by episode (None: the env's own).
        deterministic: greedy actions.
        local: run the env in this process (only when this process holds no other emulator).
        seed: the env's seed (its sticky-action and no-op draws); default :data:`EVAL_SEED`, the one every
            evaluation during training uses. Another seed plays fresh episodes.
    """

    def __init__(self, env_spec: EnvSpec, episodes: int, states: list[str] | None = None,
                 deterministic: bool = True, local: bool = False, seed: int | None = None):
        self.env_spec = env_spec
        self.seed = EVAL_SEED if seed is None else seed
        self.episodes = episodes
        self.states = states
        self.deterministic = deterministic
        self.local = local
        self._venv = None
        self._video_spec = None

    def _env(self, render: bool = False):
        from wrappers.vec_env import RetroVecEnv

        want = self.env_spec.model_copy(update={"render_mode": "rgb_array" if render else None,
                                                "state": self.states or self.env_spec.state})
        if self._venv is None or self._video_spec != want:
            self.close()
            self._venv = RetroVecEnv([env_thunk(want, self.seed)], local=self.local, spin=False)
            self._video_spec = want
        return self._venv

    def run(self, policy, video: str | Path | None = None, on_episode=None, bk2_dir: str | Path | None = None,
            bk2_keep: str = "all", episodes: int | None = None, cut_every: int | None = None,
            window=None) -> dict:
        """Play the protocol's episodes; returns ``{"episodes": [...], "mean": {...}, "skipped": [...],
        "quit": bool}`` (the last two only differ from ``[]`` and False with a window).

        Args:
            policy: any :class:`agents.base.Policy`.
            video: an mp4 of every episode, at the console's own frame rate over the frame skip (real speed).
            on_episode: called with (index, episode record) as each episode ends.
            bk2_dir: write each episode as a stable-retro ``.bk2`` movie here, named by state and three-digit
                index (``Level1-1-000.bk2``); an episode's record gets its path under ``bk2``.
            bk2_keep: ``all`` movies, or only the ``best`` episode's (highest return).
            episodes: this many instead of the protocol's.
            cut_every: every this many emulator frames, keep the emulator's state: an episode's record gets
                ``cuts``: ``{frames, progress, return, state, action}`` from its start (a curriculum's source;
                ``action`` is the one taken just before the cut, the memory a policy that sees its last
                action needs there).
            window: an :class:`experiments.watch.Window` that shows every frame as it is played (the env must be
                ``local``); its next-episode key cuts an episode short (its index goes to ``skipped``, its record
                nowhere), its quit key ends the evaluation with the episodes played to their end.
        """
        from experiments.video import VideoWriter

        venv = self._env(render=video is not None)
        writer = None
        if video:
            rate = venv.env_method("screen_rate")[0]
            writer = VideoWriter(video, fps=rate / self.env_spec.frame_skip)
        venv.seed(self.seed)
        played: list[dict] = []
        skipped: list[int] = []
        if window is not None:
            from wrappers.tap import Tap

            if venv.local_env is None:
                raise ValueError("a window shows an env of this process: make the Evaluator with local=True")
            window.rate = venv.env_method("screen_rate")[0]
            venv.local_env = Tap(venv.local_env, window, every_frame=True)
        total = episodes or self.episodes
        threads = _one_torch_thread()
        try:
            for i in range(total):
                state_name = self.states[i % len(self.states)] if self.states else None
                if state_name:
                    venv.set_options({"state": state_name})
                if window is not None:
                    if window.quit:
                        break
                    window.next_episode = False
                    window.header = f"episode {i + 1} of {total}" + (f", state {state_name}" if state_name else "")
                movie = None
                if bk2_dir is not None:
                    movie = Path(bk2_dir) / f"{state_name or 'default'}-{i:03d}.bk2"
                    movie.parent.mkdir(parents=True, exist_ok=True)
                    venv.env_method("record_next", str(movie.resolve()))
                obs = venv.reset()
                state, start = None, np.ones((1,), dtype=bool)
                frames0, cuts, last = venv.frames, [], None
                while True:
                    if cut_every and venv.frames - frames0 >= len(cuts) * cut_every:
                        cuts.append({"frames": venv.frames - frames0, **venv.env_method("snapshot")[0],
                                     "action": last})
                    action, state = policy.predict(obs, state=state, episode_start=start,
                                                   deterministic=self.deterministic)
                    last = np.asarray(action[0]).tolist() if cut_every else None
                    obs, _reward, done, infos = venv.step(action)
                    if writer and not done[0]:  # after done the env shows the next episode's first frame
                        writer.add(venv.get_images()[0])
                    start = done
                    if window is not None and not done[0] and (window.quit or window.next_episode):
                        if not window.quit:
                            skipped.append(i)
                        break
                    if done[0]:
                        ep = dict(infos[0]["episode"])
                        if movie is not None:
                            ep["bk2"] = str(movie)
                        if cut_every:
                            ep["cuts"] = cuts
                        played.append(ep)
                        if on_episode:
                            on_episode(i, ep)
                        break
        finally:
            _restore_torch_threads(threads)
            if writer:
                writer.close()
            if window is not None:
                venv.local_env = venv.local_env.detach()
        if bk2_dir is not None and bk2_keep == "best" and played:
            best = max(played, key=lambda e: e["r"])
            for e in played:
                if e is not best:
                    Path(e.pop("bk2")).unlink(missing_ok=True)
        return {"episodes": played, "mean": summarize(played), "skipped": skipped,
                "quit": bool(window is not None and window.quit)}

    def close(self) -> None:
        """Stop the eval env."""
        if self._venv is not None:
            self._venv.close()
            self._venv = None
