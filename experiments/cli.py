"""The ``retrodojo`` command line.

    retrodojo roms import PATH...     import ROM dumps (files, folders, zips) into the store
    retrodojo roms bundled            register the ROMs installed packages ship
    retrodojo roms list [--json]      games playable now, their states and ROM sources
    retrodojo play GAME ...           play with a random policy through the full stack, film it
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
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
    """Play a game with a random policy through the full wrapper stack; write an mp4."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from experiments.play import play_random
    from wrappers.factory import EnvSpec, validate_spec

    spec = EnvSpec(game=args.game, state=args.state, profile=args.profile, actions=args.actions,
                   frame_skip=args.frame_skip, stuck_frames=args.stuck_frames)
    validate_spec(spec)
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
    console.print(f"video: [bold]{report.video.resolve()}[/]")
    return 0


# --------------------------------------------------------------------------- main


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
    play.add_argument("--profile", required=True, help="game profile (configs/games/NAME.yaml)")
    play.add_argument("--actions", default=None, help="action set of the profile")
    play.add_argument("--frames", type=int, default=4000)
    play.add_argument("--frame-skip", type=int, default=4)
    play.add_argument("--stuck-frames", type=int, default=600)
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--video", default=None, help="mp4 path (default: runs/play/...)")
    play.add_argument("--runs-dir", default="runs")
    play.set_defaults(func=cmd_play)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a subcommand; user errors print a paragraph and exit 2."""
    from experiments.errors import user_error_types

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except user_error_types() as e:
        err_console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
