"""An SB3 model as safetensors and JSON: what a saved PPO/A2C agent is on disk (docs/formats.md).

SB3's own ``model.zip`` carries cloudpickled objects (spaces, schedules, policy classes) that its loader
unpickles, so retrodojo writes its own three files instead and builds the model from its spec:

- ``policy.safetensors``: the policy's ``state_dict``, each shared tensor once (the actor's and critic's
  feature extractors alias the shared one), float32, or float16 for a small final policy;
- ``optimizer.safetensors`` (checkpoints only): the optimizer's per-parameter tensors as ``<index>.<name>``;
- ``model.json`` (``retrodojo-sb3-model``): the algo and policy names, the observation and action spaces as
  data, ``n_envs``, the counters SB3 keeps between ``learn`` calls (``num_timesteps``, ``_n_updates``,
  ``_episode_num``, ``_current_progress_remaining``), the episode buffers the rollout logs average over, and
  the optimizer's param groups and non-tensor state.

Schedules and the policy class are not stored at all: they come from the experiment's settings, as when
the model was first made. Measured on the Nature-CNN PPO policy (docs/formats.md): model.zip 20.5 MB and
0.6 s to load; policy + optimizer safetensors 20.3 MB read in 1 ms, the policy alone 6.8 MB, 3.4 MB in
float16.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from agents.errors import AgentError
from agents.safe_io import FORMAT_VERSION, Fields, is_int, is_number, load_tensors, save_tensors, write_json

MODEL_FORMAT = "retrodojo-sb3-model"
MODEL_FILE = "model.json"
POLICY_FILE = "policy.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
#: The dtypes a space may declare; an observation larger than this many values is no game's (a full RGB
#: SNES frame stacked 32 times is 5.9 M), and an MLP reads at most this many (tiles, RAM values).
DTYPES = ("uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool")
MAX_SPACE_VALUES = 8_000_000
MAX_MLP_INPUTS = 65_536
COUNTERS = ("num_timesteps", "_n_updates", "_episode_num")


# --------------------------------------------------------------------------- spaces


def _bound(values: np.ndarray) -> Any:
    """A Box bound: one number when all agree (pixels: 0 and 255), else the flat list."""
    flat = values.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return flat[0].item()
    return flat.tolist()


def space_to_json(space: spaces.Space) -> dict:
    """A gymnasium space as data."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bound(space.low), "high": _bound(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise TypeError(f"retrodojo does not save {type(space).__name__} spaces")


def space_from_json(data: Any, path: Path, where: str, depth: int = 0,
                    max_values: int = MAX_SPACE_VALUES) -> spaces.Space:
    """The space :func:`space_to_json` wrote, of at most ``max_values`` values; anything else is an
    AgentError, raised before any array is made."""
    f = Fields(data, path, where)
    kind = f.str("type")
    if kind == "Dict" and depth == 0:
        sub = f.sub("spaces")
        if not sub.data or len(sub.data) > 16:
            f.fail("spaces", "is not 1 to 16 named spaces")
        return spaces.Dict({str(k): space_from_json(v, path, f"{where}.spaces.{k}", 1) for k, v in sub.data.items()})
    if kind == "Discrete":
        n = f.int("n", lo=1)
        return spaces.Discrete(n, start=f.int("start"))
    if kind in ("MultiBinary", "MultiDiscrete"):
        key = "n" if kind == "MultiBinary" else "nvec"
        value = f.get(key, lambda v: (is_int(v) and 1 <= v <= 4096) or (
            isinstance(v, list) and 0 < len(v) <= 4096 and all(is_int(x) and 1 <= x <= 2**31 for x in v)),
            "a positive size or list of sizes")
        return spaces.MultiBinary(value) if kind == "MultiBinary" else spaces.MultiDiscrete(value)
    if kind != "Box":
        f.fail("type", "is not a space retrodojo saves (Box, Discrete, MultiBinary, MultiDiscrete, Dict)")
    shape = f.get("shape", lambda v: isinstance(v, list) and 0 < len(v) <= 4 and all(is_int(x) and x >= 1 for x in v),
                  "a list of 1 to 4 positive sizes")
    size = math.prod(shape)
    if size > max_values:
        f.fail("shape", f"holds more than {max_values:,} values" + (
            " (the most an MLP policy reads)" if max_values == MAX_MLP_INPUTS else ""))
    dtype = f.get("dtype", lambda v: v in DTYPES, f"one of {', '.join(DTYPES)}")

    def bound(key: str) -> np.ndarray:
        value = f.get(key, lambda v: (is_number(v) and not math.isnan(v)) or (
            isinstance(v, list) and len(v) == size and all(is_number(x) and not math.isnan(x) for x in v)),
            f"a number or a list of {size:,} numbers")
        return np.full(shape, value, dtype=np.float64) if not isinstance(value, list) else \
            np.asarray(value, dtype=np.float64).reshape(shape)

    low, high = bound("low"), bound("high")
    if np.any(low > high):
        f.fail("low", "exceeds high")
    try:
        return spaces.Box(low.astype(dtype), high.astype(dtype), shape=tuple(shape), dtype=dtype)
    except (ValueError, TypeError, OverflowError) as e:
        f.fail("", f"is not a valid Box ({e})")


