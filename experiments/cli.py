"""The ``retrodojo`` command line.

    retrodojo roms import PATH...     import ROM dumps (files, folders, zips) into the store
    retrodojo roms bundled            register the ROMs installed packages ship
    retrodojo roms list [--json] [--all]   games playable now, their states and ROM sources
    retrodojo play GAME [--state S] [--profile P] [--actions SET] [--frames N] [--video OUT.mp4]
                                      play with a random policy through the full stack, film it
    retrodojo play GAME [--state S] --keyboard [--keys FILE] [--save-as NAME] [--bk2 OUT.bk2] [--agent-view]
                                      play it yourself in a window: F1-F9 save states, the play is a .bk2
    retrodojo train FILE [--set k=v] [--seed N | --seeds N...] [--ray [ADDRESS]] [--name NAME] [--runs-dir DIR]
                         [--watch]    (--watch: env 0, or NEAT's first worker, live in a window)
    retrodojo train --resume RUN_DIR [--set budget.frames=N] [--watch]
    retrodojo runs [DIR] [--json]     the runs: experiment, algo, seed, frames, last eval, status
    retrodojo evaluate RUN_DIR [--checkpoint final|best|latest|FRAMES] [--state S...] [--episodes N]
                       [--set env.KEY=VALUE] [--stochastic | --greedy] [--video [OUT.mp4]] [--bk2] [--json]
                       [--watch [--paused] [--scale 3]]   (--watch: the episodes live in a window)
    retrodojo replay FILE.bk2... [--video OUT.mp4] [--scale 2] [--no-sound] [--watch [--paused]]
    retrodojo compare RUN_OR_DIR... [--metric TAG] [--at FRAMES] [--window FRAMES] [--plot PNG]
                      [--baseline random=FILE.json|reference=RUN_OR_DIR] [--pool KEY] [--html REPORT.html] [--json]
    retrodojo states make RUN_DIR|AGENT_DIR|MOVIE.bk2 [--every FRAMES] [--from STATE] [--out DIR] [--prefix P]
                                      start states cut along an episode
    retrodojo tune FILE [--trials N] [--storage URL] [--study NAME] [--sampler tpe|random]
                   [--pruner median|none] [--ray [ADDRESS]]   Optuna search over the file's tune: section
    retrodojo report [DOC] [--check]  remake docs/results.md's tables and plots from the record in results/
    retrodojo convert RUN_DIR --trust-pickles   rewrite an earlier version's pickled run in the safe formats
    retrodojo convert RUN_DIR --out DIR [--half]   its final policy alone, small (weights only)
    retrodojo demo [--minutes 5]      NEAT on SMB 1-1 for a few minutes, then the champion on video

User errors (a bad file, an unknown key, a missing ROM) print one paragraph and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


# --------------------------------------------------------------------------- roms


def cmd_roms_import(args) -> int:
    """Import ROMs; print what matched and why the rest did not."""
    from wrappers import roms

    report = roms.import_paths(args.paths)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0 if report.imported else 1
    for item in report.imported:
        note = f" ({item['note']})" if item["note"] else ""
        console.print(f"[green]imported[/] {item['game']}{note} <- {item['source']}")
    for msg in report.skipped:
        err_console.print(f"[yellow]skipped[/] {msg}")
    console.print(f"{len(report.imported)} imported, {len(report.skipped)} skipped; store: {roms.store_dir()}")
    return 0 if report.imported or not report.skipped else 1


def cmd_roms_bundled(args) -> int:
    """Register the ROMs shipped inside installed packages."""
    from wrappers import roms

    report = roms.import_bundled()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    games = sorted(i["game"] for i in report.imported)
    console.print(f"registered {len(games)} bundled ROMs in {roms.store_dir()}: {', '.join(games) or 'none'}")
    return 0


def cmd_roms_list(args) -> int:
    """List games with a ROM (or all integrations with --all)."""
    from wrappers import roms

    rows = roms.list_games(include_missing=args.all)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Games ({'all integrations' if args.all else 'playable now'})")
    for col in ("game", "playable", "states", "ROM source"):
        table.add_column(col)
    for r in rows:
        states = ", ".join(r["states"][:4]) + (f" (+{len(r['states']) - 4})" if len(r["states"]) > 4 else "")
        table.add_row(r["game"], "yes" if r["playable"] else "no", states, r["source"] or "-")
    console.print(table)
    return 0


# --------------------------------------------------------------------------- play


def cmd_play(args) -> int:
    """Play a game with a random policy through the full wrapper stack and write an mp4, or (--keyboard) let a
    person play it in a window: F-keys save states, the play is recorded as .bk2 movies."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from experiments.errors import UserError
    from experiments.play import play_random
    from wrappers.profile import default_profile
    from wrappers.settings import EnvSpec

    keyboard_only = [f for f, v in (("--keys", args.keys), ("--save-as", args.save_as), ("--bk2", args.bk2),
                                    ("--agent-view", args.agent_view)) if v]
    if args.keyboard:
        from experiments.watch import require_display

        require_display("retrodojo play --keyboard")
        if args.video:
            raise UserError("retrodojo play --keyboard records the play as .bk2 movies (--bk2 PATH), not an mp4: "
                            "`retrodojo replay MOVIE.bk2 --video OUT.mp4` films one afterwards.")
    elif keyboard_only:
        raise UserError(f"{', '.join(keyboard_only)} go with --keyboard (a person playing in a window).")
    profile = args.profile or default_profile(args.game)
    # A person plays every frame, with every button, for as long as they like (the whole run of a fight).
    person = {"frame_skip": 1, "stuck_frames": 0, "actions": "buttons"} if args.keyboard else \
        {"frame_skip": 4, "stuck_frames": 600}
    frame_skip = args.frame_skip if args.frame_skip is not None else person["frame_skip"]
    stuck = args.stuck_frames if args.stuck_frames is not None else person["stuck_frames"]
    extra = {"max_frames": None, "episode": "run"} if args.keyboard else {}
    try:
        spec = EnvSpec(game=args.game, state=args.state, profile=profile, actions=args.actions or person.get("actions"),
                       frame_skip=frame_skip, stuck_frames=stuck or None, **extra)
    except ValidationError as e:
        raise UserError("retrodojo play: " + "; ".join(f"--{'-'.join(map(str, err['loc']))}: {err['msg']}"
                                                       for err in e.errors()).replace("_", "-")) from None
    spec.check()
    if args.profile is None:
        console.print(f"profile: {profile}" + (" (reward and done from the game's scenario.json)"
                                               if profile == "scenario" else ""))
    if args.keyboard:
        return _play_keyboard(args, spec)
    video = Path(args.video) if args.video else Path(args.runs_dir) / "play" / (
        f"{spec.game}-{args.state or 'default'}-random-{time.strftime('%Y%m%d-%H%M%S')}.mp4")
    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]playing[/] {task.fields[game]}"), BarColumn(),
                  TextColumn("{task.completed:,.0f}/{task.total:,.0f} frames"), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("play", total=args.frames, game=spec.game)
        report = play_random(spec, args.frames, video=video, seed=args.seed,
                             progress=lambda f: bar.update(task, completed=f))
    dt = time.perf_counter() - t0
    best = max((e["progress"] for e in report.episodes), default=0.0)
    console.print(f"played {report.frames:,} frames in {dt:.1f} s ({report.frames / dt:,.0f} frames/s with video), "
                  f"{len(report.episodes)} episodes finished, best progress {best:.0f}")
    for i, ep in enumerate(report.episodes[:10]):
        console.print(f"  episode {i}: return {ep['r']:.0f}, progress {ep['progress']:.0f}, "
                      f"{ep['frames']} frames, ended by {ep['reason']}")
    console.print(f"video: [bold]{report.video.resolve()}[/]", soft_wrap=True)
    return 0


