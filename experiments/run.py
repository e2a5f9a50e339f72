"""A run folder and everything an agent reports into while it learns.

``runs/<experiment>/<algo>-s<seed>-<timestamp>/`` holds ``config.yaml`` (the resolved spec), ``meta.json``
(versions, git commit, ROM SHA-1, command line, status, frames done), ``tb/`` (TensorBoard: every scalar's
step is emulator frames), ``checkpoints/`` (atomic: written to a temp folder, then renamed), ``final/`` and
``eval/`` (``history.jsonl`` of every evaluation, JSON reports, videos).

Agents see a run only through :class:`agents.base.RunContext` (``begin``, ``record``, ``tick``,
``checkpoint``, ``finish``, ``scalar``, ``hyperparameters``, ``warn``, ``end``, ``latest_checkpoint``): the
order of evaluations and checkpoints is the run's business, written once here for every learner.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path

from experiments.curriculum import Curriculum, is_curriculum_state
from experiments.errors import UserError
from experiments.evaluate import Evaluator, action_shares
from experiments.spec import ExperimentSpec, dump_spec
from wrappers.errors import read_json_file, write_atomic

CHECKPOINT_FILE = "checkpoint.json"
LOAD_EVERY_S = 60.0


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("retrodojo", "stable-retro", "gymnasium", "stable-baselines3", "sb3-contrib", "torch", "neat-python",
                "numpy", "opencv-python-headless"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def beats_best(value: float, ret: float | None, best: dict | None) -> bool:
    """Whether an evaluation's figure (``value``, with its mean return ``ret``) displaces the kept best.

    A tie on the figure goes to the higher return: a win rate or success rate saturates at 1.0, and the first
    policy to reach it is seldom the best one (boxing_ppo_pixram seed 2 kept its first 20/20, margin +14 on
    fresh bouts, over the final 20/20 policy's +33). A best recorded without a return loses a tie."""
    if best is None:
        return True
    if value != best["value"]:
        return value > best["value"]
    old = best.get("return")
    return ret is not None and (old is None or ret > old)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the architecture: the same "2 cores" differ from one
    machine to the next by half, so a time-budgeted run's frames mean little without it."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                        platform.machine())
    except OSError:
        return platform.machine()


def note_resume_machine(meta: dict) -> None:
    """Add this machine to a resumed run's meta.json: ``resume_cpu_models`` and ``resume_cpus``, one entry a
    resume each. Resumes from before ``resume_cpus`` existed get None at the front, so the lists stay in step."""
    models = meta.get("resume_cpu_models")
    models = models if isinstance(models, list) else []
    counts = meta.get("resume_cpus")
    counts = counts[-len(models):] if isinstance(counts, list) and models else []
    meta["resume_cpu_models"] = [*models, cpu_model()]
    meta["resume_cpus"] = [*([None] * (len(models) - len(counts))), *counts, os.cpu_count()]


def _remove_folder(folder: Path) -> None:
    """Delete a folder so that a kill midway never leaves a half-deleted one under its name: rename, then delete."""
    gone = folder.with_name(f".{folder.name}.gone-{os.getpid()}")
    try:
        os.replace(folder, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def _write_json_atomic(path: Path, data) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str))


def _feature_watch(policy):
    """An :class:`agents.feature_watch.FeatureWatch` on an SB3 policy; a no-op (yielding None) where SB3 was
    never imported (NEAT), which then need not load torch for it."""
    if "stable_baselines3" not in sys.modules:
        return contextlib.nullcontext()
    from agents.feature_watch import FeatureWatch

    return FeatureWatch(policy)


