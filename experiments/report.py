"""``retrodojo report``: the tables and plots of a results document, remade from the runs they stand on.

A document (``docs/results.md``) keeps its prose; each figure that comes from runs sits between two
markers that name the command making it::

    <!-- report: compare results/smb_ppo results/smb_ppo_example --at 1000000 --plot docs/ppo.png -->
    ... the table, written by the command ...
    <!-- /report -->

``retrodojo report DOC`` remakes every block (and its plot) from the run folders and benchmark files the
markers name; ``--check`` remakes them in memory and fails if the document differs, so a test can hold the
committed tables to the committed record. Tables are plain markdown with fixed formatting, and the
statistics use fixed bootstrap seeds, so the same record gives the same bytes.

Block kinds:

- ``compare PATH... [--metric TAG] [--at FRAMES] [--window FRAMES] [--pool KEY] [--plot PNG] [--title T]
  [--why TEXT]``: per group (runs of one config, seeds pooled) n, mean, sample std, IQM with its 95%
  stratified-bootstrap interval (none under 3 seeds), each seed's value and first success; then the
  probability of improvement per pair; while a group has fewer than 3 seeds, a line with each group's count
  and ``--why``.
- ``runs PATH... [--metric TAG]``: one row per run: experiment, algo, seed, status, frames, minutes,
  generations (NEAT), best and final value of the metric (a rate with its episodes and 95% Wilson interval),
  first success (frames and minutes).
- ``bench FILE.json``: a benchmark's JSON output as a table of its keys (date and machine included).
- ``fights PATH... [--random FILE.json] [--window FRAMES]``: one row per fight experiment and algorithm,
  seeds pooled (:mod:`experiments.fights`): the last evaluation's margin and win rate over its bouts with a
  95% Wilson interval, the training bouts of the last ``--window`` frames, and the random policy's line.
- ``evals FILE.json...``: ``retrodojo evaluate``'s results.json files (``--out``), one row each: the policy,
  the env seed, episodes, success with its 95% Wilson interval, the return, the env settings it changed.
- ``bouts FILE.json... [--random FILE.json]``: the same files pooled over seeds, one row per experiment,
  algorithm and policy (final or best): bouts won with a 95% Wilson interval and each seed's count, margin,
  knock-outs a bout, and the training behind each policy (frames, minutes, the frames a best one was kept at).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
from pathlib import Path

import numpy as np

from experiments.errors import UserError

BLOCK = re.compile(r"^(<!-- report: (?P<cmd>[^\n]*?) -->\n)(?P<body>.*?)(<!-- /report -->)", re.S | re.M)


class _BlockParser(argparse.ArgumentParser):
    """An argument parser that raises instead of printing its usage and exiting: a bad block is one error."""

    def error(self, message: str):
        raise argparse.ArgumentError(None, f"{message}; the block reads: {self.format_usage().strip()}")


def _parser(kind: str) -> argparse.ArgumentParser:
    p = _BlockParser(prog=f"report {kind}", add_help=False, exit_on_error=False)
    p.add_argument("paths", nargs="+")
    if kind in ("compare", "runs"):
        p.add_argument("--metric", default="eval/progress")
    if kind in ("fights", "bouts"):
        p.add_argument("--random", help="scripts/random_policy.py's --json output, the table's last line")
    if kind == "fights":
        p.add_argument("--window", type=float, default=100_000)
    if kind == "compare":
        p.add_argument("--at", type=float)
        p.add_argument("--at-generation", type=int)
        p.add_argument("--running-best", action="store_true")
        p.add_argument("--window", type=float)
        p.add_argument("--plot")
        p.add_argument("--title")
        p.add_argument("--pool", action="append", default=[])
        p.add_argument("--why", help="why a group has fewer than 3 seeds (said under the table while one has)")
    return p


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 1000):
        return f"{int(v):,}"
    return f"{v:,.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header)))
             + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def compare_block(args, root: Path, plots: bool = True) -> str:
    """The ``compare`` block: groups and pairs, as ``retrodojo compare`` computes them."""
    from experiments.compare import compare, ended, fmt_ci, plot, where

    paths = [root / p for p in args.paths if (root / p).exists()]
    if len(paths) < len(args.paths):  # a campaign fills the record over several sittings
        return f"_Not in the record yet: {', '.join(p for p in args.paths if not (root / p).exists())}._\n"
    result = compare(paths, metric=args.metric, at=args.at, window=args.window, pool=args.pool,
                     at_generation=args.at_generation, running_best=args.running_best)
    if not any(g["values"] for g in result["groups"]):
        return f"_No run under {', '.join(args.paths)} has {args.metric} yet._\n"
    over = f", mean over the last {_fmt(args.window)} frames" if args.window else ""
    at = f"at {_fmt(float(result['at_frames']))} frames" if args.at_generation is None else where(result)
    if args.at_generation is None and args.running_best:
        at += ", best so far"
    out = [f"{args.metric} {at}{over}:\n\n"]
    header = ["group", "n", "mean", "std", "IQM", "95% CI", "per seed", "first success (frames)"]
    rows = []
    for g, grp in zip(result["groups"], result["_groups"]):
        ci = fmt_ci(g["iqm_ci"], g["interval"])
        # one entry per run, by seed, so a run without a value at --at cannot shift the others
        per = sorted(zip(grp.runs, g["per_seed"], g["generations_per_seed"]), key=lambda t: t[0]["seed"])
        runs = [r for r, _, _ in per]
        each = ", ".join(f"s{r['seed']}: {_fmt(v)}{ended(n, result)}" for r, v, n in per)
        fs = ", ".join(f"s{r['seed']}: {_fmt(f['frames']) if (f := r['meta'].get('first_success')) else '-'}"
                       for r in runs)
        rows.append([g["group"], str(g["n"]), _fmt(g["mean"]), _fmt(g["std"]), _fmt(g["iqm"]), ci, each, fs])
    out.append(_table(header, rows))
    if result["pairs"]:
        out.append("\n")
        prs = [[p["a"], p["b"], f"{p['p_a_better']:.2f}", fmt_ci(p["ci"], p["interval"])] for p in result["pairs"]]
        out.append(_table(["A", "B", "P(A > B)", "95% CI"], prs))
    out.append(_seeds_note(result["groups"], args.why))
    if args.plot and plots:
        plot(result, root / args.plot, args.title)
    return "".join(out)


def _seeds_note(groups: list[dict], why: str | None) -> str:
    """Under a comparison with a group of fewer than 3 seeds: how many each has, and why (the block's
    ``--why``). A claim without an interval must say so where it is read; the line goes once every group
    has its 3 seeds."""
    from experiments.stats import MIN_RUNS

    if all(g["n"] >= MIN_RUNS for g in groups):
        return ""
    counts = ", ".join(f"{g['group']} {g['n']}" for g in groups)
    reason = why.strip().rstrip(".") + "." if why and why.strip() else \
        "no reason given (the block's --why says why)."
    return f"\n_Seeds: {counts}; fewer than {MIN_RUNS} a side, so no interval: {reason}_\n"


def runs_block(args, root: Path, plots: bool = True) -> str:
    """The ``runs`` block: what each run folder ran and reached."""
    from experiments.compare import series
    from experiments.run import find_runs, read_meta, read_scalars

    rows = []
    missing = [p for p in args.paths if not (root / p).exists()]
    for run in find_runs([root / p for p in args.paths if (root / p).exists()]):
        meta = read_meta(run)
        frames, values = series(run, args.metric)
        gens = read_scalars(run, "neat/generation")
        first = meta.get("first_success")
        where = run.relative_to(root) if run.is_relative_to(root) else run
        rows.append([str(where), str(meta.get("experiment")), str(meta.get("seed")),
                     str(meta.get("status")), _fmt(meta.get("frames")),
                     _fmt(round(float(meta.get("train_seconds") or 0) / 60, 1)),
                     _fmt(int(gens[-1][1]) + 1) if gens else "-",
                     *_best_and_final(run, args.metric, values),
                     f"{_fmt(first['frames'])} ({first['seconds'] / 60:.1f} min)" if first else "-"])
    note = f"\n_Not in the record yet: {', '.join(missing)}._\n" if missing else ""
    if not rows:
        return note.lstrip("\n") or f"_No run under {', '.join(args.paths)}._\n"
    header = ["run", "experiment", "seed", "status", "frames", "minutes", "generations", f"best {args.metric}",
              f"final {args.metric}", "first success"]
    return (note.lstrip("\n") + "\n" if missing else "") + _table(header, rows)


def _best_and_final(run: Path, metric: str, values: np.ndarray) -> list[str]:
    """The runs table's best and final value of ``metric``; a rate (``eval/win_rate``, ``eval/success_rate``)
    also gets its count of episodes and 95% Wilson interval from that evaluation's episodes, since 18 of 20
    bouts and 1 of 1 are different claims. Episodes all alike (a greedy policy in a deterministic env) are
    one sample, and said to be."""
    from experiments.evaluate import wilson_interval
    from experiments.run import read_history

    if not len(values):
        return ["-", "-"]
    key = metric.split("/", 1)[1]
    hist = [h for h in read_history(run) if isinstance(h.get(key), (int, float)) and h.get("episodes")
            and isinstance(h["episodes"], list)] if metric.startswith("eval/") and key.endswith("_rate") else []
    if not hist:
        return [_fmt(float(values.max())), _fmt(float(values[-1]))]

    def cell(h: dict) -> str:
        eps = h["episodes"]
        n, k = len(eps), round(h[key] * len(eps))
        if n > 1 and len({(e.get("r"), e.get("frames")) for e in eps if isinstance(e, dict)}) == 1:
            return f"{_fmt(h[key])} ({k}/{n}, identical episodes)"
        low, high = wilson_interval(k, n)
        return f"{_fmt(h[key])} ({k}/{n}; {low:.2f}-{high:.2f})"

    return [cell(max(hist, key=lambda h: h[key])), cell(hist[-1])]


def _flat(data: dict, prefix: str = "") -> list[list[str]]:
    """``[key, value]`` rows of a benchmark's JSON: nested keys dotted, a long list as its count and median."""
    rows = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += _flat(v, key + ".")
        elif isinstance(v, list) and len(v) > 12 and all(isinstance(x, (int, float)) for x in v):
            rows.append([key, f"{len(v)} values, median {_fmt(float(np.median(v)))}"])
        elif isinstance(v, list):
            rows.append([key, ", ".join(_fmt(x) if isinstance(x, (int, float)) else str(x) for x in v)])
        else:
            rows.append([key, _fmt(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)])
    return rows


