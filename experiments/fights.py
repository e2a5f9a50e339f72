"""The fight table: each fight experiment's last evaluation and training bouts, seeds side by side, beside a
random policy on the same protocol.

A row per experiment and algorithm (seeds pooled; runs of one experiment whose agent or env settings differ,
a file changed between them, get a row each, named by those settings): frames; the last evaluation's score
margin and win rate, with the bouts it stands on and a 95% Wilson interval over all of them; the training
bouts (actions sampled from the policy as it learned) over the last ``window`` frames: margin, win rate,
points landed and taken.
``retrodojo report``'s ``fights`` block and ``scripts/fight_table.py`` print it.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path

import numpy as np

TRAIN_TAGS = {"train_margin": "train/episode_return", "train_win_rate": "train/episode_win_rate",
              "train_for": "train/episode_points_for", "train_against": "train/episode_points_against"}


def run_row(run: Path, window: float) -> dict:
    """One run's figures: its last evaluation (margin, wins out of bouts, greedy or sampled) and its training
    bouts over the last ``window`` frames."""
    import yaml

    from experiments.compare import series, value_at
    from experiments.run import read_history, read_meta
    from wrappers.errors import UserError, read_text_file

    meta = read_meta(run)
    last = (read_history(run) or [{}])[-1]
    end = float(meta.get("frames") or last.get("frames") or 0)
    eps = last.get("episodes") if isinstance(last.get("episodes"), list) else []
    rate = last.get("win_rate")
    config = {}
    if (run / "config.yaml").exists():
        fix = "A run folder's config.yaml is written by `retrodojo train`; restore it from the run's copy."
        try:
            loaded = yaml.safe_load(read_text_file(run / "config.yaml", "run config", fix))
        except yaml.YAMLError as e:
            raise UserError(f"{run / 'config.yaml'} is not YAML ({e}). {fix}") from None
        config = loaded if isinstance(loaded, dict) else {}
    greedy = (config.get("eval") or {}).get("deterministic") if isinstance(config.get("eval"), dict) else None
    if meta.get("algo") == "neat":
        greedy = True  # a genome's network has no distribution to sample from, whatever the file says
    row = {"run": str(run), "experiment": meta.get("experiment"), "algo": meta.get("algo"),
           "seed": meta.get("seed"), "frames": end, "status": meta.get("status"),
           "minutes": float(meta.get("train_seconds") or 0) / 60, "eval_margin": last.get("return"),
           "eval_win_rate": rate, "eval_bouts": len(eps),
           "eval_wins": round(rate * len(eps)) if isinstance(rate, (int, float)) and eps else None,
           "eval_actions": {True: "greedy", False: "sampled"}.get(greedy, "?")}
    for key, tag in TRAIN_TAGS.items():
        row[key] = value_at(*series(run, tag), end, window)  # the mean over (end - window, end]
    return row


#: Settings that say where a run ran, not what learned: runs that differ only there are seeds of one line.
WHERE_IT_RAN = {"agent.device", "agent.torch_threads", "agent.workers", "agent.backend", "agent.ray_address",
                "agent.ray_resources", "agent.record_champions", "env.fast"}


def learner_settings(run: Path) -> dict[str, str]:
    """A run's agent and env settings, flat (``agent.hyperparams.n_steps`` -> its value as JSON), read from its
    config.yaml with today's defaults filled in for settings an older run's file does not name (the schema
    alone: no ROM, state or profile file is looked for, so every machine splits a table alike); as written when
    today's schema refuses the file; {} when there is none."""
    import json

    from experiments.compare import _config
    from experiments.run import flatten
    from experiments.spec import ExperimentSpec

    run = Path(run)
    if not (run / "config.yaml").is_file():
        return {}
    data = _config(run)
    # a config an older version wrote that today's schema refuses is read as written
    with contextlib.suppress(Exception):
        data = ExperimentSpec.model_validate(data).model_dump(mode="json")
    flat = flatten({"agent": data.get("agent") or {}, "env": data.get("env") or {}})
    return {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in flat.items()
            if k not in WHERE_IT_RAN and not any(k.startswith(w + ".") for w in WHERE_IT_RAN)}