class Run:
    """One training run of one seed (see the module docstring).

    Use :meth:`create` for a new run, :meth:`open` to resume one. ``progress_cb(frames, info)`` receives
    progress updates (the CLI draws its bar from them).
    """

    def __init__(self, path: Path, spec: ExperimentSpec, seed: int, meta: dict,
                 progress_cb: Callable[[int, dict], None] | None = None):
        self.dir = Path(path)
        self.spec = spec
        self.seed = seed
        self.meta = meta
        self.env_spec = spec.env_spec()
        self.eval_env_spec = spec.eval_env_spec()  # training's env, with eval.env's settings
        self.budget_frames = spec.budget.frames
        self.stop_requested = False
        #: the user trusts this run's pickled checkpoints (an earlier version's): ``--trust-pickles``
        self.trust_pickles = False
        self.end_status: str | None = None
        self.end_message: str | None = None
        self.notify: Callable[[str], None] | None = None  # the CLI prints warnings and end messages
        #: called after every evaluation with (run, frames, means): tuning reports and prunes through it
        self.eval_listeners: list[Callable[[Run, int, dict], None]] = []
        self._progress_cb = progress_cb
        self._writer = None
        self._evaluator: Evaluator | None = None
        self._heldout: Evaluator | None = None
        ckpt = self.latest_checkpoint()
        info = _read_checkpoint_info(ckpt) if ckpt else {}
        self.start_frames = info.get("frames", 0)
        self.resumes = int(meta.get("resumes", 0))
        self._last_ckpt = self.start_frames
        # Resume as of the checkpoint: what was logged after it is purged from TensorBoard and history.
        self.last_eval: dict | None = info.get("last_eval")
        self._last_eval = self.last_eval["frames"] if self.last_eval else -1
        if self.resumes:
            self._truncate_history(self.start_frames)
        self._t0 = time.perf_counter()
        self._t_last = self._t0
        self._load_t = -float("inf")  # the first progress note samples the load at once
        self._fps_since = (self._t0, self.start_frames)
        self.frames = self.start_frames
        self.seconds_before = float(info.get("train_seconds", 0.0))  # training time of earlier invocations
        #: the experiment's backward curriculum (None without a curriculum: section), as of the checkpoint
        self.curriculum = Curriculum(spec.curriculum, spec.start_state()) if spec.curriculum else None
        if self.curriculum is not None and ckpt is not None:
            self.curriculum.load(ckpt)
        self._pool_envs = None
        #: a :class:`wrappers.tap.FrameFeed` that a window reads (``train --watch``): env 0 is shown there
        self.watch = None
        self.last_eval_seconds = 0.0
        self.generation: int | None = None

    # ------------------------------------------------------------------ creation

    @classmethod
    def create(cls, spec: ExperimentSpec, seed: int, runs_dir: str | Path = "runs", name: str | None = None,
               command: list[str] | None = None, progress_cb=None) -> Run:
        """Make a new run folder and write config.yaml and meta.json."""
        from wrappers import roms

        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(runs_dir) / (name or spec.name)
        path = base / f"{spec.agent.algo}-s{seed}-{stamp}"
        n = 1
        while path.exists():
            n += 1
            path = base / f"{spec.agent.algo}-s{seed}-{stamp}-{n}"
        for sub in ("tb", "checkpoints", "eval"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        (path / "config.yaml").write_text(dump_spec(spec.model_copy(update={"seeds": [seed]})))
        meta = {
            "experiment": name or spec.name, "algo": spec.agent.algo, "seed": seed, "game": spec.game,
            "state": spec.states or spec.state, "profile": spec.profile, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": command or sys.argv, "cwd": os.getcwd(), "versions": _versions(), "git_commit": _git_commit(),
            "rom_sha1": roms.rom_sha1(spec.game), "host": platform.node(), "cpus": os.cpu_count(),
            "cpu_model": cpu_model(), "status": "created", "frames": 0, "budget_frames": spec.budget.frames,
            "resumes": 0,
        }
        _write_json_atomic(path / "meta.json", meta)
        return cls(path, spec, seed, meta, progress_cb)

    @classmethod
    def open(cls, path: str | Path, overrides: list[str] | None = None, progress_cb=None,
             trust_pickles: bool = False) -> Run:
        """Open an existing run to resume it; only ``budget.*`` may change (``--set budget.frames=N``).

        A checkpoint an earlier version pickled is refused before anything is written, unless
        ``trust_pickles``.
        """
        from experiments.spec import SpecError, load_spec

        path = Path(path)
        if not (path / "config.yaml").is_file() or not (path / "meta.json").is_file():
            raise UserError(f"{path} is not a run folder (config.yaml and meta.json are missing). `retrodojo runs` "
                            "lists the runs under runs/.")
        bad = [o for o in overrides or [] if not o.split("=", 1)[0].strip().startswith("budget.")]
        if bad:
            raise SpecError("--set", [f"{o.split('=', 1)[0]}: cannot change on resume (only budget.frames and "
                                      "budget.generations can); start a new run to change it" for o in bad])
        spec = load_spec(path / "config.yaml", overrides)
        meta = read_meta(path)
        try:
            seed, resumes = int(meta["seed"]), int(meta.get("resumes", 0)) + 1
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path / 'meta.json'} lacks the run's seed or resume count, so the run cannot be "
                            "continued; start a new run from its config.yaml.") from None
        commands = meta.get("resume_commands")
        meta.update(resumes=resumes, budget_frames=spec.budget.frames,
                    resume_commands=[*(commands if isinstance(commands, list) else []), sys.argv])
        # a time-budgeted run resumed on another machine is two machines' minutes: say which (the same processor
        # model on 16 cores and on 2 is not the same machine)
        note_resume_machine(meta)
        run = cls(path, spec, seed, meta, progress_cb)  # reads the checkpoint: nothing is written if it is bad
        ckpt = run.latest_checkpoint()
        if ckpt is not None and not trust_pickles:
            from agents.safe_io import legacy_files, legacy_refusal

            old = legacy_files(ckpt)
            if old:
                raise legacy_refusal(ckpt, old)
        run.trust_pickles = trust_pickles
        _write_json_atomic(path / "meta.json", meta)
        (path / "config.yaml").write_text(dump_spec(spec))
        return run

    # ------------------------------------------------------------------ TensorBoard

    @property
    def writer(self):
        """The TensorBoard writer; on resume, events past the checkpoint are purged so the line continues.

        Agents evaluate before they checkpoint, so events at the checkpoint's own frame belong to it: the
        purge starts one frame later.
        """
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            purge = self.start_frames + 1 if self.resumes else None
            self._writer = SummaryWriter(log_dir=str(self.dir / "tb"), purge_step=purge, flush_secs=30)
        return self._writer

    def scalar(self, tag: str, value: float, frames: int) -> None:
        """Write one scalar at ``frames`` (the common x-axis)."""
        self.writer.add_scalar(tag, value, frames)

    def hyperparameters(self, table: dict) -> None:
        """Write the resolved hyperparameters as a TensorBoard text table (once per run)."""
        if self.resumes:
            return
        rows = "\n".join(f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |" for k, v in table.items())
        self.writer.add_text("hyperparameters", "| setting | value |\n|---|---|\n" + rows, 0)

    def record(self, frames: int, episodes: Sequence[dict] = (), observe: bool = True) -> None:
        """``train/episode_*`` and ``reward/<term>`` for episodes that ended while learning; progress.

        Episodes from a curriculum's start states are not the level's: they go to the curriculum (its backward
        step, unless ``observe`` is false: NEAT hands over its champion's alone) and not into ``train/*``.
        """
        if self.curriculum is not None:
            extra = [e for e in episodes if is_curriculum_state(e.get("state"))]
            if extra:
                episodes = [e for e in episodes if not is_curriculum_state(e.get("state"))]
                if observe:
                    self.observe_curriculum(frames, extra)
        for ep in episodes:
            if ep["success"] and "first_success" not in self.meta:
                self.update_meta(first_success={"frames": frames, "seconds": round(self.train_seconds(), 1)})
            self.scalar("train/episode_return", ep["r"], frames)
            self.scalar("train/episode_progress", ep["progress"], frames)
            self.scalar("train/episode_frames", ep["frames"], frames)
            self.scalar("train/episode_success", float(ep["success"]), frames)
            for term, value in ep.get("terms", {}).items():
                self.scalar(f"reward/{term}", value, frames)
            for name, value in ep.get("metrics", {}).items():
                self.scalar(f"train/episode_{name}", value, frames)
        self.progress(frames)

    # ------------------------------------------------------------------ the curriculum

    def attach_envs(self, venv) -> None:
        """The training envs a curriculum moves (``RetroGame.set_pool`` through ``env_method``); the pool as
        of now is sent at once (a resumed run's). With a window (``train --watch``), env 0, which runs in this
        process, is tapped: its frames go to the window's feed, the other envs are untouched."""
        self._pool_envs = venv
        if self.watch is not None and getattr(venv, "local_env", None) is not None:
            from wrappers.tap import FeedSink, Tap

            sink = FeedSink(self.watch, f"{self.dir.name}: env 0 of {venv.num_envs}")
            venv.local_env = Tap(venv.local_env, sink, every_frame=False)
        if self.curriculum is not None and self.curriculum.pool_states():
            self._push_pool()

    def start_pool(self) -> tuple[dict[str, bytes], dict[str, float], dict[str, float], dict] | None:
        """The curriculum's pool now (extra states; weights by name, the real start's included; each state's
        offset, :meth:`Curriculum.offsets`; the action taken before each, :meth:`Curriculum.actions`), or
        None when training starts from the configured states alone (NEAT plays every start with every genome)."""
        if self.curriculum is None or not self.curriculum.pool_states():
            return None
        return (*self.curriculum.pool(), self.curriculum.offsets(), self.curriculum.actions())

    def observe_curriculum(self, frames: int, episodes: Sequence[dict]) -> None:
        """Episodes from the curriculum's states: they decide its backward step."""
        if self.curriculum is not None and self.curriculum.observe(list(episodes)):
            self._pool_changed(frames)

    def _pool_changed(self, frames: int) -> None:
        self._push_pool()
        for tag, value in self.curriculum.scalars().items():
            self.scalar(tag, value, frames)

    def _push_pool(self) -> None:
        if self._pool_envs is None:
            return
        extra, weights = self.curriculum.pool()
        self._pool_envs.env_method("set_pool", extra or None, weights or None)

    # ------------------------------------------------------------------ the choreography

    def begin(self, frames: int, agent) -> None:
        """Learning starts: a fresh run is evaluated at frame 0, for the curves' first point."""
        self.update_meta(status="running")
        if not self.resumes:
            self._write_hparams()
        if self._last_eval < 0:
            self._evaluate_agent(agent, frames)
        self._t_last = time.perf_counter()
        self._fps_since = (self._t_last, frames)  # fps counts learning, not set-up

    def tick(self, frames: int, agent, checkpoint: bool = False, generation: int | None = None) -> bool:
        """Evaluate if due, then checkpoint if due (or asked); False when the agent must stop.

        Evaluating first means a checkpoint covers everything logged up to its frame, so a resumed
        run's TensorBoard line has neither a gap nor a duplicate. ``generation`` (NEAT) lets a
        generations budget drive the progress bar.
        """
        self.last_eval_seconds = 0.0
        if generation is not None:
            self.generation = generation
        if self.eval_due(frames):
            self._evaluate_agent(agent, frames)
        if checkpoint or self.checkpoint_due(frames):
            self.checkpoint(frames, agent)
        self.progress(frames)
        return not self.should_stop()

    def checkpoint(self, frames: int, agent) -> Path:
        """Checkpoint the agent now (atomically, through :meth:`save_checkpoint`)."""
        return self.save_checkpoint(frames, agent.write_checkpoint)

    def finish(self, frames: int, agent) -> None:
        """Evaluate the final policy (unless stopping on request), then write the last checkpoint."""
        self.frames = frames
        if not self.stop_requested and self._last_eval != frames:
            self._evaluate_agent(agent, frames)
        self.checkpoint(frames, agent)

    def train_seconds(self) -> float:
        """Training time so far, summed over resumes."""
        return self.seconds_before + time.perf_counter() - self._t0

    def time_up(self) -> bool:
        """Whether ``budget.minutes`` of training time have passed."""
        minutes = self.spec.budget.minutes
        return minutes is not None and self.train_seconds() >= minutes * 60

    def should_stop(self) -> bool:
        """A stop was requested (signal) or the time budget ran out."""
        if self.time_up() and self.end_status is None:
            self.end_status, self.end_message = "finished", f"time budget of {self.spec.budget.minutes} min reached"
        return self.stop_requested or self.time_up()

    def progress(self, frames: int) -> None:
        """Note progress; every ~2 s write ``time/fps`` and ``time/elapsed_s`` and update the progress bar.

        frames/s is the average since learning started in this invocation, as SB3's ``time/fps``: PPO
        collects frames in bursts between long updates, so the rate since the previous call (often the
        first steps after an update) says little.
        """
        self.frames = frames
        now = time.perf_counter()
        if now - self._t_last < 2.0 and frames < self.budget_frames:
            return
        self._t_last = now
        if now - self._load_t >= LOAD_EVERY_S:
            self._load_t = now
            self._sample_load()
        fps = (frames - self._fps_since[1]) / max(now - self._fps_since[0], 1e-9)
        self.scalar("time/fps", fps, frames)
        self.scalar("time/elapsed_s", self.train_seconds(), frames)
        if self._progress_cb:
            self._progress_cb(frames, {"fps": fps, "last_eval": self.last_eval, "seconds": self.train_seconds(),
                                       "generation": self.generation})

    def _sample_load(self) -> None:
        """Fold the machine's 1-minute load into meta.json's ``load_1min`` (a time-budgeted result means little
        without it). Sampled once a minute while learning, so the ~2-minute pauses of evaluations, where a
        sample at each checkpoint used to land, do not pull the mean down."""
        load = self.meta.get("load_1min")
        if not isinstance(load, dict) or "samples" not in load:  # none yet, or the per-checkpoint kind
            load = {"samples": 0, "mean": 0.0, "max": 0.0, "every_s": LOAD_EVERY_S}
        now = os.getloadavg()[0]
        load["mean"] = round((load["mean"] * load["samples"] + now) / (load["samples"] + 1), 2)
        load["max"] = round(max(load["max"], now), 2)
        load["samples"] += 1
        self.meta["load_1min"] = load

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_due(self, frames: int) -> bool:
        """Whether ``checkpoint.every_frames`` have passed since the last checkpoint."""
        return frames - self._last_ckpt >= self.spec.checkpoint.every_frames

    def save_checkpoint(self, frames: int, write: Callable[[Path], None]) -> Path:
        """Write a checkpoint atomically: ``write(tmp_folder)``, then rename; keep the newest few."""
        root = self.dir / "checkpoints"
        root.mkdir(exist_ok=True)
        final = root / f"{frames:012d}"
        tmp = root / f".tmp-{frames:012d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        if self.curriculum is not None:
            self.curriculum.save(tmp)
        _write_json_atomic(tmp / CHECKPOINT_FILE, {"frames": frames, "time": time.time(), "last_eval": self.last_eval,
                                                   "train_seconds": self.train_seconds()})
        from agents.safe_io import replace_folder

        # the same frame count twice (a stop right after a checkpoint) keeps the new one
        replace_folder(tmp, final)
        self._last_ckpt = frames
        for old in self.checkpoints()[: -self.spec.checkpoint.keep]:
            _remove_folder(old)
        for stale in [*root.glob(".tmp-*"), *root.glob(".*.old-*"), *root.glob(".*.gone-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        self.update_meta(frames=frames, status="running", last_checkpoint=final.name)
        return final

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (a folder is complete once renamed from its temp name)."""
        return self.checkpoints_of(self.dir)

    @staticmethod
    def checkpoints_of(run_dir: str | Path) -> list[Path]:
        """Complete checkpoints of a run folder, oldest first."""
        root = Path(run_dir) / "checkpoints"
        if not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                      and (p / CHECKPOINT_FILE).is_file())

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder, or None."""
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    # ------------------------------------------------------------------ evaluation

    def _eval(self, heldout: bool = False) -> Evaluator:
        if heldout:
            if self._heldout is None:
                self._heldout = Evaluator(self.eval_env_spec, self.spec.eval.episodes, self.spec.eval.heldout_states,
                                          deterministic=self.spec.eval.deterministic, local=False)
            return self._heldout
        if self._evaluator is None:
            self._evaluator = Evaluator(self.eval_env_spec, self.spec.eval.episodes, self.spec.eval_states(),
                                        deterministic=self.spec.eval.deterministic, local=False)
        return self._evaluator

    def eval_due(self, frames: int) -> bool:
        """Whether ``eval.every_frames`` have passed since the last evaluation."""
        return self._last_eval < 0 or frames - self._last_eval >= self.spec.eval.every_frames

    def evaluate(self, policy, frames: int) -> dict:
        """Play the eval protocol now; write ``eval/*`` (and ``eval_heldout/*``, ``actions/*``) at ``frames``
        and a line to eval/history.jsonl; movies of the episodes if ``eval.record_bk2`` asks for them."""
        t0 = time.perf_counter()
        ev = self.spec.eval
        bk2 = self.dir / "eval" / "bk2" / f"{frames:012d}" if ev.record_bk2 != "none" else None
        cur = self.curriculum
        with _feature_watch(policy) as watch:  # a CNN that stopped looking at the screen shows here first
            result = self._eval().run(policy, bk2_dir=bk2, bk2_keep=ev.record_bk2,
                                      cut_every=cur.s.every_frames if cur is not None else None)
        if cur is not None:
            if cur.after_eval(frames, result["episodes"]):
                self._push_pool()
            for tag, value in cur.scalars().items():
                self.scalar(tag, value, frames)
            for e in result["episodes"]:
                e.pop("cuts", None)
        mean = result["mean"]
        for key, value in mean.items():  # return, progress, success_rate, episode_frames, profile metrics
            self.scalar(f"eval/{key}", value, frames)
        shares = action_shares(result["episodes"])
        for label, share in shares.items():
            self.scalar(f"actions/{label}", share, frames)
        network = watch.scalars() if watch is not None else {}
        for tag, value in network.items():
            self.scalar(tag, value, frames)
        if network and "cnn_warned_at" not in self.meta:  # once a run, resumes too: the figures stay in TB
            from agents.feature_watch import cnn_warning

            if (warning := cnn_warning(network, frames)) is not None:
                self.meta["cnn_warned_at"] = frames
                self.warn(warning)
        keep = ("r", "progress", "success", "frames", "reason", "state", "metrics", "bk2")
        record = {"frames": frames, "time": time.time(), **mean, "actions": shares,
                  **({"network": {k.split("/", 1)[1]: v for k, v in network.items()}} if network else {}),
                  "episodes": [{k: e.get(k) for k in keep if k in e} for e in result["episodes"]]}
        if ev.heldout_states:
            held = self._eval(heldout=True).run(policy)
            for key, value in held["mean"].items():
                self.scalar(f"eval_heldout/{key}", value, frames)
            record["heldout"] = {**held["mean"], "episodes": [{k: e.get(k) for k in keep if k in e}
                                                             for e in held["episodes"]]}
        record["seconds"] = round(time.perf_counter() - t0, 2)
        with open(self.dir / "eval" / "history.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self._last_eval = frames
        self.last_eval_seconds = time.perf_counter() - t0
        self.last_eval = {"frames": frames, **mean}
        self.update_meta(last_eval=self.last_eval)
        if self._progress_cb:
            self._progress_cb(frames, {"last_eval": self.last_eval})
        for listener in self.eval_listeners:
            listener(self, frames, mean)
        return result

    def record_bk2(self, policy, name: str) -> Path | None:
        """Play one episode of the eval protocol (its first state) as a .bk2 movie: eval/bk2/<name>.bk2."""
        folder = self.dir / "eval" / "bk2" / "tmp"
        result = self._eval().run(policy, bk2_dir=folder, episodes=1)
        (ep,) = result["episodes"]
        target = self.dir / "eval" / "bk2" / f"{name}.bk2"
        os.replace(ep["bk2"], target)
        shutil.rmtree(folder, ignore_errors=True)
        return target

    def _evaluate_agent(self, agent, frames: int) -> None:
        """Evaluate the agent's policy; with ``checkpoint.keep_best``, keep it in best/ when it is the best yet."""
        mean = self.evaluate(agent.policy(), frames)["mean"]
        ck = self.spec.checkpoint
        if not ck.keep_best:
            return
        value, ret = mean.get(ck.best_metric.split("/", 1)[1]), mean.get("return")
        if value is not None and beats_best(value, ret, self.meta.get("best")):
            self._save_agent(agent, "best")
            self.update_meta(best={"frames": frames, "metric": ck.best_metric, "value": value, "return": ret})

    def request_stop(self, status: str, message: str) -> None:
        """Stop at the agent's next tick with ``status`` (a tuning trial pruned): a checkpoint is written
        and the run folder stays whole, resumable and evaluable."""
        self.stop_requested = True
        self.end(status, message)

    def _truncate_history(self, frames: int) -> None:
        path = self.dir / "eval" / "history.jsonl"
        if path.is_file():
            keep = [json.dumps(h) for h in read_history(self.dir) if h["frames"] <= frames]
            write_atomic(path, "".join(line + "\n" for line in keep))

    # ------------------------------------------------------------------ bookkeeping

    def warn(self, message: str) -> None:
        """A warning for the user: printed by the CLI, kept in meta.json."""
        self.meta.setdefault("warnings", [])
        if message not in self.meta["warnings"]:
            self.meta["warnings"].append(message)
            self.update_meta()
        if self.notify:
            self.notify(message)

    def end(self, status: str, message: str) -> None:
        """The agent ends the run early for a reason of its own (NEAT: extinction, goal reached)."""
        self.end_status, self.end_message = status, message
        self.update_meta(end_message=message)
        if self.notify:
            self.notify(message)

    def update_meta(self, **changes) -> None:
        """Merge ``changes`` into meta.json (atomically)."""
        self.meta.update(changes)
        _write_json_atomic(self.dir / "meta.json", self.meta)

    def save_final(self, agent) -> Path:
        """Save the agent into ``final/`` atomically."""
        return self._save_agent(agent, "final")

    def _save_agent(self, agent, name: str) -> Path:
        tmp = self.dir / f".{name}-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        agent.save(tmp)
        from agents.safe_io import replace_folder

        target = self.dir / name
        replace_folder(tmp, target)
        return target

    def _write_hparams(self) -> None:
        """The run's settings and the figures it is judged on, for TensorBoard's HPARAMS tab (which then
        lists, filters and sorts runs of every algorithm side by side)."""
        from torch.utils.tensorboard.summary import hparams

        flat = flatten({"experiment": self.meta.get("experiment", self.spec.name), "seed": self.seed,
                         "game": self.spec.game, "state": self.spec.states or self.spec.state,
                         "agent": self.spec.agent.model_dump(mode="json"),
                         "env": self.spec.env.model_dump(mode="json"), "budget_frames": self.spec.budget.frames})
        metrics = ["eval/return", "eval/progress", "eval/success_rate", "eval/episode_frames",
                   *(f"eval/{m}" for m in self._profile_metrics())]
        if self.spec.eval.heldout_states:
            metrics += ["eval_heldout/return", "eval_heldout/progress", "eval_heldout/success_rate"]
        exp, ssi, sei = hparams(flat, {m: 0.0 for m in metrics})
        for summary in (exp, ssi, sei):
            self.writer.file_writer.add_summary(summary)

    def _profile_metrics(self) -> list[str]:
        from wrappers.profile import load_profile

        try:
            return list(load_profile(self.spec.profile, game=self.spec.game).metrics)
        except Exception:  # the run itself reports a bad profile; hparams must not fail it
            return []

    def close(self, status: str, error: str | None = None) -> None:
        """Record the end state and release the writer and the eval env."""
        extra = {"error": error} if error else {}
        if self.end_message and status == self.end_status:  # e.g. the time budget, which ends no agent
            extra["end_message"] = self.end_message
        self.update_meta(status=status, frames=max(self.frames, self.meta.get("frames", 0)),
                         train_seconds=round(self.train_seconds(), 1),
                         finished=time.strftime("%Y-%m-%dT%H:%M:%S"), **extra)
        for ev in (self._evaluator, self._heldout):
            if ev is not None:
                ev.close()
        self._evaluator = self._heldout = None
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None


def read_meta(run_dir: str | Path) -> dict:
    """A run folder's meta.json; a missing or corrupt one is a :class:`UserError` saying so."""
    path = Path(run_dir) / "meta.json"
    meta = read_json_file(path, "run's meta.json", "Run folders hold the meta.json that `retrodojo train` wrote; "
                          "`retrodojo runs` lists the readable ones.")
    if not isinstance(meta, dict):
        raise UserError(f"{path} holds JSON but not a run's metadata (a mapping was expected).")
    return meta


def _read_checkpoint_info(ckpt: Path) -> dict:
    path = ckpt / CHECKPOINT_FILE
    fix = f"Delete the folder {ckpt} to resume from the checkpoint before it."
    info = read_json_file(path, "checkpoint record", fix)
    if not isinstance(info, dict) or not isinstance(info.get("frames"), int):
        raise UserError(f"{path} is not a checkpoint record (no frame count in it). {fix}")
    return info


def read_history(run_dir: str | Path) -> list[dict]:
    """The evaluations recorded in a run folder's eval/history.jsonl (skipping a torn last line)."""
    path = Path(run_dir) / "eval" / "history.jsonl"
    out = []
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # a torn line, or a shared run's hostile one
                continue
            if isinstance(record, dict) and isinstance(record.get("frames"), (int, float)):
                out.append(record)
    return out


def pick_agent(path: Path, which: str = "final"):
    """The spec (None for a bare saved agent) and the saved-agent folder ``which`` names in a run folder:
    ``final``, ``best`` (kept with ``checkpoint.keep_best``), ``latest`` (the newest checkpoint) or a frame
    count (the checkpoint at, else the last before, those frames). Also returns a note to print, or None."""
    from experiments.spec import load_spec

    if (path / "agent.json").is_file():
        if which not in ("final", "latest"):
            raise UserError(f"{path} is a saved agent, not a run folder: it has no {which} checkpoint to pick.")
        return None, path, None
    if not path.is_dir():
        raise UserError(f"{path}: no such folder. Give a run folder (`retrodojo runs` lists them) or a saved "
                        "agent folder (one holding agent.json).")
    if not (path / "config.yaml").is_file():
        raise UserError(f"{path} is neither a run folder nor a saved agent. `retrodojo runs` lists runs.")
    spec = load_spec(path / "config.yaml")
    ckpts = Run.checkpoints_of(path)
    if not (path / which / "agent.json").is_file() and not ckpts:
        meta = read_meta(path) if (path / "meta.json").is_file() else {}
        if "record_policy" in meta and meta["record_policy"] is None:
            raise UserError(f"{path} is recorded with its curves and evaluations only, no policy "
                            f"({meta.get('record_policy_note') or 'it saved none'}). `retrodojo compare` and "
                            "`report` read it; to play it, train it again with the command in its meta.json.")
    if which == "best":
        if (path / "best" / "agent.json").is_file():
            return spec, path / "best", None
        meta = read_meta(path) if (path / "meta.json").is_file() else {}
        if (path / "final" / "agent.json").is_file() and meta.get("record_best") == "final":
            return spec, path / "final", f"{path}'s best evaluation kept the final policy: the record holds it once, " \
                                         "in final/"
        if "record_best" in meta and meta["record_best"] is None:
            raise UserError(f"{path}'s best/ policy was taken out of the record "
                            f"({meta.get('record_best_note') or 'no reason given'}); its evaluations stay in "
                            "eval/ and results/evaluations/. Use --checkpoint final.")
        raise UserError(f"{path} kept no best/ policy: train with checkpoint.keep_best: true (it keeps the "
                        "policy of the best evaluation); or use --checkpoint final|latest|FRAMES.")
    if which == "final":
        if (path / "final" / "agent.json").is_file():
            return spec, path / "final", None
        which, note = "latest", f"no final/ in {path}: using the newest checkpoint"
    else:
        note = None
    if not ckpts:
        raise UserError(f"{path} has no final/ policy and no checkpoint yet: nothing to evaluate.")
    if which == "latest":
        return spec, ckpts[-1], note and f"{note} {ckpts[-1].name}"
    try:
        frames = int(which.replace("_", "").replace(",", ""))
    except ValueError:
        raise UserError(f"--checkpoint {which}: give final, best, latest or a frame count") from None
    before = [c for c in ckpts if int(c.name) <= frames]
    if not before:
        raise UserError(f"{path} has no checkpoint at or before {frames:,} frames (its checkpoints: "
                        f"{', '.join(f'{int(c.name):,}' for c in ckpts)}).")
    chosen = before[-1]
    return spec, chosen, None if int(chosen.name) == frames else f"no checkpoint at {frames:,} frames: using " \
                                                                 f"{int(chosen.name):,}"


def find_runs(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Run folders under each path (a path may itself be a run), sorted, each once."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for root in map(Path, paths):
        if (root / "meta.json").is_file():
            found = [root]
        else:
            found = sorted(p.parent for p in root.glob("**/meta.json") if (p.parent / "config.yaml").is_file())
        out.extend(f for f in found if f not in out)
    return out


def read_scalars(run_dir: str | Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar of a run folder, as TensorBoard shows it (purged events gone)."""
    import logging

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # a resumed run's events after its checkpoint are purged on purpose; TensorBoard warns once per tag
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    if not (Path(run_dir) / "tb").is_dir():  # a record without event files (or a run that never logged)
        return []
    acc = EventAccumulator(str(Path(run_dir) / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def flatten(d: dict | None, prefix: str = "") -> dict:
    """Nested settings as dotted keys (``agent.hyperparams.learning_rate.start``), every nested mapping opened.

    Values are kept when they are numbers, bools or strings and written as JSON text otherwise (``null``,
    ``[84, 84]``, ``{}``): what TensorBoard's hparams accept, and what a comparison can tell apart and print.
    """
    out = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v, default=str)
    return out
