"""The training progress bar: it fits the terminal and follows whichever budget binds.

A run may be bounded by frames, minutes and (NEAT) generations at once; the bar fills with the one that
will end the run first, and its ETA is that budget's. In a narrow terminal the least useful fields are
dropped whole instead of every column being cut to an ellipsis. When stdout is not a terminal (a log
file, CI), the same line is printed every 30 seconds instead.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn


def _short(n: float) -> str:
    """1234567 -> '1.23M', 12345 -> '12.3k'."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class TrainingBar:
    """A rich progress bar fed by ``Run.progress``; plain log lines when the console is not a terminal.

    Args:
        console: where to draw (its width decides which fields fit).
    """

    BAR_MIN, BAR_MAX = 10, 40

    def __init__(self, console: Console):
        self.console = console
        self.interactive = console.is_terminal
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=self.BAR_MIN),
                                 TextColumn("{task.fields[info]}"), console=console, disable=not self.interactive,
                                 auto_refresh=self.interactive)
        self.task = None
        self._last_print = 0.0
        self._info: dict = {}

    # ------------------------------------------------------------------ budgets

    def start_run(self, run) -> None:
        """A run starts (or resumes): print its folder and reset the bar to its budgets."""
        note = f" (resuming at {run.start_frames:,} frames)" if run.resumes else ""
        self.console.print(f"run folder: [bold]{run.dir}[/]{note}", soft_wrap=True)
        budget = run.spec.budget
        self.frames_total = budget.frames
        self.seconds_total = budget.minutes * 60 if budget.minutes else None
        self.generations_total = budget.generations
        self._t0 = time.perf_counter()
        self._start = None  # the binding fraction at the first update of this invocation
        self._info = {"fps": 0.0, "last_eval": run.last_eval, "seconds": run.seconds_before, "generation": None}
        self._frames = run.start_frames
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.description = f"{run.spec.agent.algo} s{run.seed}"
        self.task = self.progress.add_task(self.description, total=1.0, completed=0.0, info="")
        self.progress.start()

    def fraction(self) -> tuple[float, str]:
        """(fraction done, which budget) for the budget closest to its end."""
        fracs = [(self._frames / self.frames_total, "frames")]
        if self.seconds_total:
            fracs.append((self._info.get("seconds", 0.0) / self.seconds_total, "minutes"))
        gen = self._info.get("generation")
        if self.generations_total and gen is not None:
            fracs.append((gen / self.generations_total, "generations"))
        frac, kind = max(fracs)
        return min(frac, 1.0), kind

    def eta(self) -> float | None:
        """Seconds left by the binding budget, from its rate in this invocation; None before a rate exists."""
        frac, kind = self.fraction()
        if kind == "minutes":
            return self.seconds_total - self._info.get("seconds", 0.0)
        if self._start is None or frac <= self._start:
            return None
        return (1.0 - frac) * (time.perf_counter() - self._t0) / (frac - self._start)

    # ------------------------------------------------------------------ text

    def parts(self) -> list[tuple[int, str]]:
        """(priority, text) of every field; lower priority numbers are kept longest."""
        frac, kind = self.fraction()
        if kind == "minutes":
            budget = f"of {self.seconds_total / 60:g} min"
        elif kind == "generations":
            budget = f"gen {self._info.get('generation')}/{self.generations_total}"
        else:
            budget = f"of {_short(self.frames_total)}"
        eta = self.eta()
        ev = self._info.get("last_eval")
        out = [(0, f"{_short(self._frames)} frames {frac:.0%} {budget}"),
               (1, f"ETA {_clock(eta)}" if eta is not None else "ETA -"),
               (3, f"{self._info.get('fps', 0.0):,.0f} fps"),
               (4, f"elapsed {_clock(self._info.get('seconds', 0.0))}")]
        if ev:
            out.insert(2, (2, f"eval@{_short(ev['frames'])}: progress {ev['progress']:.0f}, "
                              f"success {ev['success_rate']:.0%}"))
        return out

    def line(self, width: int | None = None) -> str:
        """The fields that fit in ``width`` characters, in display order (all of them with no width)."""
        parts = self.parts()
        if width is None:
            return "  ".join(text for _, text in parts)
        keep = sorted(parts, key=lambda p: p[0])
        while keep and sum(len(t) for _, t in keep) + 2 * (len(keep) - 1) > width:
            keep.pop()
        return "  ".join(text for p, text in parts if (p, text) in keep)

    # ------------------------------------------------------------------ updates

    def update(self, frames: int, info: dict) -> None:
        """New figures from the run (``Run.progress`` calls this)."""
        self._frames = frames
        self._info.update({k: v for k, v in info.items() if v is not None or k == "last_eval"})
        if self._start is None and "fps" in info:
            self._start, self._t0 = self.fraction()[0], time.perf_counter()
        frac, _ = self.fraction()
        if self.interactive:
            width = self.console.width
            room = width - len(self.description) - 2
            bar = max(self.BAR_MIN, min(self.BAR_MAX, room - len(self.line()) - 1))
            self.progress.columns[1].bar_width = bar
            self.progress.update(self.task, completed=frac, info=self.line(room - bar - 1))
        elif time.time() - self._last_print > 30 or "fps" not in info:
            self._last_print = time.time()
            self.console.print(f"  {self.description}  {self.line()}", soft_wrap=True)

    def stop(self) -> None:
        """Stop drawing."""
        self.progress.stop()
