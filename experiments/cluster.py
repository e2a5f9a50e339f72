"""Many runs at once on a Ray cluster: one Ray task per seed (or tuning trial), one table of their progress.

Each task asks for the CPUs its run uses (``agent.n_envs`` + 1 for PPO and A2C, NEAT's workers) and runs the
experiment exactly as ``retrodojo train`` does on one machine (a NEAT run that leaves ``agent.workers`` to
the machine gets the number booked written in: it would otherwise start one per core of the node it lands
on). Nothing assumes a shared file system: a task on the driver's own node writes its run folder in place;
a task on another node writes it to a folder of that node and sends it back, whole, when the run ends (so
a node lost mid-run loses that run: train it again with ``--seeds N``). Progress (frames, frames/s, the
last evaluation) reaches the driver through a small actor and is drawn as one table.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from experiments.errors import UserError
from experiments.spec import ExperimentSpec


def cpus_for(spec: ExperimentSpec) -> int:
    """CPUs one run of ``spec`` keeps busy: envs + 1 (the learner) for SB3 agents; NEAT's worker processes
    (``agent.workers``, else one per core of this machine, as the run would start here), or 1 when its
    workers are Ray actors (each of those books its own CPU)."""
    agent = spec.agent
    if agent.algo == "neat":
        if agent.backend == "ray":
            return 1
        from wrappers.vec_env import cores  # torch comes with it: only for NEAT

        return agent.workers or cores()
    return agent.n_envs + 1


def with_booked_workers(spec: ExperimentSpec, data: dict, cpus: int) -> dict:
    """The experiment mapping ``data`` with NEAT's ``agent.workers`` set to the CPUs booked for it, where the
    file leaves it to the machine: a task must start what it booked, not one worker per core of its node."""
    agent = spec.agent
    if agent.algo != "neat" or agent.backend == "ray" or agent.workers is not None:
        return data
    return {**data, "agent": {**data.get("agent", {}), "workers": cpus}}


def check_fits(spec: ExperimentSpec) -> int:
    """The CPUs one run needs, after checking that some node of the cluster has that many (a task asking for
    more than any node has would wait for ever)."""
    import ray

    cpus = cpus_for(spec)
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
    if cpus > largest:
        raise UserError(f"one run of {spec.name} needs {cpus} CPUs on one node (agent.n_envs + 1, or NEAT's "
                        f"workers) and the largest node of the Ray cluster has {largest:g}: lower agent.n_envs "
                        "(or agent.workers), or add a bigger node.")
    return cpus


def _board_class():
    import ray

    @ray.remote(num_cpus=0)
    class ProgressBoard:
        """Latest progress of every run, by seed (written by the run tasks, read by the driver)."""

        def __init__(self):
            self.rows: dict[int, dict] = {}

        def report(self, seed: int, row: dict) -> None:
            self.rows[seed] = {**self.rows.get(seed, {}), **row}

        def snapshot(self) -> dict[int, dict]:
            return self.rows

    return ProgressBoard


def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return buf.getvalue()


def _unpack(blob: bytes, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        names = tar.getnames()
        tar.extractall(into, filter="data")
    return into / names[0].split("/")[0]


def _run_task(spec_data: dict, seed: int, runs_dir: str, name: str | None, driver_node: str, board) -> dict:
    """One seed's run inside a Ray task (see the module docstring for where its folder goes)."""
    import ray

    from experiments import runner
    from experiments.run import read_meta
    from experiments.spec import validate_spec

    spec = validate_spec(spec_data, f"seed {seed}")
    here = ray.get_runtime_context().get_node_id()
    local = here == driver_node
    target = Path(runs_dir) if local else Path(tempfile.mkdtemp(prefix="retrodojo-run-"))
    node = ray.util.get_node_ip_address()

    def progress(frames: int, info: dict) -> None:
        ev = info.get("last_eval") or {}
        board.report.remote(seed, {"frames": frames, "fps": info.get("fps"), "eval_progress": ev.get("progress"),
                                   "eval_success": ev.get("success_rate"), "status": "running", "node": node})

    board.report.remote(seed, {"status": "starting", "node": node, "budget": spec.budget.frames})
    try:
        (folder,) = runner.train(spec, runs_dir=target, name=name, seeds=[seed], progress_cb=progress)
        status = read_meta(folder).get("status", "?")
        board.report.remote(seed, {"status": status})
        return {"seed": seed, "folder": str(folder) if local else None, "blob": None if local else _pack(folder),
                "experiment": folder.parent.name, "status": status, "node": node}
    finally:
        if not local:
            shutil.rmtree(target, ignore_errors=True)


def train_on_ray(spec: ExperimentSpec, seeds: list[int], runs_dir: str | Path = "runs", name: str | None = None,
                 address: str | None = "auto", console=None) -> list[Path]:
    """Run one task per seed on the Ray cluster at ``address``; draw their progress; return the run folders."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'retrodojo[ray]' (or leave --ray out to run the seeds one "
                        "after another here)") from None
    from agents.neat_backends import connect_ray

    connect_ray(address)
    cpus = check_fits(spec)
    board = _board_class().remote()
    task = ray.remote(num_cpus=cpus)(_run_task)
    driver = ray.get_runtime_context().get_node_id()
    data = with_booked_workers(spec, spec.model_dump(mode="json"), cpus)
    refs = {task.remote(data, seed, str(Path(runs_dir).resolve()), name, driver, board): seed for seed in seeds}
    results, errors = _watch(refs, board, spec, console)
    folders = []
    for r in sorted(results, key=lambda r: r["seed"]):
        folder = Path(r["folder"]) if r["folder"] else _unpack(r["blob"], Path(runs_dir) / (name or spec.name))
        folders.append(folder)
    if errors:
        raise UserError("some runs failed on Ray: " + "; ".join(errors) + f". The other {len(folders)} run "
                        "folders are in place.")
    return folders


def _watch(refs: dict, board, spec: ExperimentSpec, console) -> tuple[list[dict], list[str]]:
    """Wait for every task, drawing one table of their progress; returns (results, errors of failed tasks)."""
    import ray
    from rich.live import Live
    from rich.table import Table

    def table() -> Table:
        rows = ray.get(board.snapshot.remote())
        t = Table(title=f"{spec.name}: {len(refs)} runs on Ray", title_justify="left")
        for col in ("seed", "node", "frames", "fps", "last eval (success)", "status"):
            t.add_column(col, no_wrap=True)
        for seed in sorted(refs.values()):
            r = rows.get(seed, {})
            ev = "-" if r.get("eval_progress") is None else f"{r['eval_progress']:.0f} ({r['eval_success']:.0%})"
            frames = f"{r.get('frames', 0):,}/{spec.budget.frames:,}"
            t.add_row(f"seed {seed}", str(r.get("node", "-")), frames, f"{r.get('fps') or 0:,.0f}", ev,
                      str(r.get("status", "queued")))
        return t

    pending, results, errors = list(refs), [], []
    live = Live(table(), console=console, refresh_per_second=1, transient=False, auto_refresh=False) \
        if console is not None else None
    if live:
        live.start()
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                try:
                    results.append(ray.get(ref))
                except Exception as e:  # a run's own error, raised in its task
                    errors.append(f"seed {refs[ref]}: {type(e).__name__}: {str(e).splitlines()[0]}")
            if live:
                live.update(table(), refresh=True)
    finally:
        if live:
            live.stop()
    return results, errors