def _play_keyboard(args, spec) -> int:
    """``retrodojo play --keyboard``: a person plays ``spec`` in a window."""
    import re

    from experiments.errors import UserError
    from experiments.watch import key_bindings, play_keyboard
    from wrappers import roms

    game = roms.canonical_game(spec.game)
    short = roms.short_name(game)
    save_as = args.save_as or f"{args.state or 'default'}-play"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", save_as):
        raise UserError(f"--save-as {save_as!r}: give a state name of letters, digits, '.', '-' and '_' (it becomes "
                        "a file name in the ROM store).")
    own = {p.stem for p in (roms.store_dir() / game).glob("*.state")}
    stock = [n for n in (f"{save_as}-{i}" for i in range(1, 10)) if n in roms.states(game) and n not in own]
    if stock:
        raise UserError(f"--save-as {save_as}: {', '.join(stock)} would hide {short}'s own state of that name; "
                        "choose another name.")
    bindings = key_bindings(game, args.keys)
    movie = Path(args.bk2) if args.bk2 else Path(args.runs_dir) / "play" / (
        f"{short}-{args.state or 'default'}-keyboard-{time.strftime('%Y%m%d-%H%M%S')}.bk2")
    if movie.suffix != ".bk2":
        raise UserError(f"--bk2 {movie}: give a file name ending in .bk2 (stable-retro's movie format).")
    console.print(f"playing {short} in a window: Esc quits, F12 pauses, F1-F9 save the state as {save_as}-1 ... "
                  f"{save_as}-9; recording {movie}", soft_wrap=True)
    console.print("keys: " + ", ".join(f"{b} {'/'.join(k)}" for b, k in bindings.items()), soft_wrap=True)
    played = play_keyboard(spec, bindings, movie, save_as, scale=args.scale, agent_view=args.agent_view,
                           seed=args.seed, notify=lambda m: console.print(m, soft_wrap=True))
    console.print(f"played {played.frames:,} frames, {len(played.episodes)} episodes ended")
    for path in played.movies:
        console.print(f"movie: [bold]{path.resolve()}[/] (retrodojo replay it --watch, or states make it)",
                      soft_wrap=True)
    if played.states:
        names = list(played.states)
        console.print(f"{len(names)} states saved in [bold]{played.states[names[0]].parent}[/] (retrodojo roms list "
                      f"shows them): start an experiment there with states: {{{names[0]}: 1}}", soft_wrap=True)
    return 0


# --------------------------------------------------------------------------- train


def _notify(message: str) -> None:
    """Warnings and end messages of a run, in yellow on stderr."""
    err_console.print(f"[yellow]{escape(message)}[/]", soft_wrap=True)



def cmd_train(args) -> int:
    """Train an experiment file (one run per seed) or resume a run folder."""
    from experiments import runner
    from experiments.errors import UserError
    from experiments.progress import TrainingBar
    from experiments.spec import load_spec

    if args.watch:
        from experiments.watch import require_display

        require_display("retrodojo train --watch")
        if args.ray:
            raise UserError("retrodojo train --watch shows a run on this machine, and --ray runs them as Ray tasks "
                            "elsewhere: leave one of them out.")
    if not args.resume and not args.file:
        raise UserError("retrodojo train: give an experiment FILE (or a shipped experiment's name, such as smb_ppo) "
                        "or --resume RUN_DIR.")
    spec = None if args.resume else load_spec(args.file, args.set)
    viewer = None
    if args.watch:
        _check_watchable(spec if spec is not None else _resumed_spec(args.resume))
        from experiments.watch import Viewer

        viewer = Viewer(f"retrodojo train: {args.name or (spec.name if spec else Path(args.resume).name)}")
        console.print("window: the run's env 0 (NEAT: its first worker) at training speed; closing it leaves the "
                      "training going")
    watch = viewer.feed if viewer else None
    bar = TrainingBar(console)
    try:
        if args.resume:
            folders = [runner.resume(args.resume, args.set, on_run=bar.start_run, progress_cb=bar.update,
                                     notify=_notify, trust_pickles=args.trust_pickles, watch=watch)]
        else:
            seeds = args.seeds or ([args.seed] if args.seed is not None else None)
            if args.ray:
                from experiments.cluster import train_on_ray

                bar.stop()
                folders = train_on_ray(spec, seeds or spec.seeds, runs_dir=args.runs_dir, name=args.name,
                                       address=args.ray, console=console)
            else:
                folders = runner.train(spec, runs_dir=args.runs_dir, name=args.name, seeds=seeds,
                                       on_run=bar.start_run, progress_cb=bar.update, notify=_notify, watch=watch)
    finally:
        bar.stop()
        if viewer is not None:
            viewer.close()
    from experiments.run import read_history, read_meta

    statuses = []
    for folder in folders:
        meta = read_meta(folder)
        hist = read_history(folder)
        last = hist[-1] if hist else None
        summary = (f"eval progress {last['progress']:.0f}, success {last['success_rate']:.0%}" if last else "no eval")
        console.print(f"{meta['status']}: [bold]{folder}[/] ({meta.get('frames', 0):,} frames, {summary})",
                      soft_wrap=True)
        statuses.append(meta["status"])
    console.print(f"TensorBoard: [bold].venv/bin/tensorboard --logdir {Path(folders[0]).parent.parent}[/]",
                  soft_wrap=True)
    return 130 if "interrupted" in statuses else 0