def bench_block(args, root: Path, plots: bool = True) -> str:
    """The ``bench`` block: a benchmark's JSON output as rows of its keys (nested ones dotted)."""
    out = []
    for p in args.paths:
        path = root / p
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"report: {path} is not a benchmark's JSON output ({e}).") from None
        if not isinstance(data, dict):
            raise UserError(f"report: {path} holds JSON but not a benchmark's output (a mapping of figures).")
        out.append(f"`{p}`:\n\n" + _table(["key", "value"], _flat(data)))
    return "\n".join(out)


def _read_eval(root: Path, p: str) -> dict:
    """One results.json that ``retrodojo evaluate`` wrote, checked for the figures the tables read."""
    from wrappers.errors import read_text_file

    path = root / p
    hint = "Give the results.json that `retrodojo evaluate` wrote (--out)."
    try:
        data = json.loads(read_text_file(path, "evaluation", hint))
        o = data["overall"]
        n, rate, margin = int(o["episodes"]), float(o["success_rate"]), float(o["return"]["mean"])
        low, high = o["success_interval"]
        if not (n > 0 and 0 <= rate <= 1 and math.isfinite(margin) and 0 <= float(low) <= float(high) <= 1):
            raise ValueError(f"{n} episodes, success rate {rate}, return {margin}, interval {low}-{high}")
    except UserError:
        raise
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise UserError(f"report: {path} is not an evaluation's results.json ({e!r}). {hint}") from None
    return data