def settings_apart(runs: list[Path]) -> list[str]:
    """For runs that a table would pool (one experiment and algorithm), each run's label of the agent and env
    settings in which the runs differ ("" for all when they agree), so a table gives each setting its line:
    a file whose learner changed after some of its runs must not pool them with the new ones."""
    settings = [learner_settings(r) for r in runs]
    known = [s for s in settings if s]
    keys = sorted({k for s in known for k in s if len({x.get(k) for x in known}) > 1})
    if not keys:
        return [""] * len(runs)

    def short(key: str) -> str:
        return key.removeprefix("agent.hyperparams.").removeprefix("agent.")

    return [", ".join(f"{short(k)} {s.get(k, '-')}" for k in keys) if s else "" for s in settings]


def _cell(values, fmt: str) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    each = " / ".join(format(v, fmt) for v in vals)
    return f"**{format(float(np.mean(vals)), fmt)}** ({each})" if len(vals) > 1 else each


def wins_cell(k: int, n: int) -> str:
    """``k`` bouts won of ``n`` as a table cell: the rate, K/N and its 95% Wilson interval."""
    from experiments.evaluate import wilson_interval

    low, high = wilson_interval(k, n)
    return f"{k / n:.2f} ({k}/{n}; {low:.2f}-{high:.2f})"


def _wins(rs: list[dict]) -> str:
    """Win rate over every seed's last evaluation: K/N bouts, its Wilson interval, each seed's k/n."""
    have = [r for r in rs if r["eval_wins"] is not None and r["eval_bouts"]]
    if not have:
        return _cell([r["eval_win_rate"] for r in rs], ".2f")
    each = " / ".join(f"{r['eval_wins']}/{r['eval_bouts']}" for r in have)
    pooled = wins_cell(sum(r["eval_wins"] for r in have), sum(r["eval_bouts"] for r in have))
    return f"**{pooled}** ({each})" if len(have) > 1 else pooled


def table(rows: list[dict], random: dict | None, window: float) -> str:
    """The markdown table, one line per experiment, algo and set of learner settings (:func:`settings_apart`;
    seeds pooled, each seed's value in brackets), then the random policy's line."""
    by_name = defaultdict(list)
    for r in sorted(rows, key=lambda r: (str(r["experiment"]), r["seed"] or 0)):
        by_name[(r["experiment"], r["algo"])].append(r)
    groups = defaultdict(list)  # and within a name, one line per set of learner settings
    for (name, algo), rs in by_name.items():
        for r, apart in zip(rs, settings_apart([Path(r["run"]) for r in rs])):
            groups[(name, f"{algo}; {apart}" if apart else algo)].append(r)
    lines = [f"| experiment | seeds | frames | minutes | eval actions | eval: margin | eval: win rate (bouts; 95% "
             f"Wilson) | training bouts (last {window:,.0f} frames): margin | win rate | points landed / taken |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, algo), rs in groups.items():
        seeds = ", ".join(str(r["seed"]) for r in rs)
        frames = " / ".join(f"{r['frames'] / 1e6:.2f}M" for r in rs)
        minutes = " / ".join(f"{r['minutes']:.0f}" for r in rs)
        actions = "/".join(sorted({r["eval_actions"] for r in rs}))
        bouts = sorted({r["eval_bouts"] for r in rs})
        pts = "; ".join(f"{r['train_for']:.0f} / {-r['train_against']:.0f}" for r in rs
                        if r["train_for"] is not None and r["train_against"] is not None)
        lines.append(f"| {name} ({algo}) | {seeds} | {frames} | {minutes} | {actions}, "
                     f"{'/'.join(map(str, bouts))} bouts | {_cell([r['eval_margin'] for r in rs], '.1f')} | "
                     f"{_wins(rs)} | {_cell([r['train_margin'] for r in rs], '.1f')} | "
                     f"{_cell([r['train_win_rate'] for r in rs], '.2f')} | {pts or '-'} |")
    if random:
        m, n = random.get("mean") or {}, int(random.get("episodes") or 0)
        rate = m.get("win_rate")
        wins = wins_cell(round(rate * n), n) if isinstance(rate, (int, float)) and n else "-"
        lines.append(f"| random policy | - | - | - | uniform, {n} bouts | {m.get('return', float('nan')):.1f} "
                     f"(std {random.get('return_std', float('nan')):.1f}) | {wins} | - | - | "
                     f"{m.get('points_for', 0):.0f} / {-m.get('points_against', 0):.0f} |")
    return "\n".join(lines) + "\n"