def _resumed_spec(run_dir: str):
    """The experiment of a run folder to resume, or None when it cannot be read (resuming then says why)."""
    from experiments.errors import UserError
    from experiments.spec import load_spec

    try:
        return load_spec(Path(run_dir) / "config.yaml")
    except UserError:
        return None


def _check_watchable(spec) -> None:
    """``train --watch`` shows an env of this machine: NEAT on Ray actors has none."""
    from experiments.errors import UserError

    agent = getattr(spec, "agent", None)
    if getattr(agent, "algo", None) == "neat" and getattr(agent, "backend", "local") == "ray":
        raise UserError("retrodojo train --watch shows NEAT's first local worker, and this experiment plays its "
                        "genomes on Ray actors (agent.backend: ray): set agent.backend=local (--set) to watch it.")


# --------------------------------------------------------------------------- runs and evaluate


def cmd_runs(args) -> int:
    """List runs: the run folder (whole: it is what `evaluate` and `--resume` take), frames, last eval, status."""
    from experiments.errors import UserError
    from experiments.run import find_runs, read_meta

    if not Path(args.dir).is_dir():
        raise UserError(f"{args.dir}: no such folder. Runs live under runs/ (or the --runs-dir given to train).")
    rows = []
    for folder in find_runs(args.dir):
        try:
            meta = read_meta(folder)
        except UserError:
            rows.append({"run": str(folder), "status": "unreadable meta.json"})
            continue
        ev = meta.get("last_eval") if isinstance(meta.get("last_eval"), dict) else {}
        rows.append({"run": str(folder), "experiment": meta.get("experiment"), "algo": meta.get("algo"),
                     "seed": meta.get("seed"), "frames": meta.get("frames", 0),
                     "budget": meta.get("budget_frames"), "eval_progress": ev.get("progress"),
                     "eval_success": ev.get("success_rate"), "status": meta.get("status")})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        console.print(f"no runs under {args.dir}")
        return 0

    def cells(r: dict) -> dict:
        ev = "-" if r.get("eval_progress") is None else f"{r['eval_progress']:.0f} ({r['eval_success']:.0%})"
        frames = f"{r.get('frames') or 0:,}" + (f"/{r['budget']:,}" if r.get("budget") else "")
        return {"run": _shown_path(r["run"]), "frames": frames, "eval progress (success)": ev,
                "status": str(r.get("status"))}

    table_rows = [cells(r) for r in rows]
    # The run folder is shown whole (it is what evaluate and --resume take); the other columns go, least
    # useful first, until the table fits; a folder wider than the terminal gets a line of its own.
    columns = list(table_rows[0])
    width = console.width
    while True:
        need = sum(max(len(c), *(len(t[c]) for t in table_rows)) + 3 for c in columns) + 1
        if need <= width or len(columns) == 2:
            break
        columns.pop(-2)
    if need > width:
        console.print(f"Runs under {args.dir}:")
        for t in table_rows:
            console.print(t["run"], soft_wrap=True, highlight=False)
            console.print("    " + "  ".join(f"{c}: {t[c]}" for c in list(t)[1:]), soft_wrap=True)
        return 0
    table = Table(title=f"Runs under {args.dir}", title_justify="left")
    for c in columns:
        table.add_column(c, no_wrap=True)
    for t in table_rows:
        table.add_row(*(t[c] for c in columns))
    console.print(table)
    return 0