def evals_block(args, root: Path, plots: bool = True) -> str:
    """The ``evals`` block: ``retrodojo evaluate``'s results.json files, one row each: the policy played,
    the env seed, episodes (distinct ones), success with its 95% Wilson interval, the return, and the env
    settings the evaluation changed."""
    rows = []
    for p in args.paths:
        data = _read_eval(root, p)
        o = data["overall"]
        n, rate, (low, high), ret = int(o["episodes"]), float(o["success_rate"]), o["success_interval"], o["return"]
        changed = ", ".join(f"{k} {v.get('evaluated')!r}" for k, v in (data.get("env_overrides") or {}).items()
                            if isinstance(v, dict)) or "-"
        run = Path(str(data.get("run", "-")))
        rows.append([f"`{p}`", f"{run.parent.name}/{run.name}", str(data.get("checkpoint", "-")),
                     _fmt(data.get("seed")), f"{n} ({_fmt(o.get('distinct'))} distinct)",
                     f"{rate:.2f} ({round(rate * n)}/{n}; {low:.2f}-{high:.2f})",
                     f"{_fmt(ret['mean'])} (std {_fmt(ret['std'])})", changed])
    return _table(["file", "run", "policy", "env seed", "episodes", "success (95% Wilson)", "return",
                   "env as evaluated"], rows)


