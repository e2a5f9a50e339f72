"""Compare runs on the common axis, with the statistics Agarwal et al. (2021) recommend.

Runs are grouped by their resolved config (``config.yaml``) minus the seed: two runs are seeds of one group
only if everything else is the same. Where the groups given together differ, each group is labelled by the
settings that make it different (``state=Level4-1``) instead of being pooled.

For the chosen metric at one frame count (the last value logged at or before it, or the mean over a
window), each group gets mean, std, n, the interquartile mean with a 95% stratified-bootstrap confidence
interval, and each pair of groups the probability of improvement with its interval (:mod:`experiments.stats`).
Curves are the mean over seeds with a bootstrap band; with several games, a performance profile per algo.
``eval/*`` metrics come from each run's ``eval/history.jsonl``; any other TensorBoard tag from ``tb/``.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import stats
from experiments.run import find_runs, read_history, read_meta, read_scalars

#: Resampling settings: fixed, so a report's intervals are the same every time it is made.
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0


def series(run: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of a metric for one run."""
    if metric.startswith(("eval/", "eval_heldout/")):
        section, key = metric.split("/", 1)
        hist = read_history(run)
        if section == "eval_heldout":
            hist = [{"frames": h["frames"], **h["heldout"]} for h in hist if isinstance(h.get("heldout"), dict)]
        hist = [h for h in hist if isinstance(h.get(key), (int, float))]
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


