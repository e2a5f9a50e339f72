"""Compare runs on the common axis, with the statistics Agarwal et al. (2021) recommend.

Runs are grouped by their resolved config (``config.yaml``) minus the seed: two runs are seeds of one group
only if everything else is the same. Where the groups given together differ, each group is labelled by the
settings that make it different (``state=Level4-1``) instead of being pooled.

Each group plays one **task**: a game and its set of start states. For the chosen metric at one frame count
(the last value logged at or before it, or the mean over a window), each group gets mean, sample std, n and
the interquartile mean with a 95% stratified-bootstrap confidence interval (none under 3 seeds), and each
pair of groups *of one task* the probability of improvement with its interval (:mod:`experiments.stats`).

When runs of several tasks are given, groups that differ only in their task are one **method**
(:func:`methods`). A method's runs on all its tasks are the tasks of one stratified bootstrap, as rliable
does, after each task's scores are normalised against a baseline the user states (:func:`load_baselines`):
raw scores of different games are not on one scale. Methods that played the same tasks get a probability
of improvement averaged over them, which needs no baseline (it only ranks runs within each task).

Curves are the mean over seeds with a bootstrap band; across tasks, a performance profile per method.
``eval/*`` metrics come from each run's ``eval/history.jsonl``; any other TensorBoard tag from ``tb/``.

NEAT runs can also be compared at equal generations (``at_generation``): each run is read at the frame
count where it finished that many generations, since inputs that cost more per step (pixels against tiles)
make a generation cost different frames and minutes. ``running_best`` reads the best value so far instead of
the last one (``neat/best_progress`` logs each generation's best, and "best x by generation 100" is the max).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import stats
from experiments.errors import UserError
from experiments.run import find_runs, flatten, read_history, read_meta, read_scalars

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


def frames_at_generation(run: Path, generations: int) -> tuple[float, int]:
    """The frame count at which ``run`` had finished ``generations`` NEAT generations, and how many it had
    finished then: fewer when the run ended before (a level cleared, a budget spent), read at its end."""
    if generations < 1:
        raise UserError(f"--at-generation {generations}: give a number of generations, 1 or more.")
    logged = read_scalars(run, "neat/generation")  # the 0-based index of each generation just evaluated
    if not logged:
        raise UserError(f"{run} logs no neat/generation: --at-generation compares NEAT runs. Compare other "
                        "runs at a frame count (--at).")
    for frames, gen in logged:
        if int(gen) + 1 >= generations:
            return float(frames), generations
    return float(logged[-1][0]), int(logged[-1][1]) + 1


def value_at(frames: np.ndarray, values: np.ndarray, at: float, window: float | None = None) -> float | None:
    """The last value logged at or before ``at`` frames; with ``window``, the mean over (at - window, at]."""
    if window:
        inside = (frames > at - window) & (frames <= at)
        return float(values[inside].mean()) if inside.any() else None
    idx = np.searchsorted(frames, at, side="right") - 1
    return float(values[idx]) if idx >= 0 else None


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


def task_of(config: dict) -> str:
    """The task a resolved config plays: its game and set of start states, e.g. ``SuperMarioBros-Nes:Level1-1``
    (several states joined by ``+``, sorted; ``default`` for the game's own start state)."""
    states = config.get("states") or config.get("state")
    if not isinstance(states, (dict, list)):  # a dict weighs its states: the weights are training, not the task
        states = [states] if states else ["default"]
    names = sorted(map(str, states))
    return f"{config.get('game')}:{'+'.join(names)}"


def differing(flats: list[dict]) -> list[str]:
    """The settings (dotted keys of :func:`experiments.run.flatten`) not the same in all of ``flats``, sorted;
    a missing key counts as null (a run from before a setting existed is not set apart by it)."""
    keys = sorted(set().union(*flats)) if flats else []
    return [k for k in keys if len({json.dumps(f.get(k, "null")) for f in flats}) > 1]


@dataclass
class Group:
    """Seeds of one configuration."""

    key: str
    config: dict
    runs: list[dict] = field(default_factory=list)
    label: str = ""
    differs: dict = field(default_factory=dict)
    pool: tuple = ()  # settings left out of the grouping (compare --pool): not this group's to show

    @property
    def flat(self) -> dict:
        """The group's settings as dotted keys (:func:`experiments.run.flatten`), less the pooled ones."""
        return {k: v for k, v in flatten(self.config).items() if not _pooled(k, self.pool)}

    @property
    def task(self) -> str:
        """The game and start state(s) the group played (:func:`task_of`)."""
        return task_of(self.config)

    @property
    def algo(self) -> str:
        """The group's algorithm."""
        return str((self.config.get("agent") or {}).get("algo", "?"))


def _pooled(key: str, pool) -> bool:
    return any(key == p or key.startswith(p + ".") for p in pool)


def group_runs(paths, pool: list[str] | tuple = ()) -> list[Group]:
    """Runs under ``paths`` grouped by resolved config minus seed, each labelled by what sets it apart.

    ``pool`` names settings (dotted keys, or a section such as ``budget``) to leave out of the grouping: runs
    that differ only there are seeds of one group, for a setting the reader knows did not bind (a frame cap
    that a run never reached). A pool key that no run has, or two runs of one seed in one group, is a
    :class:`UserError`."""
    pool = tuple(pool)
    groups: dict[str, Group] = {}
    seen: set[str] = set()
    for run in find_runs(paths):
        try:
            meta = read_meta(run)
        except Exception:  # an unreadable run is left out of a comparison, not fatal to it
            continue
        cfg = _config(run)
        flat = flatten(cfg)
        seen.update(k for k in flat if _pooled(k, pool))
        # a null setting is an absent one: a run from before the setting existed is a seed of the same group
        key = json.dumps({k: v for k, v in flat.items() if not _pooled(k, pool) and v != "null"}, sort_keys=True,
                         default=str)
        groups.setdefault(key, Group(key=key, config=cfg, pool=pool)).runs.append(
            {"run": run, "meta": meta, "seed": meta.get("seed")})
    unknown = [p for p in pool if not any(_pooled(k, (p,)) for k in seen)]
    if unknown and groups:
        raise UserError(f"--pool {', '.join(unknown)}: no run has that setting. Give a dotted key of the runs' "
                        "config.yaml, such as budget.frames, or a section such as budget.")
    out = list(groups.values())
    for g in out:
        seeds = [r["seed"] for r in g.runs]
        twice = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
        if pool and twice:
            runs = [str(r["run"]) for r in g.runs if r["seed"] in twice]
            raise UserError(f"--pool {', '.join(pool)} makes {', '.join(runs)} runs of one seed ({twice[0]}) in one "
                            "group, which would count it twice: leave one of them out of the paths.")
    flats = [g.flat for g in out]
    varying = [k for k in differing(flats) if k != "description"]
    for g, f in zip(out, flats):
        g.differs = {k: f.get(k) for k in varying if k != "name"}
    for name in {str(g.config.get("name")) for g in out}:
        # the experiment name says enough unless several groups share it; then what sets those apart
        same = [(g, f) for g, f in zip(out, flats) if str(g.config.get("name")) == name]
        keys = [k for k in differing([f for _, f in same]) if k not in ("description", "name", "agent.algo")] \
            if len(same) > 1 else []
        for (g, _), extra in zip(same, _settings_label(keys, [g.config for g, _ in same], [f for _, f in same])):
            g.label = f"{g.config.get('name', '?')} ({g.algo})" + (f" [{', '.join(extra)}]" if extra else "")
    return sorted(out, key=lambda g: g.label)


def _section(config: dict, key: str) -> tuple[str, object]:
    """The dotted path down ``key`` as far as ``config`` has mappings, and what stands there."""
    node, path = config, []
    for part in key.split("."):
        path.append(part)
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            break
    return ".".join(path), node


def _settings_label(keys: list[str], configs: list[dict], flats: list[dict]) -> list[list[str]]:
    """``key=value`` per group for each of ``keys``; a section (a mapping in some groups, null or absent in
    others) that is the same wherever it is set reads ``section=on`` / ``section=null``, not each setting."""
    tops = {k.split(".")[0] for k in keys}
    sections = {p for p in tops if any(isinstance(c.get(p), dict) for c in configs)
                and any(c.get(p) is None for c in configs)}
    collapsed = {p for p in sections
                 if len({json.dumps({k: v for k, v in f.items() if k.startswith(p + ".")}, sort_keys=True)
                         for c, f in zip(configs, flats) if isinstance(c.get(p), dict)}) <= 1}
    labels = []
    for c, f in zip(configs, flats):
        out = []
        for k in keys:
            top = k.split(".")[0]
            if top in collapsed:
                item = f"{top}=on" if isinstance(c.get(top), dict) else f"{top}=null"
            elif k in f:  # the key as written: names inside it may hold dots (SF2's state names)
                item = f"{k}={f[k]}"
            else:
                path, _ = _section(c, k)
                item = f"{path}=null"
            if item not in out:
                out.append(item)
        labels.append(out)
    return labels


@dataclass
class Method:
    """Groups that differ only in their task: one way of learning, played on one task or several."""

    label: str
    algo: str
    groups: dict[str, Group]  # task -> the group that played it


def methods(groups: list[Group]) -> list[Method]:
    """Groups joined across tasks: two groups are one method when they agree on every setting that tells two
    groups of one task apart, and on the algorithm. Settings that change only with the task (the game's
    profile, its action set, the experiment name) go with the task; the name and description count only
    where nothing else tells two groups of a task apart."""
    flats = [g.flat for g in groups]
    by_task: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_task.setdefault(g.task, []).append(i)
    inside = {k for idx in by_task.values() for k in differing([flats[i] for i in idx])}
    keys = sorted((inside | {"agent.algo"}) - {"name", "description"})
    for extra in ([], ["name"], ["name", "description"]):
        ids = [json.dumps([f.get(k, "null") for k in keys + extra]) for f in flats]
        if all(len({ids[i] for i in idx}) == len(idx) for idx in by_task.values()):
            keys = keys + extra
            break
    else:  # groups of one task that differ only in how a setting was written: each its own method
        ids = [g.key for g in groups]
    joined: dict[str, list[int]] = {}
    for i, ident in enumerate(ids):
        joined.setdefault(ident, []).append(i)
    out = []
    # a method is labelled by its algorithm, and by what sets it apart where several share that algorithm
    shown = {ident: {k: flats[idx[0]].get(k, "null") for k in keys} for ident, idx in joined.items()}
    algos = [groups[idx[0]].algo for idx in joined.values()]
    for ident, idx in joined.items():
        algo = groups[idx[0]].algo
        same_algo = [shown[j] for j, a in zip(joined, algos) if a == algo]
        extra = [f"{k}={shown[ident][k]}" for k in differing(same_algo) if k != "agent.algo"]
        label = algo + (f" [{', '.join(extra)}]" if extra else "")
        out.append(Method(label=label, algo=algo, groups={groups[i].task: groups[i] for i in idx}))
    return sorted(out, key=lambda m: m.label)


def _random_baseline(source: str, metric: str, groups: list[Group]) -> tuple[str, float]:
    """(task, value) of a random policy's result file for ``metric``."""
    from wrappers.errors import read_json_file

    fix = "Write one with `.venv/bin/python scripts/random_policy.py EXPERIMENT --json > FILE.json`."
    data = read_json_file(source, "random-policy result", fix)
    means = data.get("mean") if isinstance(data, dict) else None
    if not isinstance(means, dict):
        raise UserError(f"{source} holds JSON but not a random policy's result (no \"mean\" mapping). {fix}")
    section, _, key = metric.partition("/")
    if section != "eval" or not isinstance(means.get(key), (int, float)):
        have = ", ".join(f"eval/{k}" for k in means) or "none"
        raise UserError(f"{source} holds a random policy's evaluation means ({have}), not {metric}: for "
                        f"{metric} state the baseline as runs instead (--baseline reference=RUN_OR_DIR).")
    if data.get("game"):
        return task_of(data), float(means[key])
    # an older file names only its experiment: the task of the compared runs of that name
    tasks = {g.task for g in groups if g.config.get("name") == data.get("experiment")}
    if len(tasks) != 1:
        raise UserError(f"{source} does not say which game and states the random policy played (no \"game\" "
                        f"in it, and its experiment {data.get('experiment')!r} names "
                        f"{'no' if not tasks else 'more than one'} task among the compared runs). {fix} "
                        "The script records the game and states.")
    return tasks.pop(), float(means[key])


def load_baselines(specs: list[str] | None, metric: str, at: float, window: float | None,
                   groups: list[Group]) -> dict[str, dict]:
    """Each task's normalisation from ``--baseline`` specs (``random=FILE.json``, ``reference=RUN_OR_DIR``):
    ``{task: {"zero", "unit", "zero_from", "unit_from"}}``; a score normalises to (score - zero) / (unit - zero).

    With only a random policy or only a reference for a task, that baseline is the unit and the metric's own
    zero the zero; with both, the random policy is the zero and the reference the unit."""
    randoms: dict[str, tuple[float, str]] = {}
    refs: dict[str, list[float]] = {}
    ref_from: dict[str, set[str]] = {}
    for spec in specs or []:
        kind, sep, source = spec.partition("=")
        if not sep or not source or kind not in ("random", "reference"):
            raise UserError(f"--baseline {spec}: expected random=FILE.json (a random policy's evaluation) or "
                            "reference=RUN_OR_DIR (runs whose mean at --at is the yardstick); `retrodojo compare "
                            "--help` says how each normalises.")
        if kind == "random":
            task, value = _random_baseline(source, metric, groups)
            if task in randoms:
                raise UserError(f"--baseline random=: {randoms[task][1]} and {source} are both random policies of "
                                f"{task}; give one per task.")
            randoms[task] = (value, source)
            continue
        if not Path(source).exists():
            raise UserError(f"--baseline reference={source}: no such folder. Give run folders or folders "
                            "holding runs.")
        found = find_runs(source)
        if not found:
            raise UserError(f"--baseline reference={source}: no runs there (run folders hold meta.json and "
                            "config.yaml).")
        for run in found:
            value = value_at(*series(run, metric), at, window)
            if value is not None:  # a reference run without the metric by --at is no yardstick
                task = task_of(_config(run))
                refs.setdefault(task, []).append(value)
                ref_from.setdefault(task, set()).add(source)
    out = {}
    for task in sorted(set(randoms) | set(refs)):
        if task in refs:
            unit = float(np.mean(refs[task]))
            unit_from = f"reference: mean of {len(refs[task])} run(s) of {', '.join(sorted(ref_from[task]))}"
            zero, random_file = randoms.get(task, (0.0, None))
            zero_from = f"random policy: {random_file}" if random_file else "the metric's zero"
        else:
            unit, unit_from = randoms[task][0], f"random policy: {randoms[task][1]}"
            zero, zero_from = 0.0, "the metric's zero"
        if not unit > zero:
            raise UserError(f"the baseline of {task} gives {metric} {unit:g} ({unit_from}), not above its zero "
                            f"{zero:g} ({zero_from}): scores cannot be measured against it. State a random "
                            "policy as well (it becomes the zero) or a reference that scores higher.")
        out[task] = {"zero": float(zero), "unit": unit, "zero_from": zero_from, "unit_from": unit_from}
    return out


def no_interval(n: int) -> str | None:
    """What a table says instead of an interval for ``n`` runs (None when there are enough for one)."""
    return f"n={n}: no interval" if n < stats.MIN_RUNS else None


def _group_row(g: Group, metric: str, at: float | None, window: float | None) -> dict:
    each = [value_at(r["frames"], r["values"], r.get("at", at), window) for r in g.runs]
    vals = [v for v in each if v is not None]
    row = {"group": g.label, "experiment": g.config.get("name"), "algo": g.algo, "task": g.task,
           "game": g.config.get("game"), "differs": g.differs, "runs": len(g.runs),
           "seeds": [r["seed"] for r in g.runs], "per_seed": each, "metric": metric, "at_frames": at, "window": window,
           "values": vals, "n": len(vals), "first_success": [r["meta"].get("first_success") for r in g.runs],
           "run_dirs": [str(r["run"]) for r in g.runs],
           "at_per_seed": [r.get("at", at) for r in g.runs], "generations_per_seed": [r.get("generations")
                                                                                    for r in g.runs]}
    if not vals:
        return {**row, "mean": None, "std": None, "iqm": None, "iqm_ci": None, "interval": None, "best": None}
    point, lo, hi = stats.stratified_bootstrap(vals, stats.iqm, BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED)
    logged = [r["values"][r["frames"] <= r.get("at", at)] for r in g.runs]
    return {**row, "mean": float(np.mean(vals)),
            # the sample std: 2 or 3 seeds are a sample of the runs this config could give, not all of them
            "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
            "iqm": point, "iqm_ci": None if lo is None else [lo, hi], "interval": no_interval(len(vals)),
            "best": max((float(v.max()) for v in logged if len(v)), default=None)}


def _pair(a: str, b: str, x, y, **extra) -> dict:
    p, lo, hi = stats.probability_of_improvement_ci(x, y, BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED)
    n = min(stats.fewest_runs(x), stats.fewest_runs(y))
    return {"a": a, "b": b, **extra, "p_a_better": p, "ci": None if lo is None else [lo, hi],
            "interval": no_interval(n)}


def compare(paths, metric: str = "eval/progress", at: float | None = None, window: float | None = None,
            baselines: list[str] | None = None, pool: list[str] | tuple = (), at_generation: int | None = None,
            running_best: bool = False) -> dict:
    """Group runs and compare ``metric`` at ``at`` frames (default: the smallest final frame count).

    ``window`` averages the values logged in the last ``window`` frames up to ``at`` instead of taking the
    last one: per-episode metrics such as ``train/episode_progress`` are too noisy to read one point.
    ``baselines`` are ``--baseline`` specs (:func:`load_baselines`); a :class:`UserError` says when runs of
    several tasks would be aggregated without one for each task. ``pool``: settings that do not split a
    group (:func:`group_runs`). ``at_generation`` reads each NEAT run where it finished that many generations
    (``at`` is then None in the result); ``running_best``, the best value logged so far.
    """
    if at is not None and at_generation is not None:
        raise UserError("give a frame count (--at) or a number of generations (--at-generation), not both.")
    if at_generation is not None and baselines:
        raise UserError("--baseline normalises scores read at one frame count; compare at --at-generation "
                        "without it (runs of one task).")
    groups = group_runs(paths, pool)
    for g in groups:
        for r in g.runs:
            r["frames"], r["values"] = series(r["run"], metric)
            if running_best and len(r["values"]):
                r["values"] = np.maximum.accumulate(r["values"])
            if at_generation is not None:
                r["at"], r["generations"] = frames_at_generation(r["run"], at_generation)
    ends = [r["frames"][-1] for g in groups for r in g.runs if len(r["frames"])]
    if at_generation is None:
        at = at if at is not None else (min(ends) if ends else 0)
    rows = [_group_row(g, metric, at, window) for g in groups]
    # a probability of improvement is only meaningful between runs of one task
    pairs = [_pair(a["group"], b["group"], a["values"], b["values"], task=a["task"])
             for i, a in enumerate(rows) for b in rows[i + 1:]
             if a["task"] == b["task"] and a["values"] and b["values"]]
    tasks = sorted({r["task"] for r in rows if r["values"]})
    result = {"metric": metric, "at_frames": at, "at_generation": at_generation, "running_best": running_best,
              "window": window, "tasks": tasks, "groups": rows,
              "pairs": pairs, "baselines": {}, "methods": [], "method_pairs": [], "_groups": groups}
    base = load_baselines(baselines, metric, at, window, groups) if baselines else {}
    result["baselines"] = base
    row_of = {id(g): r for g, r in zip(groups, rows)}
    joined = [(m, {t: row_of[id(g)] for t, g in m.groups.items() if row_of[id(g)]["values"]})
              for m in methods(groups)]
    joined = [(m, per) for m, per in joined if per]
    if not any(len(per) > 1 for _, per in joined):
        return result
    missing = [t for t in tasks if t not in base]
    if missing:
        spanning = [m.label for m, per in joined if len(per) > 1]
        raise UserError(
            f"these runs play {len(tasks)} tasks ({', '.join(tasks)}) with {' and '.join(spanning)} on more "
            f"than one of them, so compare aggregates across tasks, which needs each task's {metric} on one "
            f"scale: raw scores of different games or states are not. State a baseline for "
            f"{'every task' if len(missing) == len(tasks) else ', '.join(missing)} with --baseline "
            "random=FILE.json (a random policy's evaluation: .venv/bin/python scripts/random_policy.py "
            "EXPERIMENT --json > FILE.json) or --baseline reference=RUN_OR_DIR (runs whose mean at --at counts "
            "as 1), or compare the runs of one task at a time.")

    def normalised(task: str, values) -> np.ndarray:
        b = base[task]
        return (np.asarray(values, float) - b["zero"]) / (b["unit"] - b["zero"])

    for m, per in joined:
        scores = {t: normalised(t, r["values"]) for t, r in per.items()}
        point, lo, hi = stats.stratified_bootstrap(scores, stats.iqm, BOOTSTRAP_REPS, seed=BOOTSTRAP_SEED)
        fewest = stats.fewest_runs(scores)
        result["methods"].append({
            "method": m.label, "algo": m.algo, "tasks": list(per), "groups": [r["group"] for r in per.values()],
            "n": {t: len(v) for t, v in scores.items()}, "values": {t: v.tolist() for t, v in scores.items()},
            "mean": stats.mean(scores), "iqm": point, "iqm_ci": None if lo is None else [lo, hi],
            "interval": no_interval(fewest)})
    # methods of the same tasks: P(A > B) averaged over those tasks, on raw scores (it only ranks within each)
    for i, (a, pa) in enumerate(joined):
        for b, pb in joined[i + 1:]:
            if len(pa) > 1 and sorted(pa) == sorted(pb):
                order = sorted(pa)
                result["method_pairs"].append(_pair(a.label, b.label, {t: pa[t]["values"] for t in order},
                                                    {t: pb[t]["values"] for t in order}, tasks=order))
    return result


def where(result: dict) -> str:
    """Where a comparison reads its runs, for a table's title: ``at 1,000,000 frames`` or ``at 100
    generations``, and ``best so far`` with ``running_best``."""
    at = (f"at {result['at_generation']:,} generations" if result.get("at_generation") is not None
          else f"at {result['at_frames']:,.0f} frames")
    return at + (", best so far" if result.get("running_best") else "")


def ended(generations: int | None, result: dict) -> str:
    """A per-seed cell's note when a run ended before the generation compared at (it is read at its end)."""
    at = result.get("at_generation")
    return f" (ended at generation {generations})" if at is not None and generations is not None and \
        generations < at else ""


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
    """Performance profiles per method across tasks, on the scores normalised against each task's baseline
    (None unless the comparison aggregated across tasks: raw scores of different tasks share no scale)."""
    rows = [m for m in result.get("methods", []) if m["values"]]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    every = [v for m in rows for vals in m["values"].values() for v in vals]
    taus = np.linspace(min(0.0, *every), max(1.0, *every), 101)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for m in rows:
        n = sum(m["n"].values())
        ax.plot(taus, stats.performance_profile(m["values"], taus), lw=2,
                label=f"{m['method']} ({n} runs, {len(m['tasks'])} tasks)")
    ax.set_xlabel(f"{result['metric']} normalised per task (1: the task's baseline)")
    ax.set_ylabel("fraction of runs above")
    ax.set_title(f"performance profile over {len(result['tasks'])} tasks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def fmt(v) -> str:
    """A figure for a table: four significant digits, '-' for none."""
    return "-" if v is None else f"{v:,.4g}"


def fmt_ci(ci, note: str | None = None) -> str:
    """An interval as [low, high]; without one, ``note`` (``n=2: no interval``) or '-'."""
    return (note or "-") if not ci else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _p_ci(p: dict) -> str:
    if not p["ci"]:
        return p["interval"] or "-"
    return f"[{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]"


def _cell(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


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
    several = len(result.get("tasks", [])) > 1
    task_th = "<th>task</th>" if several else ""

    def task_td(row: dict) -> str:
        return f"<td>{esc(row['task'])}</td>" if several else ""

    rows = "".join(
        f"<tr><td>{esc(g['group'])}</td>{task_td(g)}<td>{g['n']}</td><td>{fmt(g['mean'])}</td>"
        f"<td>{fmt(g['std'])}</td><td><b>{fmt(g['iqm'])}</b></td><td>{esc(fmt_ci(g['iqm_ci'], g['interval']))}</td>"
        f"<td>{', '.join(f's{sd}: {fmt(v)}' for sd, v in zip(g['seeds'], g['per_seed']))}</td></tr>"
        for g in result["groups"])
    pairs = "".join(f"<tr><td>{esc(p['a'])}</td><td>{esc(p['b'])}</td>{task_td(p)}<td><b>{p['p_a_better']:.2f}</b>"
                    f"</td><td>{esc(_p_ci(p))}</td></tr>" for p in result["pairs"])
    aggregate = ""
    if result.get("methods"):
        base = "".join(f"<tr><td>{esc(t)}</td><td>{fmt(b['zero'])} ({esc(b['zero_from'])})</td>"
                       f"<td>{fmt(b['unit'])} ({esc(b['unit_from'])})</td></tr>"
                       for t, b in result["baselines"].items() if t in result["tasks"])
        meths = "".join(f"<tr><td>{esc(m['method'])}</td><td>{esc(', '.join(m['tasks']))}</td>"
                        f"<td>{sum(m['n'].values())}</td><td>{fmt(m['mean'])}</td><td><b>{fmt(m['iqm'])}</b></td>"
                        f"<td>{esc(fmt_ci(m['iqm_ci'], m['interval']))}</td></tr>" for m in result["methods"])
        mpairs = "".join(f"<tr><td>{esc(p['a'])}</td><td>{esc(p['b'])}</td><td>{esc(', '.join(p['tasks']))}</td>"
                         f"<td><b>{p['p_a_better']:.2f}</b></td><td>{esc(_p_ci(p))}</td></tr>"
                         for p in result["method_pairs"])
        aggregate = f"""<h2>Across tasks</h2>
<p>Each task's scores normalised as (score - zero) / (unit - zero) against its baseline; a method's runs on its
tasks are the tasks of one stratified bootstrap (each task's runs resampled on their own).</p>
<table><tr><th>task</th><th>zero</th><th>unit</th></tr>{base}</table>
<table><tr><th>method</th><th>tasks</th><th>runs</th><th>mean</th><th>IQM</th><th>95% CI</th></tr>{meths}</table>
<table><tr><th>A</th><th>B</th><th>tasks</th><th>P(A &gt; B), averaged over tasks</th><th>95% CI</th></tr>
{mpairs or '<tr><td colspan=5>no two methods played the same tasks</td></tr>'}</table>
"""
    groups = result["_groups"]
    flats = [g.flat for g in groups]
    keys = sorted(set().union(*flats)) if flats else []
    differ = set(differing(flats))
    cfg_rows = "".join(
        f"<tr{' class=diff' if k in differ else ''}><td>{esc(k)}</td>"
        + "".join(f"<td>{esc(_cell(f.get(k, 'null')))}</td>" for f in flats) + "</tr>" for k in keys)
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
<p><b>{esc(result['metric'])}</b> {esc(where(result))} (emulator frames){over}. Groups are runs whose resolved
configs are the same but for the seed; std is the sample standard deviation. IQM: interquartile mean, with a
95% stratified-bootstrap interval ({BOOTSTRAP_REPS} resamples, seed {BOOTSTRAP_SEED}; none for fewer than
{stats.MIN_RUNS} runs); P(A &gt; B): the probability that a random run of A beats one of B, for groups of one task
(Agarwal et al. 2021).</p>
<h2>Groups</h2>
<table><tr><th>group</th>{task_th}<th>n</th><th>mean</th><th>std</th><th>IQM</th><th>95% CI</th><th>per seed</th></tr>
{rows}</table>
<h2>Probability of improvement</h2>
<table><tr><th>A</th><th>B</th>{task_th}<th>P(A &gt; B)</th><th>95% CI</th></tr>
{pairs or f'<tr><td colspan={5 if several else 4}>no two groups of one task</td></tr>'}</table>
{aggregate}<h2>Curves</h2>{curves}{profile}
<h2>Configurations</h2><p>Settings that differ between the groups are highlighted.</p>
<table><tr><th>setting</th>{''.join(f'<th>{esc(g.label)}</th>' for g in groups)}</tr>{cfg_rows}</table>
<h2>Runs and videos</h2><ul>{''.join(links)}</ul>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
