"""Run an experiment: one run per seed, each learning into its run folder; resume a stopped run.

SIGINT and SIGTERM ask the agent to stop: it writes a checkpoint and the run ends as ``interrupted``;
``retrodojo train --resume RUN_DIR`` continues it. A second SIGINT stops at once (the previous checkpoint
stays loadable: checkpoints are renamed into place only when complete).
"""

from __future__ import annotations

import signal
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import agents.base as agents
from experiments.run import Run
from experiments.spec import ExperimentSpec
from wrappers.vec_env import EnvWorkerError


class RunFailed(Exception):
    """A run stopped on an error that is not the user's (an env worker died, NEAT's workers were lost); its
    checkpoints are kept."""


@contextmanager
def stop_on_signals(run: Run, notify: Callable[[str], None] | None = None):
    """While inside, SIGINT/SIGTERM set ``run.stop_requested``; a second SIGINT raises KeyboardInterrupt."""
    def handler(signum, _frame):
        if run.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        run.stop_requested = True
        if notify:
            notify(f"{signal.Signals(signum).name}: writing a checkpoint, then stopping "
                   "(Ctrl-C again to stop at once)")

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def execute(run: Run, notify: Callable[[str], None] | None = None) -> str:
    """Learn to the run's budget (resuming from its checkpoint); save ``final/``; return the end status."""
    agent = agents.create(run.spec.agent, run.env_spec, run.seed)
    run.notify = notify
    status, error = "failed", None
    try:
        with stop_on_signals(run, notify):
            agent.learn(run.budget_frames, run)
        if run.stop_requested:
            status = run.end_status if run.end_status == "pruned" else "interrupted"
        else:
            run.save_final(agent)
            status = run.end_status or "finished"
        return status
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except (EnvWorkerError, agents.WorkersLost) as e:
        error = str(e)
        ckpt = run.latest_checkpoint()
        saved = (f"Its newest checkpoint ({ckpt.name}, {int(ckpt.name):,} frames) is kept: continue with "
                 f"`retrodojo train --resume {run.dir}`." if ckpt else "It had no checkpoint yet.")
        raise RunFailed(f"{run.dir} stopped: {e.args[0].splitlines()[0]}. {saved} The worker's own error, if it "
                        f"printed one, is above; meta.json has the details.") from None
    except Exception as e:
        error = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        raise
    finally:
        run.close(status, error)


def train(spec: ExperimentSpec, runs_dir: str | Path = "runs", name: str | None = None,
          seeds: list[int] | None = None, on_run: Callable[[Run], None] | None = None,
          progress_cb=None, notify=None, watch=None) -> list[Path]:
    """Run the experiment once per seed; returns the run folders. ``watch``: a
    :class:`wrappers.tap.FrameFeed` a window reads, fed by each run's env 0 (or NEAT's first worker)."""
    folders = []
    for seed in seeds or spec.seeds:
        run = Run.create(spec, seed, runs_dir, name=name, progress_cb=progress_cb)
        run.watch = watch
        if on_run:
            on_run(run)
        folders.append(run.dir)
        execute(run, notify)
        if run.stop_requested and run.end_status != "pruned":
            break
    return folders


def resume(path: str | Path, overrides: list[str] | None = None, on_run=None, progress_cb=None,
           notify=None, trust_pickles: bool = False, watch=None) -> Path:
    """Continue a run from its newest checkpoint to its budget (or a larger one given by ``--set``); an earlier
    version's pickled checkpoint only with ``trust_pickles``; ``watch`` as for :func:`train`."""
    run = Run.open(path, overrides, progress_cb=progress_cb, trust_pickles=trust_pickles)
    run.watch = watch
    if on_run:
        on_run(run)
    execute(run, notify)
    return run.dir
