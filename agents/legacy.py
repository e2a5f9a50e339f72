"""Reading the pickles of earlier versions: only on ``--trust-pickles``, so nothing already trained is lost.

This is the one module that unpickles. Every function takes ``trust`` and refuses (with
:func:`agents.safe_io.legacy_refusal`'s paragraph) unless the user passed ``--trust-pickles``: unpickling runs
whatever code the file names. ``retrodojo convert RUN --trust-pickles`` reads them once through here and
writes the safe formats, after which the folder loads without the flag.
"""

from __future__ import annotations

import gzip
import pickle
import random
from pathlib import Path

import numpy as np

from agents.errors import AgentError
from agents.safe_io import legacy_refusal


def _unpickle(path: Path, trust: bool, gz: bool = False):
    if not trust:
        raise legacy_refusal(path.parent, [path.name])
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                return pickle.load(f)  # noqa: S301 - only with --trust-pickles
        return pickle.loads(path.read_bytes())  # noqa: S301 - only with --trust-pickles
    except Exception as e:
        raise AgentError(f"{path} is an unreadable pickle of an earlier retrodojo ({type(e).__name__}: {e}).") \
            from None


def neat_champion(path: Path, trust: bool):
    """The genome of an old ``champion.pkl``."""
    return _unpickle(path, trust)


def neat_population(path: Path, trust: bool) -> dict:
    """The state dict of an old ``population.pkl.gz`` (config, population, species, counters, RNG states)."""
    data = _unpickle(path, trust, gz=True)
    if not isinstance(data, dict) or "population" not in data:
        raise AgentError(f"{path} is not a NEAT checkpoint of an earlier retrodojo.")
    return data


def restore_rng(path: Path, trust: bool) -> None:
    """Set the global generators from an old ``rng.pkl``."""
    import torch

    state = _unpickle(path, trust)
    try:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    except Exception as e:
        raise AgentError(f"{path} is not a generator state ({type(e).__name__}: {e}).") from None


def sb3_model(model_class, path: Path, trust: bool, env=None, device: str = "auto"):
    """An SB3 model from an old ``model.zip``, through SB3's own loader (it unpickles the zip's data)."""
    if not trust:
        raise legacy_refusal(path.parent, [path.name])
    try:
        return model_class.load(path, env=env, device=device)
    except Exception as e:  # a truncated zip raises zipfile/pickle/torch errors alike
        raise AgentError(f"{path} is unreadable ({type(e).__name__}: {e}).") from None