def _run_of(root: Path, data: dict) -> tuple[str, str, dict]:
    """The experiment and run an evaluation played, and that run's meta.json in the record (results/EXPERIMENT/
    RUN under ``root``; empty when the record has no such run): an evaluation names the folder it read, which
    may be a training machine's runs/ rather than the record."""
    run = Path(str(data.get("run") or "-"))
    meta_path = root / "results" / run.parent.name / run.name / "meta.json"
    meta = {}
    if meta_path.is_file():
        from experiments.run import read_meta

        meta = read_meta(meta_path.parent)
    return run.parent.name, run.name, meta


def _read_random(root: Path, p: str) -> dict:
    """scripts/random_policy.py's --json output, checked for what the tables read from it."""
    from wrappers.errors import read_json_file

    random = read_json_file(root / p, "random-policy result", "Write it with `.venv/bin/python "
                            "scripts/random_policy.py EXPERIMENT --json > FILE`.")
    m = random.get("mean") if isinstance(random, dict) else None
    n = random.get("episodes") if isinstance(random, dict) else None
    used = ("return", "win_rate", "points_for", "points_against", "kos")
    if (not isinstance(m, dict) or not all(isinstance(m.get(k, 0.0), (int, float)) and math.isfinite(m.get(k, 0.0))
                                           for k in used) or not 0 <= m.get("win_rate", 0.0) <= 1
            or not isinstance(n, int) or isinstance(n, bool) or n <= 0
            or not isinstance(random.get("return_std", 0.0), (int, float))):
        raise UserError(f"report: {p} holds JSON but not scripts/random_policy.py's output (a count of episodes "
                        "and their mean figures). Write it with `.venv/bin/python scripts/random_policy.py "
                        "EXPERIMENT --json > FILE`.")
    return random