def _shown_path(path: str) -> str:
    """A path as a user would type it: relative to the working folder when inside it."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return path


def eval_out_dir(path: Path, agent_dir: Path, is_run: bool, out: str | None) -> Path:
    """Where ``retrodojo evaluate`` writes: ``--out``, else the run's ``eval/`` (a saved agent's: beside it),
    except for a folder inside a ``results/`` record, which stays as committed: its evaluations go to
    ``runs/evaluations/EXPERIMENT/RUN`` (the record's eval/results.json is the run's own, made when it ended)."""
    if out:
        return Path(out)
    base = path if is_run else agent_dir.parent
    resolved = base.resolve()
    if resolved.parent.parent.name == "results":  # the record's layout: results/EXPERIMENT/RUN
        return Path("runs") / "evaluations" / resolved.parent.name / resolved.name
    return base / "eval"


def cmd_evaluate(args) -> int:
    """Play a saved policy on any states of its game; report per state and overall; results.json, mp4, bk2."""
    import agents.base as agents
    from experiments.errors import UserError
    from experiments.evaluate import Evaluator, override_env, results, save_results
    from wrappers import roms
    from wrappers.settings import state_problems

    if args.watch:
        from experiments.watch import require_display

        require_display("retrodojo evaluate --watch")
    elif args.paused:
        raise UserError("--paused starts a --watch window paused: give --watch too.")
    path = Path(args.run)
    from experiments.run import pick_agent

    spec, agent_dir, note = pick_agent(path, args.checkpoint)
    if note:
        err_console.print(note)
    agent = agents.load(agent_dir, device=args.device, trust_pickles=args.trust_pickles)
    # the experiment's evaluation env (eval.env), then the command line's --set on top
    protocol = [f"env.{k}={json.dumps(v)}" for k, v in (spec.eval.env if spec else {}).items()]
    env_spec, overridden = override_env(agent.env_spec, protocol + list(args.set or []))
    if overridden and not args.json:
        console.print("env as evaluated: " + ", ".join(f"{k} {v['evaluated']!r} (trained with {v['saved']!r})"
                                                      for k, v in overridden.items()), soft_wrap=True)
    states = args.state or (spec.eval_states() if spec else env_spec.states)
    if args.state:
        problems = state_problems(roms.canonical_game(env_spec.game), args.state, "--state")
        if problems:
            raise UserError("; ".join(f"{k}: {m}" for k, m in problems) + ". States you made yourself live in "
                            "the ROM store's game folder (`retrodojo roms list`).")
    episodes = max(args.episodes or (spec.eval.episodes if spec else 5), len(states or []))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = eval_out_dir(path, agent_dir, spec is not None, args.out)
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed {args.seed}: give a seed of 0 or more.")
    if out_dir.exists() and not out_dir.is_dir():  # before any episode is played, not after
        raise UserError(f"--out {out_dir}: that is a file; give a folder for results.json (it is made if missing).")
    video = None
    if args.video:
        video = Path(args.video) if args.video != "auto" else out_dir / f"{agent.algo}-{stamp}.mp4"
    bk2_dir = out_dir / "bk2" / stamp if args.bk2 else None
    # the experiment's own protocol (sampled for fights) unless asked otherwise
    deterministic = False if args.stochastic else True if args.greedy else \
        (spec.eval.deterministic if spec else True)
    ev = Evaluator(env_spec.model_copy(update={"state": states}) if states else env_spec, episodes, states,
                   deterministic=deterministic, local=True, seed=args.seed)

    def show(i, ep):
        if not args.json:
            metrics = "".join(f", {k} {v:g}" for k, v in ep.get("metrics", {}).items())
            console.print(f"episode {i}: return {ep['r']:.1f}, progress {ep['progress']:.0f}, "
                          f"success {ep['success']}, {ep['frames']} frames, state {ep['state']}, "
                          f"ended by {ep['reason']}{metrics}", soft_wrap=True)

    window = None
    if args.watch:
        from experiments.watch import Window

        window = Window(f"retrodojo evaluate: {agent.algo} from {path}", scale=args.scale, paused=args.paused)
    try:
        result = ev.run(agent.policy(), video=video, on_episode=show, bk2_dir=bk2_dir, window=window)
    finally:
        ev.close()
        if window is not None:
            window.close()
    for i in result["skipped"]:
        if not args.json:
            console.print(f"episode {i}: skipped in the window (not in the report)")
    if window is not None and not result["episodes"]:
        console.print("the window was closed before an episode ended: nothing to report, nothing written")
        return 0
    if result["quit"] and not args.json:
        console.print(f"the window was closed: the report covers the {len(result['episodes'])} episodes played to "
                      "their end")
    out = results(result["episodes"], result["mean"], env_spec, deterministic, run=path, agent=agent_dir,
                  checkpoint=args.checkpoint, algo=agent.algo, states=states, video=video, bk2=bk2_dir,
                  env_overrides=overridden, seed=ev.seed)
    saved = save_results(out, out_dir)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    _print_eval_table(out)
    console.print(f"results: [bold]{saved}[/]", soft_wrap=True)
    if video:
        console.print(f"video: [bold]{video.resolve()}[/]", soft_wrap=True)
    if bk2_dir:
        console.print(f"movies: [bold]{bk2_dir.resolve()}[/] (`retrodojo replay FILE.bk2 --video OUT.mp4`)",
                      soft_wrap=True)
    return 0


def _print_eval_table(out: dict) -> None:
    table = Table(title=f"{out['algo']} policy from {out['agent']}", title_justify="left")
    rows = [*out["per_state"].items(), ("all", out["overall"])] if len(out["per_state"]) > 1 else \
        list(out["per_state"].items())
    metrics = [k for k in out["overall"] if isinstance(out["overall"][k], dict)
               and k not in ("return", "progress", "frames")]
    for col in ("state", "episodes", "return", "progress", "success", "frames", *metrics):
        table.add_column(col, no_wrap=col == "state")
    for state, d in rows:
        n = f"{d['episodes']}" + (f" ({d['distinct']} distinct)" if d["distinct"] < d["episodes"] else "")
        lo, hi = d.get("success_interval", (None, None))
        success = f"{d['success_rate']:.0%}" + (f" [{lo:.0%}, {hi:.0%}]" if lo is not None and not d["identical"]
                                                 else "")
        table.add_row(str(state), n, _pm(d["return"]), _pm(d["progress"]), success,
                      f"{d['frames']['mean']:,.0f}", *(_pm(d[m]) for m in metrics))
    console.print(table)
    if not out["overall"].get("identical"):
        console.print("success: the share of episodes that met the profile's success rule (a won bout, the flag), "
                      "with its 95% Wilson interval over episodes.", soft_wrap=True)
    if out["overall"].get("identical"):
        console.print(f"The policy is greedy and the env has no randomness (no sticky actions, no no-op starts): "
                      f"the {out['overall']['episodes']} episodes are {out['overall']['distinct']} distinct ones, "
                      "repeated; they are one sample per state, not independent samples.", soft_wrap=True)


def _pm(d: dict) -> str:
    return f"{d['mean']:,.4g}" if d["std"] == 0 else f"{d['mean']:,.4g} ± {d['std']:,.3g}"


def cmd_report(args) -> int:
    """Remake the tables and plots of a results document from the runs and benchmark files it names."""
    from experiments.report import report

    if args.check:
        new, count, old = report(args.doc, args.root, check=True)
        if new != old:
            import difflib

            diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), args.doc, "remade"))
            console.print(diff, markup=False, highlight=False, soft_wrap=True)
            err_console.print(f"{args.doc}: its tables differ from what the record under {args.root} gives (diff "
                              "above); run `make results` to remake them.")
            return 1
        # one line whatever the terminal's width: a path broken in two cannot be pasted back
        console.print(f"{args.doc}: {count} tables match the record.", soft_wrap=True)
        return 0
    _new, count = report(args.doc, args.root)
    console.print(f"{args.doc}: {count} tables remade.", soft_wrap=True)
    return 0


def cmd_replay(args) -> int:
    """Replay .bk2 movies headless and write each an mp4 at the console's frame rate, with its sound; or show
    them in a window (--watch)."""
    from experiments.errors import UserError
    from experiments.replay import check_movie, replay

    files = [Path(f) for f in args.file]
    if args.watch:
        from experiments.watch import require_display, watch_movies

        require_display("retrodojo replay --watch")
        if args.video:
            raise UserError("retrodojo replay --watch shows the movies in a window; --video films one into an mp4: "
                            "leave one of them out.")
        for f in files:
            check_movie(f)
        shown = watch_movies(files, scale=args.scale or 3, paused=args.paused, sound=not args.no_sound,
                             notify=lambda m: console.print(m, soft_wrap=True))
        for w in shown:
            console.print(f"{w.path}: {w.frames:,} frames shown" + (" (window closed)" if w.quit else ""),
                          soft_wrap=True)
        return 0
    if args.paused:
        raise UserError("--paused starts a --watch window paused: give --watch too.")
    if args.video and len(files) > 1:
        raise UserError("--video names one mp4: give one movie (without --video, each movie's mp4 is written "
                        "beside it).")
    for f in files:
        check_movie(f)
    for f in files:
        video = Path(args.video) if args.video else f.with_suffix(".mp4")
        r = replay(f, video=video, scale=args.scale or 2, sound=not args.no_sound)
        console.print(f"replayed {r.frames:,} frames of {r.game} ({r.frames / r.fps:.1f} s at {r.fps:.2f} "
                      f"frames/s); video{' with sound' if r.audio else ''}: [bold]{r.video}[/]", soft_wrap=True)
    return 0


# --------------------------------------------------------------------------- compare

#: How a user states compare's baselines (here, not in experiments.compare: --help must not import torch).
BASELINE_HELP = (
    "A task is a game and its set of start states; groups of runs that differ only in their task are one "
    "method, aggregated over its tasks, which needs each task's scores on one scale: state a baseline per "
    "task, random=FILE.json, a random policy's evaluation (scripts/random_policy.py EXPERIMENT --json > "
    "FILE.json, which records its game and states), or reference=RUN_OR_DIR, runs whose mean at --at is the "
    "yardstick (a folder may hold runs of several tasks). A score becomes score / baseline (1: as good as the "
    "baseline); with both a random policy and a reference for a task, (score - random) / (reference - random) "
    "(0: random, 1: the reference). Repeat --baseline for more tasks.")


def cmd_compare(args) -> int:
    """Groups of runs (same config but the seed) on one metric at one frame count: mean, std, IQM with a
    bootstrap interval, probability of improvement per pair of one task; across tasks, per method on scores
    normalised against a stated baseline; curves as a PNG, or one HTML page."""
    from experiments import stats
    from experiments.compare import compare, ended, fmt, fmt_ci, html_report, plot, profile_plot, where
    from experiments.errors import UserError

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise UserError(f"{', '.join(missing)}: no such folder. Give run folders or folders holding runs.")
    result = compare(args.paths, metric=args.metric, at=args.at, window=args.window, baselines=args.baseline,
                     pool=args.pool, at_generation=args.at_generation, running_best=args.running_best)
    if not result["groups"]:
        raise UserError(f"no runs under {', '.join(args.paths)} (run folders hold meta.json and config.yaml)")
    if not any(g["values"] for g in result["groups"]):
        raise UserError(f"no run has {args.metric} logged {where(result)} or before (eval/* "
                        "figures come from eval/history.jsonl, others from TensorBoard).")
    profile = None
    if args.plot:
        plot(result, args.plot, args.title)
        profile = profile_plot(result, Path(args.plot).with_name(Path(args.plot).stem + "_profile.png"))
    if args.html:
        html_report(result, args.html, args.title)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2, default=str))
        return 0
    over = f" (mean over the last {result['window']:,.0f})" if result["window"] else ""
    tasks = result["tasks"] or [None]
    for task in tasks:  # one table per task: figures of different tasks are not on one scale
        rows = [g for g in result["groups"] if task is None or g["task"] == task]
        on = f"{task}: " if len(tasks) > 1 else ""
        table = Table(title=escape(f"{on}{result['metric']} {where(result)}{over}"),
                      title_justify="left")
        for col in ("group", "n", "mean", "std", "IQM", "95% CI", "per seed", "first success (frames)"):
            table.add_column(col)
        for g in rows:
            # by seed: thousands separators make a bare list of numbers ambiguous
            fs = ", ".join(f"s{s}: {f['frames']:,}" if f else f"s{s}: -"
                           for s, f in zip(g["seeds"], g["first_success"]))
            each = ", ".join(f"s{s}: {fmt(v)}{ended(n, result)}"
                             for s, v, n in zip(g["seeds"], g["per_seed"], g["generations_per_seed"]))
            table.add_row(escape(g["group"]), str(g["n"]), fmt(g["mean"]), fmt(g["std"]), fmt(g["iqm"]),
                          fmt_ci(g["iqm_ci"], g["interval"]), each, fs)
        console.print(table)
    if result["pairs"]:
        several = len(tasks) > 1
        pairs = Table(title="probability that a run of A beats a run of B (groups of one task)", title_justify="left")
        for col in ("A", "B", *(["task"] if several else []), "P(A > B)", "95% CI"):
            pairs.add_column(col)
        for p in result["pairs"]:
            pairs.add_row(escape(p["a"]), escape(p["b"]), *([escape(p["task"])] if several else []),
                          f"{p['p_a_better']:.2f}",
                          fmt_ci(p["ci"], p["interval"]))
        console.print(pairs)
    if result["methods"]:
        _print_across_tasks(result)
    elif args.baseline:
        console.print("--baseline is used only to aggregate across tasks, and no method here played several.")
    if any(0 < g["n"] < stats.MIN_RUNS for g in result["groups"]):
        console.print(f"Few seeds: a group of fewer than {stats.MIN_RUNS} runs gets no interval (a bootstrap of one "
                      "or two values says nothing about the spread).")
    for out in (args.plot, profile, args.html):
        if out:
            console.print(f"written: [bold]{out}[/]", soft_wrap=True)
    return 0


def _print_across_tasks(result: dict) -> None:
    """The methods' normalised figures across tasks, the baselines they are normalised against, and the pairs."""
    from experiments.compare import fmt, fmt_ci

    base = Table(title="baselines: a score is normalised to (score - zero) / (unit - zero)", title_justify="left")
    for col in ("task", "zero", "unit"):
        base.add_column(col)
    for task in result["tasks"]:
        b = result["baselines"][task]
        base.add_row(escape(task), escape(f"{fmt(b['zero'])} ({b['zero_from']})"),
                     escape(f"{fmt(b['unit'])} ({b['unit_from']})"))
    console.print(base)
    table = Table(title=f"{result['metric']} normalised per task, across tasks (stratified bootstrap)",
                  title_justify="left")
    for col in ("method", "tasks", "runs", "mean", "IQM", "95% CI"):
        table.add_column(col)
    for m in result["methods"]:
        table.add_row(escape(m["method"]), escape(", ".join(m["tasks"])), str(sum(m["n"].values())), fmt(m["mean"]),
                      fmt(m["iqm"]), fmt_ci(m["iqm_ci"], m["interval"]))
    console.print(table)
    if result["method_pairs"]:
        pairs = Table(title="probability that a run of A beats a run of B, averaged over their tasks",
                      title_justify="left")
        for col in ("A", "B", "tasks", "P(A > B)", "95% CI"):
            pairs.add_column(col)
        for p in result["method_pairs"]:
            pairs.add_row(escape(p["a"]), escape(p["b"]), escape(", ".join(p["tasks"])), f"{p['p_a_better']:.2f}",
                          fmt_ci(p["ci"], p["interval"]))
        console.print(pairs)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:,.2f}" if abs(v) < 10 else f"{v:,.0f}"


