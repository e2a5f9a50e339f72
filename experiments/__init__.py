"""The orchestration: experiment files, runs, evaluation, comparison and the command line.

The public API, importable from here (each name is imported on first use)::

    from experiments import load_spec, train
    folders = train(load_spec("configs/experiments/smb_ppo.yaml", ["budget.frames=200000"]))
"""

from __future__ import annotations

from wrappers._lazy import lazy_exports

_EXPORTS = {
    "ExperimentSpec": "experiments.spec", "SpecError": "experiments.spec", "load_spec": "experiments.spec",
    "validate_spec": "experiments.spec", "Run": "experiments.run", "find_runs": "experiments.run",
    "read_history": "experiments.run", "read_scalars": "experiments.run", "train": "experiments.runner",
    "resume": "experiments.runner", "Evaluator": "experiments.evaluate",
    "UserError": "experiments.errors",
}
__all__, __getattr__ = lazy_exports("experiments", _EXPORTS)