def bouts_block(args, root: Path, plots: bool = True) -> str:
    """The ``bouts`` block: evaluations of fighters pooled over seeds, one row per experiment, algorithm,
    policy (final or best) and set of learner settings (where runs of one experiment differ): the bouts won
    out of all with a 95% Wilson interval and each seed's count, the margin, the knock-outs a bout, and the
    training that made each policy (frames, minutes; for a best policy the frames it was kept at), then the
    random policy's line."""
    from experiments.fights import settings_apart, wins_cell

    entries = []
    for p in args.paths:
        data = _read_eval(root, p)
        if not isinstance(data.get("run"), str) or not data["run"]:
            raise UserError(f"report: {root / p} names no run it evaluated, so the bouts block cannot tell whose "
                            "policy it is. Give the results.json that `retrodojo evaluate RUN` wrote.")
        experiment, name, meta = _run_of(root, data)
        m = re.search(r"-s(\d+)-", name)
        seed = meta.get("seed") if isinstance(meta.get("seed"), int) else int(m.group(1)) if m else None
        changed = ", ".join(f"{k} {v.get('evaluated')!r}" for k, v in sorted((data.get("env_overrides") or {}).items())
                            if isinstance(v, dict))
        # one line per policy and set of bouts: the same policy on other bouts (another env seed, or env
        # settings changed for the evaluation) is another line
        key = (experiment, str(data.get("algo") or meta.get("algo") or "?"),
               str(data.get("checkpoint") or "?") + (f" ({changed})" if changed else ""), _fmt(data.get("seed")))
        entries.append((p, key, {"seed": seed, "name": name, "data": data, "meta": meta}))
    # runs of one experiment whose learners differ (a file changed between them) are not seeds of one line
    runs = {(k[0], k[1], e["name"]) for _, k, e in entries}
    apart = {}
    for experiment, algo in {(x, a) for x, a, _ in runs}:
        names = sorted(n for x, a, n in runs if (x, a) == (experiment, algo))
        labels = settings_apart([root / "results" / experiment / n for n in names])
        apart.update({(experiment, algo, n): label for n, label in zip(names, labels)})
    groups: dict[tuple, list] = {}
    for p, key, entry in entries:
        label = apart[(key[0], key[1], entry["name"])]
        key = (key[0], f"{key[1]}; {label}" if label else key[1], *key[2:])
        group = groups.setdefault(key, [])
        if any(r["name"] == entry["name"] for r in group):
            raise UserError(f"report: {p} is a second evaluation of {key[0]}/{entry['name']}'s {key[2]} policy on "
                            f"the same bouts (env seed {key[3]}) in one bouts block; pooling it would count that "
                            "policy twice. Give each run's evaluation once.")
        group.append(entry)
    header = ["experiment", "policy", "seeds", "env seed", "bouts won (95% Wilson)", "margin", "KOs a bout",
              "training frames", "training minutes", "policy kept at"]
    rows = []
    for (experiment, algo, policy, env_seed), rs in groups.items():
        rs.sort(key=lambda r: (r["seed"] is None, r["seed"] or 0))
        outs = [r["data"]["overall"] for r in rs]
        ns = [int(o["episodes"]) for o in outs]
        ks = [round(float(o["success_rate"]) * n) for o, n in zip(outs, ns)]
        each = " / ".join(f"{k}/{n}" for k, n in zip(ks, ns))
        won = wins_cell(sum(ks), sum(ns))
        margins = [float(o["return"]["mean"]) for o in outs]
        kos = [o.get("kos", {}).get("mean") if isinstance(o.get("kos"), dict) else None for o in outs]

        def per_seed(values, fmt):
            vals = [v for v in values if isinstance(v, (int, float))]
            if not vals:
                return "-"
            if len(values) == 1:
                return format(vals[0], fmt)
            each = " / ".join(format(v, fmt) if isinstance(v, (int, float)) else "-" for v in values)
            return f"**{format(float(np.mean(vals)), fmt)}** ({each})"  # the mean of the seeds that have one

        def from_meta(f, rs=rs):
            return " / ".join(v if v is not None else "-" for v in (f(r["meta"]) for r in rs))

        frames = from_meta(lambda m: f"{m['frames'] / 1e6:.2f}M" if isinstance(m.get("frames"), (int, float))
                           else None)
        minutes = from_meta(lambda m: f"{m['train_seconds'] / 60:.0f}" if isinstance(m.get("train_seconds"),
                                                                                        (int, float)) else None)
        kept = "end" if policy.startswith("final") else from_meta(
            lambda m: f"{m['best']['frames'] / 1e6:.2f}M" if isinstance(m.get("best"), dict)
            and isinstance(m["best"].get("frames"), (int, float)) else None)
        rows.append([f"{experiment} ({algo})", policy, ", ".join(_fmt(r["seed"]) for r in rs), env_seed,
                     f"**{won}** ({each})" if len(rs) > 1 else won, per_seed(margins, ".1f"),
                     per_seed(kos, ".2f"), frames, minutes, kept])
    if args.random:
        random = _read_random(root, args.random)
        m, n = random["mean"], random["episodes"]
        won = wins_cell(round(m["win_rate"] * n), n) if "win_rate" in m else "-"
        env_seed = random.get("env_seed")
        rows.append(["random policy", "uniform", "-", _fmt(env_seed) if isinstance(env_seed, int) else "training's",
                     won, f"{m['return']:.1f}" if "return" in m else "-",
                     f"{m['kos']:.2f}" if "kos" in m else "-", "-", "-", "-"])
    return _table(header, rows)


