"""Statistics for comparing runs the way Agarwal et al. (2021, "Deep RL at the edge of the statistical
precipice") recommend: interquartile mean (IQM) with stratified-bootstrap confidence intervals, probability
of improvement, performance profiles, and bootstrap bands for learning curves.

Written with numpy rather than taken from ``rliable``: rliable 1.2.0 fails to import beside
pandas 3 on a default install (checked on this project's machine), and the few estimators needed here
are short. The definitions follow the paper (section 4 and appendix A) and rliable's ``metrics.py``:

- scores form a matrix ``runs x tasks`` (a task is a game or level; a run is a seed);
- a **stratified bootstrap** resamples the runs of each task independently, with replacement;
- the **IQM** is the mean of the middle 50% of all run-task scores (what ``scipy.stats.trim_mean(x, 0.25)``
  computes: ``floor(n/4)`` scores cut from each end);
- the **probability of improvement** of X over Y is the average over tasks of P(X > Y) for a random run of
  each, ties counting half (the Mann-Whitney U statistic divided by n*m);
- a **performance profile** is the fraction of run-task scores above each threshold.

Every resampling takes a seed, so intervals are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _matrix(scores) -> np.ndarray:
    a = np.asarray(scores, dtype=float)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def iqm(scores) -> float:
    """Interquartile mean of all scores (a runs x tasks matrix, or one task's runs)."""
    x = np.sort(_matrix(scores).ravel())
    cut = int(0.25 * len(x))
    return float(x[cut:len(x) - cut].mean())


def mean(scores) -> float:
    """Mean of all scores."""
    return float(np.mean(_matrix(scores)))


def stratified_bootstrap(scores, statistic: Callable[[np.ndarray], float], reps: int = 2000,
                         confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(point estimate, low, high) of ``statistic`` with a percentile stratified-bootstrap interval."""
    m = _matrix(scores)
    point = statistic(m)
    if m.shape[0] < 2:
        return point, point, point
    rng = np.random.default_rng(seed)
    n, tasks = m.shape
    idx = rng.integers(0, n, size=(reps, n, tasks))  # runs drawn per task, independently
    samples = np.array([statistic(np.take_along_axis(m, idx[r], axis=0)) for r in range(reps)])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return point, float(low), float(high)


def probability_of_improvement(x, y) -> float:
    """P(X > Y): over tasks, the chance a random run of X scores above a random run of Y (ties count half)."""
    a, b = _matrix(x), _matrix(y)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both groups need the same tasks, got {a.shape[1]} and {b.shape[1]}")
    per_task = []
    for t in range(a.shape[1]):
        xa, yb = a[:, t][:, None], b[:, t][None, :]
        per_task.append(float(np.mean((xa > yb) + 0.5 * (xa == yb))))
    return float(np.mean(per_task))


def probability_of_improvement_ci(x, y, reps: int = 2000, confidence: float = 0.95,
                                  seed: int = 0) -> tuple[float, float, float]:
    """P(X > Y) with a stratified-bootstrap interval (both groups' runs resampled within each task)."""
    a, b = _matrix(x), _matrix(y)
    point = probability_of_improvement(a, b)
    if min(a.shape[0], b.shape[0]) < 2:
        return point, point, point
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(reps):
        ia = rng.integers(0, a.shape[0], size=a.shape)
        ib = rng.integers(0, b.shape[0], size=b.shape)
        samples.append(probability_of_improvement(np.take_along_axis(a, ia, 0), np.take_along_axis(b, ib, 0)))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return point, float(low), float(high)


def performance_profile(scores, thresholds: Sequence[float]) -> np.ndarray:
    """Fraction of run-task scores above each threshold."""
    flat = _matrix(scores).ravel()
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
