"""Hyperparameter search with Optuna: ``retrodojo tune FILE --trials N``.

The search space is the experiment's ``tune:`` section. A trial is an ordinary run with the trial's values
set by dotted path (as ``--set`` would), its own seed (the file's first seed + the trial number), and a
folder under the study's folder, so it can be resumed, evaluated and compared like any run. The run's own
evaluations (``tune.metric``, default ``eval/progress``) are reported to Optuna as they happen, and a trial
the pruner gives up on stops with a checkpoint (status ``pruned``). Its value is its last evaluation.
``--set KEY=VALUE`` changes the experiment for every trial, as it does for ``train`` (a tiny budget, to try
a search before spending hours on it).

Storage: a journal file in the study folder by default (several ``tune`` processes on one machine share it
through file locks); any database URL Optuna accepts (``postgresql://...``) for processes on several
machines. With ``--ray``, trials run as Ray tasks (one CPU per env + 1, as ``train --ray``); each opens
the same storage, so a cluster needs a database URL or a file system all its nodes see.

A trial whose process dies (killed, a lost machine) does not stay RUNNING for ever: the next ``tune`` process
on the study (or the next trial of another one) marks it FAIL and queues it again with the same values,
and that retry resumes the dead trial's run folder from its newest checkpoint. How a dead trial is told:
with the journal file, its process held a lock file under ``.running/`` while it ran (the kernel lets go
of it when the process dies, however it dies); with a database, Optuna's heartbeat (a trial silent for
``HEARTBEAT_GRACE_S`` is dead).

The study folder ends with ``trials.csv``, ``best.yaml`` (the experiment with the best values filled in,
trainable as it is) and the optimisation history and parameter importances as PNGs.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

try:
    import fcntl
except ImportError:  # no flock (Windows): dead trials are not told from live ones there
    fcntl = None

from experiments.errors import UserError
from experiments.spec import ExperimentSpec, TuneParam, apply_overrides, parse_yaml, validate_spec
from wrappers.errors import write_atomic


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UserError("retrodojo tune needs Optuna: pip install 'retrodojo[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def study_dir(spec: ExperimentSpec, runs_dir: str | Path, study: str) -> Path:
    """``<runs>/<experiment>/tune-<study>/``."""
    return Path(runs_dir) / spec.name / f"tune-{study}"


#: Times a trial whose process died is queued again (a trial that kills its process every time stops there).
MAX_RETRIES = 2
#: With a database: seconds between a running trial's heartbeats, and of silence after which it is dead.
HEARTBEAT_S, HEARTBEAT_GRACE_S = 60, 180
#: A RUNNING trial this young is left alone: its process may not have taken its lock yet.
LOCK_GRACE_S = 60.0


def _retry_callback():
    optuna = _optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)


def storage_for(url: str | None, folder: Path):
    """An Optuna storage: the database at the URL given (with heartbeats), or a journal file in the study
    folder."""
    optuna = _optuna()
    if url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=HEARTBEAT_GRACE_S,
                                              heartbeat_stale_trial_callback=_retry_callback())
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    folder.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(folder / "journal.log")))


def _lock_path(folder: Path, number: int) -> Path:
    return folder / ".running" / f"trial-{number}.lock"


def _take_lock(path: Path, wait: bool = False):
    """The lock file at ``path``, open and locked by this process; None if another process holds it (with
    ``wait``, wait for it). A new lock file appears under its name already locked (made aside, then linked):
    a lock file that exists but that no process holds is one whose process died."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            f = open(path)  # noqa: SIM115 (returned open: the lock lasts as long as the file does)
        except FileNotFoundError:
            aside = path.with_name(f".{path.name}.{os.getpid()}")
            f = open(aside, "w")  # noqa: SIM115
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                os.link(aside, path)
            except FileExistsError:  # another process made it meanwhile: look at that one
                f.close()
                continue
            finally:
                os.unlink(aside)
            return f
        try:
            fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return None
        return f


def fail_dead_trials(study, folder: Path) -> list[int]:
    """Mark FAIL the RUNNING trials of a journal-file study whose process is gone (nothing holds their lock
    file), each queued again to resume its run; returns their numbers. A database study's heartbeat does
    this by itself."""
    optuna = _optuna()
    from optuna.storages import JournalStorage

    if fcntl is None or not isinstance(study._storage, JournalStorage):
        return []
    running = optuna.trial.TrialState.RUNNING
    dead = []
    for t in study.get_trials(deepcopy=False, states=(running,)):
        path = _lock_path(folder, t.number)
        young = t.datetime_start and (datetime.now() - t.datetime_start).total_seconds() < LOCK_GRACE_S
        if young and not path.exists():
            continue  # its process may not have taken its lock yet
        f = _take_lock(path)
        if f is None:
            continue  # its process holds it: alive
        with f:  # holding the lock, this process alone decides (another may have decided already)
            trial = study._storage.get_trial(t._trial_id)
            if trial.state != running:
                continue
            try:
                study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            _retry_callback()(study, study._storage.get_trial(t._trial_id))
            dead.append(t.number)
    return dead


