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

The study folder ends with ``trials.csv``, ``best.yaml`` (the experiment with the best values filled in,
trainable as it is) and the optimisation history and parameter importances as PNGs.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from experiments.errors import UserError
from experiments.spec import ExperimentSpec, TuneParam, apply_overrides, parse_yaml, validate_spec


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


def storage_for(url: str | None, folder: Path):
    """An Optuna storage: the URL given, or a journal file in the study folder."""
    _optuna()
    if url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    folder.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(folder / "journal.log")))


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
    """One trial = one run of the experiment with the trial's values, judged on ``tune.metric``."""

    def __init__(self, data: dict, source: str, folder: Path, progress=None):
        self.data = data
        self.source = source
        self.folder = folder
        self.progress = progress

    def __call__(self, trial) -> float:
        """Run the trial; report each evaluation; prune on the pruner's word; return the last evaluation."""
        from experiments import runner
        from experiments.run import Run

        optuna = _optuna()
        base = validate_spec(self.data, self.source)
        tune = base.tune
        values = {name: suggest(trial, name, p) for name, p in tune.params.items()}
        seed = base.seeds[0] + trial.number
        spec = validate_spec(with_values(self.data, values), f"{self.source} (trial {trial.number})")
        run = Run.create(spec, seed, self.folder, name="trials", progress_cb=self.progress)
        trial.set_user_attr("run", str(run.dir))
        trial.set_user_attr("seed", seed)
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
    if ray_address:
        _tune_on_ray(spec, objective, trials, storage, name, sampler, pruner, ray_address, folder)
    else:
        s = make_study(spec, folder, storage, name, sampler, pruner)
        s.optimize(objective, n_trials=trials, catch=())
    report(spec, data, make_study(spec, folder, storage, name, sampler, pruner), folder)
    return folder


def _trial_task(data: dict, source: str, folder: str, storage: str | None, name: str, sampler: str,
                pruner: str) -> None:
    spec = validate_spec(data, source)
    s = make_study(spec, Path(folder), storage, name, sampler, pruner)
    s.optimize(Objective(data, source, Path(folder)), n_trials=1, catch=())


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
    _write_trials_csv(study, folder / "trials.csv")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    out = {"trials": len(study.trials), "complete": len(complete),
           "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)}
    if not complete:
        return out
    best = study.best_trial
    best_data = with_values(copy.deepcopy(data), best.params)
    best_data["description"] = (f"{data.get('description', '')} Tuned by retrodojo tune (study {study.study_name}, "
                                f"trial {best.number}: {spec.tune.metric} {best.value:.4g}).").strip()
    (folder / "best.yaml").write_text(yaml.safe_dump(best_data, sort_keys=False, default_flow_style=None, width=110))
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
        fig.savefig(folder / fname, dpi=110)
        plt.close(fig)
    return out


def _write_trials_csv(study, path: Path) -> None:
    """One row per trial: number, state, value, seconds, each searched value, seed and run folder (written
    here rather than with ``study.trials_dataframe()``, which needs pandas)."""
    import csv

    names = sorted({k for t in study.trials for k in t.params})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "value", "seconds", *(f"params_{n}" for n in names), "seed", "run"])
        for t in study.trials:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
                if t.datetime_complete and t.datetime_start else ""
            w.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                        f"{seconds:.1f}" if seconds != "" else "", *(t.params.get(n, "") for n in names),
                        t.user_attrs.get("seed", ""), t.user_attrs.get("run", "")])