# --------------------------------------------------------------------------- tensors of the policy and optimizer


def unique_names(module: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The module's state as ``{name: tensor}`` with each shared tensor once, and every name -> the name
    it is stored under (SB3's actor and critic feature extractors alias the shared one)."""
    stored: dict[str, torch.Tensor] = {}
    canonical: dict[str, str] = {}
    by_storage: dict[tuple, str] = {}
    for name, tensor in module.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype) if tensor.numel() else (name,)
        if key not in by_storage:
            by_storage[key] = name
            stored[name] = tensor
        canonical[name] = by_storage[key]
    return stored, canonical


def read_policy(policy: torch.nn.Module, path: Path) -> None:
    """Fill a freshly built policy from ``policy.safetensors``: the same names and shapes, or an error."""
    tensors = load_tensors(path, "policy weights file")
    stored, canonical = unique_names(policy)
    if set(tensors) != set(stored):
        extra, missing = sorted(set(tensors) - set(stored)), sorted(set(stored) - set(tensors))
        raise AgentError(f"{path} does not hold this policy's weights (unexpected: {', '.join(extra[:3]) or '-'}; "
                         f"missing: {', '.join(missing[:3]) or '-'}): it was saved with other settings.")
    full = {}
    for name, store in canonical.items():
        want, got = stored[store], tensors[store]
        if got.shape != want.shape or got.is_floating_point() != want.is_floating_point():
            raise AgentError(f"{path}: {store} has shape {tuple(got.shape)} ({got.dtype}), the policy's is "
                             f"{tuple(want.shape)} ({want.dtype}): it was saved with other settings.")
        full[name] = got.to(want.dtype)
    policy.load_state_dict(full, strict=True)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict, list]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, scalars, groups


