"""The orchestration: experiment files, runs, evaluation, comparison and the command line.

The public API, importable from here (each name is imported on first use)::

    from experiments import load_spec, train
    folders = train(load_spec("configs/experiments/smb_ppo.yaml", ["budget.frames=200000"]))
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ExperimentSpec": "experiments.spec", "SpecError": "experiments.spec", "load_spec": "experiments.spec",
    "validate_spec": "experiments.spec", "Run": "experiments.run", "find_runs": "experiments.run",
    "read_history": "experiments.run", "read_scalars": "experiments.run", "train": "experiments.runner",
    "resume": "experiments.runner", "Evaluator": "experiments.evaluate",
    "UserError": "experiments.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")