# --------------------------------------------------------------------------- states


def cmd_states_make(args) -> int:
    """Cut start states along an episode of a run, a saved agent or a .bk2 movie."""
    from experiments.states import make_states

    made = make_states(args.source, every=args.every, start=args.start, out=args.out, prefix=args.prefix,
                       trust_pickles=args.trust_pickles)
    for m in made:
        prog = "" if m.progress is None else f", progress {m.progress:.0f}"
        console.print(f"  {m.name}  ({m.frames:,} frames{prog})", soft_wrap=True)
    if made:
        console.print(f"{len(made)} states in [bold]{made[0].path.parent}[/]: use them in an experiment, e.g. "
                      f"states: {{{made[0].name}: 1, {made[-1].name}: 1}}", soft_wrap=True)
    return 0


# --------------------------------------------------------------------------- convert


def cmd_convert(args) -> int:
    """Rewrite a trusted earlier version's run in the safe formats, or write its policy small (--out)."""
    from experiments.convert import convert, export_policy

    if args.out:
        done = [export_policy(args.path, args.out, which=args.checkpoint, half=args.half,
                              trust_pickles=args.trust_pickles)]
    else:
        if args.half:
            from experiments.errors import UserError

            raise UserError("--half writes a small copy of one policy: give --out DIR too (a run's checkpoints "
                            "keep full precision, to resume exactly).")
        done = convert(args.path, trust_pickles=args.trust_pickles)
    for item in done:
        console.print(f"{item.action}: [bold]{item.path}[/]", soft_wrap=True)
    return 0