def read_optimizer(optimizer: torch.optim.Optimizer, top: Fields, path: Path) -> None:
    """Fill a fresh optimizer from ``optimizer.safetensors`` and model.json's ``optimizer`` section."""
    opt = top.sub("optimizer")
    fresh = optimizer.state_dict()
    groups = opt.list("param_groups", max_len=64)
    if len(groups) != len(fresh["param_groups"]):
        opt.fail("param_groups", f"has {len(groups)} groups, the optimizer {len(fresh['param_groups'])}")
    restored = []
    for i, (saved, want) in enumerate(zip(groups, fresh["param_groups"])):
        g = Fields(saved, top.path, f"optimizer.param_groups[{i}]")
        if set(g.data) != set(want):
            g.fail("", f"has other settings than a {type(optimizer).__name__} group ({', '.join(sorted(want))})")
        group = {}
        for key, value in want.items():
            got = g.data[key]
            if key == "params":
                ok = got == value
            elif isinstance(value, bool) or value is None:
                ok = got is None or isinstance(got, bool) or (value is None and is_number(got))
            elif isinstance(value, (int, float)):
                ok = is_number(got) and math.isfinite(got)
            elif isinstance(value, (tuple, list)):
                ok = isinstance(got, list) and len(got) == len(value) and all(is_number(x) for x in got)
                got = tuple(got) if ok and isinstance(value, tuple) else got
            else:
                ok = type(got) is type(value)
            if not ok:
                g.fail(key, f"is not what a {type(optimizer).__name__} takes (got {str(got)[:40]!r})")
            group[key] = got
        restored.append(group)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    tensors = load_tensors(path, "optimizer state file")
    scalars = opt.sub("state")
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        index, _, key = name.partition(".")
        if not index.isdigit() or int(index) >= len(params) or not key:
            raise AgentError(f"{path} holds '{name}', which names no parameter of the optimizer.")
        if tensor.dim() and tensor.shape != params[int(index)].shape:
            raise AgentError(f"{path}: {name} has shape {tuple(tensor.shape)}, its parameter "
                             f"{tuple(params[int(index)].shape)}.")
        state.setdefault(int(index), {})[key] = tensor
    for index, values in scalars.data.items():
        if not (index.isdigit() and int(index) < len(params) and isinstance(values, dict)
                and all(isinstance(v, (bool, int, float)) for v in values.values())):
            scalars.fail(index, "is not a parameter's numbers")
        state.setdefault(int(index), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": restored})
    except (ValueError, KeyError, RuntimeError, TypeError) as e:
        raise AgentError(f"{path} does not fit the optimizer ({type(e).__name__}: {e}).") from None


# --------------------------------------------------------------------------- counters and the whole model


def _episodes(buffer) -> list:
    """The episode buffer as data: SB3 logs the means of r and l from it (t is the episode's end time)."""
    return [{k: float(e[k]) for k in ("r", "l", "t") if k in e} for e in buffer or []]


def activation_name(policy) -> str:
    """The hidden layers' activation of an SB3 policy, by name (``relu``, ``tanh``): model.json keeps it,
    since a multi-input policy's default changed from SB3's tanh to ReLU and the weights alone cannot
    tell."""
    return getattr(policy, "activation_fn", torch.nn.Tanh).__name__.lower()


def write_model(model, folder: Path, algo: str, policy: str, optimizer: bool = False, half: bool = False) -> None:
    """Write an SB3 model's policy (and optimizer) as safetensors, and model.json, into ``folder``."""
    stored, _ = unique_names(model.policy)
    if half:
        stored = {k: v.half() if v.is_floating_point() else v for k, v in stored.items()}
    meta = {"format": "retrodojo-sb3-policy", "version": str(FORMAT_VERSION)}
    save_tensors(folder / POLICY_FILE, stored, metadata=meta)
    doc = {"format": MODEL_FORMAT, "version": FORMAT_VERSION, "algo": algo, "policy": policy,
           "weights": "float16" if half else "float32",
           "observation_space": space_to_json(model.observation_space),
           "action_space": space_to_json(model.action_space), "n_envs": int(model.n_envs),
           "activation": activation_name(model.policy),
           **{k: int(getattr(model, k)) for k in COUNTERS},
           "_current_progress_remaining": float(model._current_progress_remaining),
           "ep_info_buffer": _episodes(model.ep_info_buffer),
           "ep_success_buffer": [bool(x) for x in model.ep_success_buffer or []]}
    if optimizer:
        tensors, scalars, groups = _optimizer_tensors(model.policy.optimizer)
        save_tensors(folder / OPTIMIZER_FILE, tensors, metadata=meta)
        doc["optimizer"] = {"param_groups": groups, "state": scalars}
    write_json(folder / MODEL_FILE, doc)


def read_counters(model, top: Fields) -> None:
    """Set SB3's counters and episode buffers from model.json, checked."""
    for key in COUNTERS:
        setattr(model, key, top.int(key, lo=0))
    # below 0 when the last rollout overshot the budget: SB3 computes it as 1 - steps / budget
    model._current_progress_remaining = top.float("_current_progress_remaining")
    window = model._stats_window_size
    episodes = top.list("ep_info_buffer", max_len=100_000)
    for i, e in enumerate(episodes):
        if not (isinstance(e, dict) and all(is_number(e.get(k)) and math.isfinite(e[k]) for k in ("r", "l"))):
            top.fail(f"ep_info_buffer[{i}]", "is not an episode record with numbers r and l")
    successes = top.list("ep_success_buffer", max_len=100_000)
    if not all(isinstance(x, bool) for x in successes):
        top.fail("ep_success_buffer", "holds something other than true and false")
    model.ep_info_buffer = deque(episodes, maxlen=window)
    model.ep_success_buffer = deque(successes, maxlen=window)
