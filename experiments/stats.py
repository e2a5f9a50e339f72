"""Statistics for comparing runs the way Agarwal et al. (2021, "Deep RL at the edge of the statistical
precipice") recommend: interquartile mean (IQM) with stratified-bootstrap confidence intervals, probability
of improvement, performance profiles, and bootstrap bands for learning curves.

Written with numpy rather than taken from ``rliable``: rliable 1.2.0 fails to import beside
pandas 3 on a default install (checked on this project's machine), and the few estimators needed here
are short. The definitions follow the paper (section 4 and appendix A) and rliable's ``metrics.py``:

- scores are given per task (a task is a game and its start states; a run is a seed): a ``runs x tasks``
  matrix as rliable takes, one task's runs as a 1-D array, or a mapping ``task -> runs`` where tasks may
  have different numbers of runs;
- a **stratified bootstrap** resamples the runs of each task independently, with replacement, so every
  resample keeps each task's share of the scores (a pooled bootstrap would not);
- the **IQM** is the mean of the middle 50% of all run-task scores (what ``scipy.stats.trim_mean(x, 0.25)``
  computes: ``floor(n/4)`` scores cut from each end);
- the **probability of improvement** of X over Y is the average over tasks of P(X > Y) for a random run of
  each, ties counting half (the Mann-Whitney U statistic divided by n*m);
- a **performance profile** is the fraction of run-task scores above each threshold.

Every resampling takes a seed, so intervals are reproducible. No interval is given where a task has fewer
than :data:`MIN_RUNS` runs: a percentile bootstrap of one value is that value, and of two only their
midpoint and ends, which is no 95% interval of anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

#: The fewest runs per task that get a bootstrap interval.
MIN_RUNS = 3

#: Scores per task: task name (or column index) -> that task's runs.
Tasks = dict[object, np.ndarray]


def per_task(scores) -> Tasks:
    """Scores as ``{task: 1-D array of its runs}``: from a mapping, a ``runs x tasks`` matrix or one task's runs."""
    if isinstance(scores, Mapping):
        return {t: np.asarray(v, dtype=float).ravel() for t, v in scores.items()}
    a = np.asarray(scores, dtype=float)
    if a.ndim <= 1:
        return {0: a.ravel()}
    if a.ndim != 2:
        raise ValueError(f"scores must be a runs x tasks matrix, got {a.ndim} dimensions")
    return {t: a[:, t] for t in range(a.shape[1])}


def _pooled(scores) -> np.ndarray:
    tasks = per_task(scores)
    return np.concatenate(list(tasks.values())) if tasks else np.array([])


def iqm(scores) -> float:
    """Interquartile mean of all run-task scores (a mapping, a runs x tasks matrix, or one task's runs)."""
    x = np.sort(_pooled(scores))
    cut = int(0.25 * len(x))
    return float(x[cut:len(x) - cut].mean())


def mean(scores) -> float:
    """Mean of all run-task scores."""
    return float(np.mean(_pooled(scores)))


def fewest_runs(scores) -> int:
    """The smallest number of runs of any task (what decides whether an interval can be given)."""
    return min((len(v) for v in per_task(scores).values()), default=0)


def _percentile(samples, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def stratified_bootstrap(scores, statistic: Callable[[Tasks], float], reps: int = 2000,
                         confidence: float = 0.95, seed: int = 0,
                         min_runs: int = MIN_RUNS) -> tuple[float, float | None, float | None]:
    """(point estimate, low, high) of ``statistic`` with a percentile stratified-bootstrap interval.

    Each resample draws, for every task, as many runs as it has from that task's own runs; ``statistic``
    gets the resample as ``{task: runs}``. Low and high are None when a task has fewer than ``min_runs`` runs.
    """
    tasks = per_task(scores)
    point = statistic(tasks)
    if fewest_runs(tasks) < min_runs:
        return point, None, None
    rng = np.random.default_rng(seed)
    samples = [statistic({t: v[rng.integers(0, len(v), len(v))] for t, v in tasks.items()}) for _ in range(reps)]
    return (point, *_percentile(samples, confidence))


def _same_tasks(a: Tasks, b: Tasks) -> None:
    if list(a) != list(b):
        raise ValueError(f"both groups need the same tasks, got {list(a)} and {list(b)}")


def probability_of_improvement(x, y) -> float:
    """P(X > Y): over tasks, the chance a random run of X scores above a random run of Y (ties count half)."""
    a, b = per_task(x), per_task(y)
    _same_tasks(a, b)
    per = [float(np.mean((a[t][:, None] > b[t][None, :]) + 0.5 * (a[t][:, None] == b[t][None, :]))) for t in a]
    return float(np.mean(per))


def probability_of_improvement_ci(x, y, reps: int = 2000, confidence: float = 0.95, seed: int = 0,
                                  min_runs: int = MIN_RUNS) -> tuple[float, float | None, float | None]:
    """P(X > Y) with a stratified-bootstrap interval (both groups' runs resampled within each task); low and
    high are None when either group has fewer than ``min_runs`` runs on a task."""
    a, b = per_task(x), per_task(y)
    point = probability_of_improvement(a, b)
    if min(fewest_runs(a), fewest_runs(b)) < min_runs:
        return point, None, None
    rng = np.random.default_rng(seed)

    def draw(tasks: Tasks) -> Tasks:
        return {t: v[rng.integers(0, len(v), len(v))] for t, v in tasks.items()}

    samples = [probability_of_improvement(draw(a), draw(b)) for _ in range(reps)]
    return (point, *_percentile(samples, confidence))


def performance_profile(scores, thresholds: Sequence[float]) -> np.ndarray:
    """Fraction of run-task scores above each threshold."""
    flat = _pooled(scores)
    return np.array([float(np.mean(flat > t)) for t in thresholds])


def bootstrap_band(curves: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean, reps: int = 1000,
                   confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point, low and high of ``statistic`` over seeds at each point of a (seeds x points) array of curves
    (NaN where a seed has no value yet is left out)."""
    curves = np.asarray(curves, float)
    rng = np.random.default_rng(seed)
    point, low, high = [], [], []
    alpha = (1 - confidence) / 2
    for col in curves.T:
        vals = col[~np.isnan(col)]
        if not len(vals):
            point.append(np.nan)
            low.append(np.nan)
            high.append(np.nan)
            continue
        point.append(float(statistic(vals)))
        if len(vals) < 2:
            low.append(point[-1])
            high.append(point[-1])
            continue
        boots = [statistic(vals[rng.integers(0, len(vals), len(vals))]) for _ in range(reps)]
        lo, hi = np.quantile(boots, [alpha, 1 - alpha])
        low.append(float(lo))
        high.append(float(hi))
    return np.array(point), np.array(low), np.array(high)