# --------------------------------------------------------------------------- tune


def cmd_tune(args) -> int:
    """Search the experiment's tune: space with Optuna; write the study's report."""
    from experiments.tune import tune

    folder = tune(args.file, args.trials, runs_dir=args.runs_dir, storage=args.storage, study=args.study,
                  sampler=args.sampler, pruner=args.pruner, ray_address=args.ray, overrides=args.set,
                  console=console)
    console.print(report_summary(folder), soft_wrap=True)
    return 0


def report_summary(folder: Path) -> str:
    """What a study folder holds, as a few lines."""
    import csv

    rows = list(csv.DictReader((folder / "trials.csv").open())) if (folder / "trials.csv").is_file() else []
    lines = [f"study folder: {folder} ({len(rows)} trials)"]
    for r in rows:
        params = ", ".join(f"{k.removeprefix('params_')}={v}" for k, v in r.items() if k.startswith("params_"))
        lines.append(f"  trial {r['number']}: {r['state']}, value {r.get('value') or '-'}  ({params})")
    if (folder / "best.yaml").is_file():
        lines.append(f"best: {folder / 'best.yaml'} (train it: retrodojo train {folder / 'best.yaml'})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- demo


def cmd_demo(args) -> int:
    """The main job: NEAT learns SMB 1-1 for a few minutes; the champion plays on video."""
    from experiments import runner
    from experiments.progress import TrainingBar
    from experiments.run import read_meta
    from experiments.spec import load_spec

    console.print(f"[bold]retrodojo demo[/]: NEAT learns Super Mario Bros 1-1 for {args.minutes:g} minutes on this "
                  f"machine ({args.config}), then its champion plays on video.")
    spec = load_spec(args.config, [f"budget.minutes={args.minutes}"])
    bar = TrainingBar(console)
    try:
        (folder,) = runner.train(spec, runs_dir=args.runs_dir, seeds=[args.seed], on_run=bar.start_run,
                                 progress_cb=bar.update, notify=_notify)
    finally:
        bar.stop()
    meta = read_meta(folder)
    first = meta.get("first_success")
    console.print(f"{meta['status']} after {meta['frames']:,} frames, {meta.get('train_seconds', 0) / 60:.1f} min"
                  + (f"; first reached the flag after {first['frames']:,} frames ({first['seconds'] / 60:.1f} min)"
                     if first else "; the flag not reached yet (resume to continue: "
                     f"retrodojo train --resume {folder} --set budget.minutes=60)"))
    # through evaluate's own parser, so that every option it has gets its default here too
    eval_args = build_parser().parse_args(["evaluate", str(folder), "--episodes", "1", "--video", "--greedy"])
    cmd_evaluate(eval_args)
    shipped = Path(__file__).resolve().parent.parent / "models" / "smb_neat_1-1"
    if (shipped / "agent.json").is_file():  # a checkout ships the champion that cleared 1-1 (models/README.md)
        console.print(f"and the shipped champion that clears 1-1 ({shipped}):")
        cmd_evaluate(argparse.Namespace(**{**vars(eval_args), "run": str(shipped),
                                           "video": str(folder / "eval" / "shipped_champion.mp4")}))
    console.print(f"run folder: [bold]{folder}[/]")
    console.print(f"curves: [bold].venv/bin/tensorboard --logdir {args.runs_dir}[/] (or `make tensorboard`)")
    return 0


# --------------------------------------------------------------------------- main


TRUST_HELP = ("load an earlier version's pickled agents and checkpoints; unpickling runs any code the file names, "
              "so only for folders from a source you trust (`retrodojo convert` rewrites them once)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="retrodojo", description="Train and compare agents on emulated games.")
    sub = p.add_subparsers(dest="command", required=True)

    roms_p = sub.add_parser("roms", help="import, register and list ROMs")
    roms_sub = roms_p.add_subparsers(dest="roms_command", required=True)
    imp = roms_sub.add_parser("import", help="import ROM dumps (files, folders, zip archives)")
    imp.add_argument("paths", nargs="+")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_roms_import)
    bun = roms_sub.add_parser("bundled", help="register ROMs shipped in installed packages (SMB, Atari)")
    bun.add_argument("--json", action="store_true")
    bun.set_defaults(func=cmd_roms_bundled)
    lst = roms_sub.add_parser("list", help="games with a ROM available now")
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    lst.add_argument("--all", action="store_true", help="every integration, playable or not")
    lst.set_defaults(func=cmd_roms_list)

    play = sub.add_parser("play", help="play with a random policy through the full stack and film it")
    play.add_argument("game")
    play.add_argument("--state", default=None)
    play.add_argument("--profile", default=None, help="game profile name or YAML path; default: a shipped profile "
                                                      "of the game, else 'scenario' (the game's scenario.json)")
    play.add_argument("--actions", default=None, help="action set of the profile")
    play.add_argument("--frames", type=int, default=4000)
    play.add_argument("--frame-skip", type=int, default=None, help="emulator frames per step (default 4; 1 with "
                                                                   "--keyboard)")
    play.add_argument("--stuck-frames", type=int, default=None, help="end after this many frames without progress; "
                                                                     "0: never (default 600; 0 with --keyboard)")
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--video", default=None, help="mp4 path (default: runs/play/...)")
    play.add_argument("--runs-dir", default="runs")
    play.add_argument("--keyboard", action="store_true", help="play it yourself in a window (the console's keys: "
                                                              "stable-retro's bindings, or --keys)")
    play.add_argument("--keys", default=None, metavar="FILE", help="with --keyboard: a YAML file of BUTTON: key "
                                                                   "(pygame's key names) over the console's defaults")
    play.add_argument("--save-as", default=None, metavar="NAME", help="with --keyboard: F1-F9 save the state as "
                                                                      "NAME-1 ... NAME-9 in the ROM store (default "
                                                                      "<state>-play)")
    play.add_argument("--bk2", default=None, metavar="OUT.bk2", help="with --keyboard: the movie of the play "
                                                                     "(default runs/play/...; later episodes -001...)")
    play.add_argument("--agent-view", action="store_true", help="with --keyboard: the observation the agents get, "
                                                                "beside the screen")
    play.add_argument("--scale", type=int, default=3, help="with --keyboard: integer upscale of the picture")
    play.set_defaults(func=cmd_play)

    tr = sub.add_parser("train", help="train an experiment file, or --resume a run")
    tr.add_argument("file", nargs="?", help="an experiment file, or the name of a shipped one (smb_ppo)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key by its dotted path (repeatable), e.g. budget.frames=200000")
    tr.add_argument("--seed", type=int, default=None, help="one run with this seed instead of the file's seeds")
    tr.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N",
                    help="these seeds instead of the file's (one after another, or at once with --ray)")
    tr.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="run the seeds as Ray tasks on the cluster at ADDRESS (default: auto, the one on this "
                         "machine, else a new local one)")
    tr.add_argument("--name", default=None, help="experiment folder name (default: the file's name key)")
    tr.add_argument("--runs-dir", default="runs")
    tr.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue a run from its newest checkpoint")
    tr.add_argument("--trust-pickles", action="store_true", help=TRUST_HELP)
    tr.add_argument("--watch", action="store_true", help="show env 0 (NEAT: its first worker) live in a window at "
                                                         "training speed; closing it leaves the run going")
    tr.set_defaults(func=cmd_train)

    rn = sub.add_parser("runs", help="list runs")
    rn.add_argument("dir", nargs="?", default="runs")
    rn.add_argument("--json", action="store_true")
    rn.set_defaults(func=cmd_runs)

    ev = sub.add_parser("evaluate", help="play a saved policy on any states; per state and overall; json, mp4, bk2")
    ev.add_argument("run", help="a run folder (or a saved agent folder)")
    ev.add_argument("--checkpoint", default="final", help="final (default), best, latest or a frame count")
    ev.add_argument("--state", nargs="+", default=None, help="states to play (any of the game's, held-out ones "
                                                             "too); default: the run's eval states")
    ev.add_argument("--episodes", type=int, default=None, help="episodes in all (at least one per state)")
    ev.add_argument("--seed", type=int, default=None, help="the env's seed (sticky-action and no-op draws); "
                                                          "default: the fixed seed every evaluation in training "
                                                          "uses. Another seed plays fresh episodes, e.g. to judge "
                                                          "a policy kept for its best evaluation (--checkpoint best)")
    ev.add_argument("--out", default=None, help="folder for results.json, the mp4 and movies (default: the run's "
                                                "eval/; runs/evaluations/EXPERIMENT/RUN for a run in results/, "
                                                "which evaluate never writes into)")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--video", nargs="?", const="auto", default=None, help="write an mp4 (default under eval/)")
    ev.add_argument("--bk2", action="store_true", help="write each episode as a .bk2 movie (under eval/bk2/)")
    how = ev.add_mutually_exclusive_group()
    how.add_argument("--stochastic", action="store_true", help="sample actions (default: the experiment's eval "
                                                                "protocol: greedy, sampled for fights)")
    how.add_argument("--greedy", action="store_true", help="greedy actions, whatever the experiment's protocol")
    ev.add_argument("--set", action="append", default=[], metavar="env.KEY=VALUE",
                    help="play with an env setting other than the saved one (repeatable), e.g. "
                         "env.sticky_prob=0.25 or env.episode=run; results.json records what changed")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--trust-pickles", action="store_true", help=TRUST_HELP)
    ev.add_argument("--watch", action="store_true", help="play the episodes in a window at the console's rate "
                                                         "(space pause, . step, +/- speed, n next, q quit)")
    ev.add_argument("--paused", action="store_true", help="with --watch: start paused on the first frame")
    ev.add_argument("--scale", type=int, default=3, help="with --watch: integer upscale of the picture (default 3)")
    ev.set_defaults(func=cmd_evaluate)

    rp = sub.add_parser("replay", help="replay .bk2 movies headless and write mp4s (with sound), or --watch them")
    rp.add_argument("file", nargs="+", help=".bk2 movies (retrodojo evaluate --bk2 and play --keyboard write them)")
    rp.add_argument("--video", default=None, help="the mp4 to write (default: beside the movie)")
    rp.add_argument("--scale", type=int, default=None, help="integer upscale of the picture (default 2; 3 in a "
                                                            "window)")
    rp.add_argument("--no-sound", action="store_true")
    rp.add_argument("--watch", action="store_true", help="show the movies in a window at the console's rate, with "
                                                         "sound where there is an audio device (n: next movie)")
    rp.add_argument("--paused", action="store_true", help="with --watch: start paused on the first frame")
    rp.set_defaults(func=cmd_replay)

    rep = sub.add_parser("report", help="remake the tables and plots of docs/results.md from the record in results/")
    rep.add_argument("doc", nargs="?", default="docs/results.md", help="the document (default docs/results.md)")
    rep.add_argument("--root", default=".", help="where the paths its blocks name start (default: here)")
    rep.add_argument("--check", action="store_true", help="change nothing; exit 1 if its tables differ from the "
                                                          "record's")
    rep.set_defaults(func=cmd_report)

    cmp = sub.add_parser("compare", help="compare runs on one metric at one frame count; curves as a PNG")
    cmp.add_argument("paths", nargs="+", help="run folders, or folders holding runs")
    cmp.add_argument("--metric", default="eval/progress", help="eval/progress, eval/return, eval/success_rate "
                                                               "or any TensorBoard tag")
    cmp.add_argument("--at", type=float, default=None, help="frame count (default: the shortest run's end)")
    cmp.add_argument("--window", type=float, default=None,
                     help="average the values logged in this many frames up to --at (for per-episode metrics)")
    cmp.add_argument("--at-generation", type=int, default=None, metavar="N",
                     help="NEAT runs: read each where it finished N generations (inputs that cost different frames "
                          "per generation compared at equal generations)")
    cmp.add_argument("--running-best", action="store_true",
                     help="the best value logged so far, not the last (neat/best_progress: best x by then)")
    cmp.add_argument("--plot", default=None, help="write the curves to this PNG")
    cmp.add_argument("--title", default=None)
    cmp.add_argument("--html", default=None, metavar="REPORT.html",
                     help="one self-contained page: table, intervals, curves, configs side by side, videos")
    cmp.add_argument("--baseline", action="append", default=None, metavar="random=FILE.json|reference=RUN_OR_DIR",
                     help=BASELINE_HELP)
    cmp.add_argument("--pool", action="append", default=[], metavar="KEY",
                     help="a setting (dotted key, e.g. budget.frames, or a section) that does not split runs into "
                          "groups: for one the reader knows did not bind (repeatable)")
    cmp.add_argument("--json", action="store_true")
    cmp.set_defaults(func=cmd_compare)

    st = sub.add_parser("states", help="make start states from episodes")
    st_sub = st.add_subparsers(dest="states_command", required=True)
    mk = st_sub.add_parser("make", help="cut states along an episode of a run, a saved agent or a .bk2 movie")
    mk.add_argument("source", help="a run folder, a saved agent folder, or a .bk2 movie")
    mk.add_argument("--every", type=int, default=600, help="emulator frames between states (default 600)")
    mk.add_argument("--from", dest="start", default=None, help="the state the episode starts from (default: "
                                                                 "the run's first evaluation state)")
    mk.add_argument("--out", default=None, help="folder for the states (default: the ROM store, beside the "
                                                "game's own, where experiments and `roms list` find them)")
    mk.add_argument("--prefix", default=None, help="name prefix (default: <start>-at)")
    mk.add_argument("--trust-pickles", action="store_true", help=TRUST_HELP)
    mk.set_defaults(func=cmd_states_make)

    cv = sub.add_parser("convert", help="rewrite an earlier version's pickled run in the safe formats, or "
                                        "write one policy small (--out)")
    cv.add_argument("path", help="a run folder or a saved agent folder")
    cv.add_argument("--trust-pickles", action="store_true", help="read the folder's pickles (required to convert "
                                                                 "them: only for folders you trust)")
    cv.add_argument("--out", default=None, metavar="DIR", help="write the policy alone (weights, no optimizer) "
                                                               "into this new folder instead")
    cv.add_argument("--checkpoint", default="final", help="with --out: final (default), best, latest or frames")
    cv.add_argument("--half", action="store_true", help="with --out: 16-bit weights (half the size)")
    cv.set_defaults(func=cmd_convert)

    tu = sub.add_parser("tune", help="search hyperparameters with Optuna (the experiment's tune: section)")
    tu.add_argument("file", help="an experiment file (or a shipped experiment's name) with a tune: section")
    tu.add_argument("--trials", type=int, default=10, help="trials this process runs (default 10)")
    tu.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the experiment by its dotted path (repeatable), as for train, e.g. "
                         "budget.frames=50000 to try the search on a tiny budget")
    tu.add_argument("--storage", default=None, help="an Optuna storage URL (default: a journal file in the study "
                                                    "folder; postgresql://... for several machines)")
    tu.add_argument("--study", default=None, help="study name (default: the experiment's name); processes "
                                                  "with the same study and storage share it")
    tu.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    tu.add_argument("--pruner", choices=["median", "none"], default="median")
    tu.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="run the trials as Ray tasks on the cluster at ADDRESS")
    tu.add_argument("--runs-dir", default="runs")
    tu.set_defaults(func=cmd_tune)

    demo = sub.add_parser("demo", help="NEAT on SMB 1-1 for a few minutes, then its champion on video")
    demo.add_argument("--minutes", type=float, default=5.0)
    demo.add_argument("--config", default="smb_neat", help="experiment file or shipped name (default smb_neat)")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--runs-dir", default="runs")
    demo.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a subcommand; user errors print a paragraph and exit 2."""
    from experiments.errors import UserError
    from experiments.runner import RunFailed

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
        return 2
    except RunFailed as e:
        err_console.print(f"[bold red]run failed:[/] {escape(str(e))}", soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