def _flat(d, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _config(run: Path) -> dict:
    import yaml

    from wrappers.errors import UserError, load_yaml, read_text_file

    try:  # bounded: a shared run's config.yaml may be hostile (aliases that expand to gigabytes)
        data = load_yaml(read_text_file(run / "config.yaml", "run's config.yaml", ""))
    except (UserError, yaml.YAMLError, ValueError, RecursionError):
        data = {}
    data = data if isinstance(data, dict) else {}
    data.pop("seeds", None)
    return data


@dataclass
class Group:
    """Seeds of one configuration."""

    key: str
    config: dict
    runs: list[dict] = field(default_factory=list)
    label: str = ""
    differs: dict = field(default_factory=dict)

    @property
    def game(self) -> str:
        """The game and start state(s) the group played."""
        return f"{self.config.get('game')}:{self.config.get('state') or self.config.get('states')}"

    @property
    def algo(self) -> str:
        """The group's algorithm."""
        return str((self.config.get("agent") or {}).get("algo", "?"))


def group_runs(paths) -> list[Group]:
    """Runs under ``paths`` grouped by resolved config minus seed, each labelled by what sets it apart."""
    groups: dict[str, Group] = {}
    for run in find_runs(paths):
        try:
            meta = read_meta(run)
        except Exception:  # an unreadable run is left out of a comparison, not fatal to it
            continue
        cfg = _config(run)
        key = json.dumps(cfg, sort_keys=True, default=str)
        groups.setdefault(key, Group(key=key, config=cfg)).runs.append({"run": run, "meta": meta,
                                                                         "seed": meta.get("seed")})
    out = list(groups.values())
    flats = [_flat(g.config) for g in out]
    keys = sorted(set().union(*flats)) if flats else []
    varying = [k for k in keys if k != "description" and len({json.dumps(f.get(k), default=str) for f in flats}) > 1]
    for g, f in zip(out, flats):
        g.differs = {k: f.get(k) for k in varying if k not in ("name",)}
        name = f"{g.config.get('name', '?')} ({g.algo})"
        names = [x.config.get("name") for x in out]
        extra = [f"{k}={f.get(k)}" for k in g.differs if k != "agent.algo"] if names.count(g.config.get("name")) > 1 \
            else []
        g.label = name + (f" [{', '.join(extra)}]" if extra else "")
    return sorted(out, key=lambda g: g.label)


def compare(paths, metric: str = "eval/progress", at: float | None = None, window: float | None = None) -> dict:
    """Group runs and compare ``metric`` at ``at`` frames (default: the smallest final frame count).

    ``window`` averages the values logged in the last ``window`` frames up to ``at`` instead of taking the
    last one: per-episode metrics such as ``train/episode_progress`` are too noisy to read one point.
    """
    groups = group_runs(paths)
    for g in groups:
        for r in g.runs:
            r["frames"], r["values"] = series(r["run"], metric)
    ends = [r["frames"][-1] for g in groups for r in g.runs if len(r["frames"])]
    at = at if at is not None else (min(ends) if ends else 0)
    rows = []
    for g in groups:
        vals = [v for r in g.runs if (v := value_at(r["frames"], r["values"], at, window)) is not None]
        row = {"group": g.label, "experiment": g.config.get("name"), "algo": g.algo, "game": g.game,
               "differs": g.differs, "runs": len(g.runs), "seeds": [r["seed"] for r in g.runs],
               "metric": metric, "at_frames": at, "window": window, "values": vals, "n": len(vals),
               "first_success": [r["meta"].get("first_success") for r in g.runs],
               "run_dirs": [str(r["run"]) for r in g.runs]}
        if vals:
            point, lo, hi = stats.stratified_bootstrap(vals, stats.iqm, BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED)
            row.update(mean=float(np.mean(vals)), std=float(np.std(vals)), iqm=point, iqm_ci=[lo, hi],
                       best=float(max(np.max(r["values"]) for r in g.runs if len(r["values"]))))
        else:
            row.update(mean=None, std=None, iqm=None, iqm_ci=None, best=None)
        rows.append(row)
    pairs = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if a["values"] and b["values"]:
                p, lo, hi = stats.probability_of_improvement_ci(a["values"], b["values"], BOOTSTRAP_REPS,
                                                                seed=BOOTSTRAP_SEED)
                pairs.append({"a": a["group"], "b": b["group"], "p_a_better": p, "ci": [lo, hi]})
    return {"metric": metric, "at_frames": at, "window": window, "groups": rows, "pairs": pairs,
            "_groups": groups}


def _curves(g: Group, grid: np.ndarray, window: float | None = None) -> np.ndarray:
    return np.array([[np.nan if (v := value_at(r["frames"], r["values"], x, window)) is None else v for x in grid]
                     for r in g.runs if len(r["frames"])], float).reshape(-1, len(grid))


def curve_grid(g: Group, window: float | None = None, points: int = 100) -> np.ndarray:
    """Frame counts to draw a group's curve at: where values were logged, or with ``window`` an even grid.

    Per-episode metrics come many to a frame count (8 envs whose bouts end on the same clock), so their raw
    points draw as vertical bars; the windowed mean on an even grid is the curve the table's figure reads.
    """
    logged = [r["frames"] for r in g.runs if len(r["frames"])]
    if not logged:
        return np.array([0.0])
    if window:
        end = max(f.max() for f in logged)
        start = min(f.min() for f in logged) + window
        return np.linspace(min(start, end), end, points)
    return np.unique(np.concatenate(logged))


def plot(result: dict, path: str | Path, title: str | None = None) -> Path:
    """Curves of every group: the mean over seeds with a 95% bootstrap band, each seed thin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for i, g in enumerate(result["_groups"]):
        color = f"C{i}"
        window = result.get("window")
        grid = curve_grid(g, window)
        curves = _curves(g, grid, window)
        for curve in curves:  # one per seed that logged the metric
            ax.plot(grid, curve, color=color, alpha=0.25, lw=0.8)
        if curves.size:
            point, lo, hi = stats.bootstrap_band(curves, np.mean, reps=500, seed=BOOTSTRAP_SEED)
            n = len(curves)
            ax.plot(grid, point, color=color, lw=2.2, label=f"{g.label}, {n} seed{'s' if n > 1 else ''}")
            if n > 1:
                ax.fill_between(grid, lo, hi, color=color, alpha=0.15, lw=0)
    ax.set_xlabel("emulator frames")
    ax.set_ylabel(result["metric"])
    over = f" (mean over {result['window']:,.0f} frames)" if result.get("window") else ""
    ax.set_title(title or f"{result['metric']}{over}: mean over seeds, 95% bootstrap band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def profile_plot(result: dict, path: str | Path) -> Path | None:
    """Performance profiles per algo across games (None with fewer than two games): each game's values
    are scaled to 0..1 between the lowest and highest of all runs on it, then pooled per algo."""
    rows = [r for r in result["groups"] if r["values"]]
    games = sorted({r["game"] for r in rows})
    if len(games) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaled: dict[str, list[float]] = {}
    for game in games:
        vals = [v for r in rows if r["game"] == game for v in r["values"]]
        lo, hi = min(vals), max(vals)
        for r in rows:
            if r["game"] == game:
                scaled.setdefault(r["algo"], []).extend((v - lo) / (hi - lo) if hi > lo else 1.0
                                                        for v in r["values"])
    taus = np.linspace(0, 1, 101)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for algo, vals in sorted(scaled.items()):
        ax.plot(taus, stats.performance_profile(vals, taus), lw=2, label=f"{algo} ({len(vals)} runs)")
    ax.set_xlabel(f"{result['metric']} scaled per game (0 worst run, 1 best run)")
    ax.set_ylabel("fraction of runs above")
    ax.set_title(f"performance profile over {len(games)} games")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def fmt(v) -> str:
    """A figure for a table: four significant digits, '-' for none."""
    return "-" if v is None else f"{v:,.4g}"


def fmt_ci(ci) -> str:
    """An interval as [low, high]."""
    return "-" if not ci else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).name)}">'


def html_report(result: dict, path: str | Path, title: str | None = None) -> Path:
    """One self-contained HTML page: the table, the pairs, the curves (and profile), each group's config
    side by side with the differing settings highlighted, and links to each run's videos."""
    import tempfile

    path = Path(path)
    esc = html.escape
    with tempfile.TemporaryDirectory() as tmp:
        curves = _img(plot(result, Path(tmp) / "curves.png", title))
        prof = profile_plot(result, Path(tmp) / "profile.png")
        profile = _img(prof) if prof else ""
    rows = "".join(
        f"<tr><td>{esc(g['group'])}</td><td>{g['n']}</td><td>{fmt(g['mean'])}</td><td>{fmt(g['std'])}</td>"
        f"<td><b>{fmt(g['iqm'])}</b></td><td>{fmt_ci(g['iqm_ci'])}</td>"
        f"<td>{', '.join(fmt(v) for v in g['values'])}</td></tr>" for g in result["groups"])
    pairs = "".join(f"<tr><td>{esc(p['a'])}</td><td>{esc(p['b'])}</td><td><b>{p['p_a_better']:.2f}</b></td>"
                    f"<td>[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]</td></tr>" for p in result["pairs"])
    groups = result["_groups"]
    flats = [_flat(g.config) for g in groups]
    keys = sorted(set().union(*flats)) if flats else []
    differ = {k for k in keys if len({json.dumps(f.get(k), default=str) for f in flats}) > 1}
    cfg_rows = "".join(
        f"<tr{' class=diff' if k in differ else ''}><td>{esc(k)}</td>"
        + "".join(f"<td>{esc(json.dumps(f.get(k), default=str))}</td>" for f in flats) + "</tr>" for k in keys)
    links = []
    for g in groups:
        for r in g.runs:
            vids = sorted(Path(r["run"]).glob("eval/**/*.mp4"))
            items = "".join(f'<li><a href="{esc(v.resolve().as_uri())}">{esc(v.name)}</a></li>' for v in vids)
            links.append(f"<li>{esc(g.label)}, seed {r['seed']}: <code>{esc(str(r['run']))}</code>"
                         f"<ul>{items or '<li>no videos (retrodojo evaluate RUN --video)</li>'}</ul></li>")
    over = f", mean over the last {result['window']:,.0f} frames" if result["window"] else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title or 'retrodojo comparison')}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} tr.diff td {{ background: #fff3c4; font-weight: 600; }}
img {{ max-width: 100%; }} code {{ font-size: 12px; }}
</style></head><body>
<h1>{esc(title or 'retrodojo comparison')}</h1>
<p><b>{esc(result['metric'])}</b> at {result['at_frames']:,.0f} emulator frames{over}. Groups are runs whose resolved
configs are the same but for the seed. IQM: interquartile mean, with a 95% stratified-bootstrap interval
({BOOTSTRAP_REPS} resamples, seed {BOOTSTRAP_SEED}); P(A &gt; B): the probability that a random run of A beats one
of B (Agarwal et al. 2021).</p>
<h2>Groups</h2>
<table><tr><th>group</th><th>n</th><th>mean</th><th>std</th><th>IQM</th><th>95% CI</th><th>per seed</th></tr>
{rows}</table>
<h2>Probability of improvement</h2>
<table><tr><th>A</th><th>B</th><th>P(A &gt; B)</th><th>95% CI</th></tr>
{pairs or '<tr><td colspan=4>one group</td></tr>'}</table>
<h2>Curves</h2>{curves}{profile}
<h2>Configurations</h2><p>Settings that differ between the groups are highlighted.</p>
<table><tr><th>setting</th>{''.join(f'<th>{esc(g.label)}</th>' for g in groups)}</tr>{cfg_rows}</table>
<h2>Runs and videos</h2><ul>{''.join(links)}</ul>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