def suggest(trial, name: str, p: TuneParam) -> Any:
    """The trial's value for one searched setting."""
    if p.choice is not None:
        return trial.suggest_categorical(name, p.choice)
    if p.int_range is not None:
        return trial.suggest_int(name, *p.int_range, log=p.log, step=int(p.step or 1))
    return trial.suggest_float(name, *p.float_range, log=p.log, step=p.step)


def with_values(data: dict, values: dict[str, Any]) -> dict:
    """The experiment mapping with each dotted path set to its value (and no tune section)."""
    out = apply_overrides(data, [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                                 for k, v in values.items()], "tune")
    out.pop("tune", None)
    return out


def make_study(spec: ExperimentSpec, folder: Path, storage: str | None, study: str, sampler: str, pruner: str):
    """Create the study, or join it when another ``tune`` process made it already."""
    optuna = _optuna()
    # Each process seeds its own sampler: processes sharing a study must not all draw the same first trials.
    seed = spec.seeds[0] * 1000 + os.getpid() % 1000
    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed)}
    # Pruning starts after the first evaluation past frame 0, once two trials have finished.
    pruners = {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2,
                                                             n_warmup_steps=spec.eval.every_frames),
               "none": lambda: optuna.pruners.NopPruner()}
    return optuna.create_study(study_name=study, storage=storage_for(storage, folder), load_if_exists=True,
                               sampler=samplers[sampler](), pruner=pruners[pruner](), direction=spec.tune.direction)


class Objective:
    """One trial = one run of the experiment with the trial's values, judged on ``tune.metric``.

    While a trial runs its process holds the trial's lock file (see :func:`fail_dead_trials`), from the
    trial's start until Optuna has recorded its end (:meth:`release`, a callback of ``study.optimize``).
    """

    def __init__(self, data: dict, source: str, folder: Path, progress=None):
        self.data = data
        self.source = source
        self.folder = folder
        self.progress = progress
        self._locks: dict[int, Any] = {}

    def _lock(self, number: int) -> None:
        if fcntl is not None:  # another process holds it only for a moment, to look
            self._locks[number] = _take_lock(_lock_path(self.folder, number), wait=True)

    def release(self, study=None, trial=None) -> None:
        """Let go of a finished trial's lock (every lock without one)."""
        for number in [trial.number] if trial is not None else list(self._locks):
            f = self._locks.pop(number, None)
            if f is not None:
                f.close()

    def __call__(self, trial) -> float:
        """Run the trial (a retry resumes its dead trial's run); report each evaluation; prune on the pruner's
        word; return the last evaluation."""
        from experiments import runner
        from experiments.run import Run

        optuna = _optuna()
        self._lock(trial.number)
        fail_dead_trials(trial.study, self.folder)  # another process's, dead while this one worked
        base = validate_spec(self.data, self.source)
        tune = base.tune
        values = {name: suggest(trial, name, p) for name, p in tune.params.items()}
        earlier = trial.user_attrs.get("run")  # a retry carries its dead trial's run folder
        if earlier and (Path(earlier) / "meta.json").is_file():
            run = Run.open(earlier, progress_cb=self.progress)
        else:
            spec = validate_spec(with_values(self.data, values), f"{self.source} (trial {trial.number})")
            run = Run.create(spec, base.seeds[0] + trial.number, self.folder, name="trials",
                             progress_cb=self.progress)
        trial.set_user_attr("run", str(run.dir))
        trial.set_user_attr("seed", run.seed)
        key = tune.metric.split("/", 1)[1]

        def report(run_: Run, frames: int, mean: dict) -> None:
            if key not in mean:
                raise UserError(f"tune.metric: {tune.metric} is not among the evaluation's figures "
                                f"({', '.join('eval/' + k for k in mean)})")
            trial.report(mean[key], step=frames)
            if trial.should_prune():
                run_.request_stop("pruned", f"trial {trial.number} pruned at {frames:,} frames "
                                            f"({tune.metric} {mean[key]:.4g})")

        run.eval_listeners.append(report)
        runner.execute(run)
        if run.end_status == "pruned":
            raise optuna.TrialPruned()
        last = run.last_eval or {}
        if key not in last:
            raise UserError(f"trial {trial.number}'s run ({run.dir}) ended without an evaluation of {tune.metric}")
        return float(last[key])


