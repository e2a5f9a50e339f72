"""Compare runs on the common axis: a table of a metric at a frame count, and curves as a PNG.

Runs are grouped by (experiment, algo); seeds of a group are averaged. ``eval/*`` metrics come from each
run's ``eval/history.jsonl`` (the evaluation protocol, the fair comparison); any other TensorBoard tag
(``neat/best_fitness``, ``train/episode_progress``) is read from ``tb/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.run import find_runs, read_history, read_meta, read_scalars


def series(run: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of a metric for one run."""
    if metric.startswith("eval/"):
        key = metric.split("/", 1)[1]
        hist = [h for h in read_history(run) if isinstance(h.get(key), (int, float))]
        return np.array([h["frames"] for h in hist], float), np.array([h[key] for h in hist], float)
    pairs = read_scalars(run, metric)
    return np.array([s for s, _ in pairs], float), np.array([v for _, v in pairs], float)


def value_at(frames: np.ndarray, values: np.ndarray, at: float, window: float | None = None) -> float | None:
    """The last value logged at or before ``at`` frames; with ``window``, the mean over (at - window, at]."""
    if window:
        inside = (frames > at - window) & (frames <= at)
        return float(values[inside].mean()) if inside.any() else None
    idx = np.searchsorted(frames, at, side="right") - 1
    return float(values[idx]) if idx >= 0 else None


def compare(paths: list[str | Path], metric: str = "eval/progress", at: float | None = None,
            window: float | None = None) -> dict:
    """Group runs and summarize ``metric`` at ``at`` frames (default: the smallest final frame count).

    ``window`` averages the values logged in the last ``window`` frames up to ``at`` instead of taking the
    last one: per-episode metrics such as ``train/episode_progress`` are too noisy to read one point.
    """
    runs = find_runs(paths)
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        meta = read_meta(run)
        frames, values = series(run, metric)
        groups.setdefault((meta.get("experiment", "?"), meta.get("algo", "?")), []).append(
            {"run": str(run), "seed": meta.get("seed"), "frames": frames, "values": values, "meta": meta})
    ends = [r["frames"][-1] for rs in groups.values() for r in rs if len(r["frames"])]
    at = at if at is not None else (min(ends) if ends else 0)
    out = []
    for (experiment, algo), rs in sorted(groups.items()):
        vals = [v for r in rs if (v := value_at(r["frames"], r["values"], at, window)) is not None]
        firsts = [r["meta"].get("first_success") for r in rs]
        out.append({
            "experiment": experiment, "algo": algo, "runs": len(rs), "seeds": [r["seed"] for r in rs],
            "metric": metric, "at_frames": at, "window": window, "values": vals,
            "mean": float(np.mean(vals)) if vals else None, "std": float(np.std(vals)) if vals else None,
            "best": float(max(np.max(r["values"]) for r in rs if len(r["values"]))) if any(
                len(r["values"]) for r in rs) else None,
            "first_success": firsts,
        })
    return {"metric": metric, "at_frames": at, "window": window, "groups": out, "_series": groups}


def plot(result: dict, path: str | Path, title: str | None = None) -> Path:
    """Curves of every group (mean over seeds bold, seeds thin) against emulator frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i, ((experiment, algo), rs) in enumerate(sorted(result["_series"].items())):
        color = f"C{i}"
        grid = np.unique(np.concatenate([r["frames"] for r in rs if len(r["frames"])] or [np.array([0.0])]))
        curves = []
        for r in rs:
            if len(r["frames"]):
                ax.plot(r["frames"], r["values"], color=color, alpha=0.3, lw=1)
                curves.append([value_at(r["frames"], r["values"], g) for g in grid])
        if curves:
            arr = np.array([[np.nan if v is None else v for v in c] for c in curves], float)
            ax.plot(grid, np.nanmean(arr, axis=0), color=color, lw=2.2,
                    label=f"{experiment} ({algo}, {len(rs)} seed{'s' if len(rs) > 1 else ''})")
    ax.set_xlabel("emulator frames")
    ax.set_ylabel(result["metric"])
    ax.set_title(title or f"{result['metric']} against emulator frames")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