def fights_block(args, root: Path, plots: bool = True) -> str:
    """The ``fights`` block: :func:`experiments.fights.table` over finished runs (unfinished ones named under
    it), with the random policy's line when ``--random`` names its JSON."""
    from experiments.fights import run_row, table
    from experiments.run import find_runs

    missing = [p for p in args.paths if not (root / p).exists()]
    rows = [run_row(r, args.window) for r in find_runs([root / p for p in args.paths if (root / p).exists()])]
    random = _read_random(root, args.random) if args.random else None
    done = [r for r in rows if r["status"] == "finished"]
    out = [f"_Not in the record yet: {', '.join(missing)}._\n"] if missing else []
    if done or random:
        out.append(("\n" if out else "") + table(done, random, args.window))
    for r in rows:
        if r["status"] != "finished":
            where = Path(r["run"]).relative_to(root) if Path(r["run"]).is_relative_to(root) else r["run"]
            out.append(f"\n_Not in the table: {where} ({r['status']} at {r['frames']:,.0f} frames)._\n")
    return "".join(out) or f"_No run under {', '.join(args.paths)}._\n"


KINDS = {"compare": compare_block, "runs": runs_block, "bench": bench_block, "evals": evals_block,
         "fights": fights_block, "bouts": bouts_block}


def render(command: str, root: Path, plots: bool = True) -> str:
    """The body of one block, made by its command."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise UserError(f"report: cannot read the block `{command}` ({e}).") from None
    if not words or words[0] not in KINDS:
        raise UserError(f"report: unknown block `{command}`: blocks are {', '.join(KINDS)}.")
    try:
        args = _parser(words[0]).parse_args(words[1:])
    except (argparse.ArgumentError, SystemExit) as e:
        raise UserError(f"report: cannot read the block `{command}` ({e}).") from None
    return KINDS[words[0]](args, root, plots)


def report(doc: str | Path, root: str | Path = ".", check: bool = False) -> tuple:
    """Remake every block of ``doc``; returns (the new text, the number of blocks) and, with ``check``, the
    text as it is, unchanged on disk (plots are written only without ``check``: a check must not depend on
    image bytes)."""
    from wrappers.errors import read_text_file

    doc, root = Path(doc), Path(root)
    text = read_text_file(doc, "results document", "Give a markdown file such as docs/results.md, whose "
                          "`<!-- report: ... -->` blocks name the runs of the record.")
    count = 0

    def one(m: re.Match) -> str:
        nonlocal count
        count += 1
        return m.group(1) + render(m.group("cmd"), root, plots=not check) + m.group(4)

    new = BLOCK.sub(one, text)
    if check:
        return new, count, text
    if not check and new != text:
        doc.write_text(new)
    return new, count
