"""Small helpers the benchmarks share (kept out of the test suite's conftest)."""

from __future__ import annotations

from pathlib import Path


def tb_values(run: str | Path, tag: str) -> list[float]:
    """The values of a TensorBoard scalar of a run folder, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(run) / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)]