def tune(path: str | Path, trials: int, runs_dir: str | Path = "runs", storage: str | None = None,
         study: str | None = None, sampler: str = "tpe", pruner: str = "median", ray_address: str | None = None,
         overrides: list[str] | None = None, console=None) -> Path:
    """Run ``trials`` trials of the experiment's ``tune:`` search; write the study's report; return its folder.

    ``overrides`` are ``--set KEY=VALUE`` items, applied to the experiment before anything else (every trial,
    and best.yaml, have them), as ``train`` applies them.
    """
    from experiments.spec import find_experiment, load_spec

    spec = load_spec(path, overrides)
    if spec.tune is None:
        raise UserError(f"{path} has no tune: section. Add the settings to search, e.g.\n  tune:\n"
                        "    agent.hyperparams.learning_rate: {float: [1.0e-5, 2.0e-3], log: true}\n"
                        "    agent.hyperparams.n_steps: {choice: [64, 128, 256]}")
    source = str(find_experiment(path))
    data = apply_overrides(parse_yaml(Path(source).read_text(), source), overrides or [], source)
    name = study or spec.name
    folder = study_dir(spec, runs_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    objective = Objective(data, source, folder)
    # a trial left RUNNING by a dead process: FAIL, and queued again to resume (before any new trial)
    fail_dead_trials(make_study(spec, folder, storage, name, sampler, pruner), folder)
    if ray_address:
        _tune_on_ray(spec, objective, trials, storage, name, sampler, pruner, ray_address, folder)
    else:
        s = make_study(spec, folder, storage, name, sampler, pruner)
        try:
            s.optimize(objective, n_trials=trials, catch=(), callbacks=[objective.release])
        finally:
            objective.release()
    write_report(spec, data, lambda: make_study(spec, folder, storage, name, sampler, pruner), folder)
    return folder


def write_report(spec: ExperimentSpec, data: dict, open_study: Callable[[], Any], folder: Path) -> dict:
    """:func:`report` of the study ``open_study()`` reads, holding the study folder's report lock.

    Processes sharing a study each write the report at their end: one at a time, each reading the study only
    once it holds the lock, so the last report written holds every trial finished before it.
    """
    lock = _take_lock(folder / ".report.lock", wait=True) if fcntl is not None else None
    try:
        return report(spec, data, open_study(), folder)
    finally:
        if lock is not None:
            lock.close()


def _trial_task(data: dict, source: str, folder: str, storage: str | None, name: str, sampler: str,
                pruner: str) -> None:
    spec = validate_spec(data, source)
    s = make_study(spec, Path(folder), storage, name, sampler, pruner)
    objective = Objective(data, source, Path(folder))
    try:
        s.optimize(objective, n_trials=1, catch=(), callbacks=[objective.release])
    finally:
        objective.release()  # the task's process lives on: its locks must not


def _tune_on_ray(spec, objective, trials, storage, name, sampler, pruner, address, folder) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'retrodojo[ray]'") from None
    from agents.neat_backends import connect_ray
    from experiments.cluster import check_fits, with_booked_workers

    connect_ray(address)
    cpus = check_fits(spec)
    task = ray.remote(num_cpus=cpus)(_trial_task)
    data = with_booked_workers(spec, objective.data, cpus)
    refs = [task.remote(data, objective.source, str(folder.resolve()), storage, name, sampler, pruner)
            for _ in range(trials)]
    ray.get(refs)


def report(spec: ExperimentSpec, data: dict, study, folder: Path) -> dict:
    """trials.csv, best.yaml and the two PNGs in the study folder; returns a summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    optuna = _optuna()
    trials = study.trials  # one read of the storage: trials.csv and best.yaml tell of the same trials
    _write_trials_csv(trials, folder / "trials.csv")
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    out = {"trials": len(trials), "complete": len(complete),
           "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)}
    if not complete:
        return out
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    best = pick(complete, key=lambda t: t.value)  # the first of equals, as study.best_trial
    best_data = with_values(copy.deepcopy(data), best.params)
    best_data["description"] = (f"{data.get('description', '')} Tuned by retrodojo tune (study {study.study_name}, "
                                f"trial {best.number}: {spec.tune.metric} {best.value:.4g}).").strip()
    write_atomic(folder / "best.yaml",
                  yaml.safe_dump(best_data, sort_keys=False, default_flow_style=None, width=110))
    out.update(best_trial=best.number, best_value=best.value, best_params=best.params,
               best_run=best.user_attrs.get("run"))
    import warnings

    from optuna.visualization import matplotlib as ovm

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for fname, plot in (("optimization_history.png", ovm.plot_optimization_history),
                        ("param_importances.png", ovm.plot_param_importances)):
        try:
            ax = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # importances need two complete trials with different values
        fig = ax.figure if hasattr(ax, "figure") else plt.gcf()
        fig.set_size_inches(8, 4.5)
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=110)
        plt.close(fig)
        write_atomic(folder / fname, png.getvalue())
    return out


def _write_trials_csv(trials: list, path: Path) -> None:
    """One row per trial: number, state, value, seconds, each searched value, seed, run folder, and the trial
    it retries (one whose process died) (written here rather than with ``study.trials_dataframe()``, which
    needs pandas)."""
    import csv

    names = sorted({k for t in trials for k in t.params})
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow(["number", "state", "value", "seconds", *(f"params_{n}" for n in names), "seed", "run", "retry_of"])
    for t in trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else ""
        history = t.system_attrs.get("retry_history") or [""]
        w.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                    f"{seconds:.1f}" if seconds != "" else "", *(t.params.get(n, "") for n in names),
                    t.user_attrs.get("seed", ""), t.user_attrs.get("run", ""), history[-1]])
    write_atomic(path, f.getvalue())
