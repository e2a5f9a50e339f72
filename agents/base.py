"""The agent interface every learner implements, its registry, and shared settings types.

The runner and the evaluator never branch on the algorithm: they call :func:`create` / :func:`load` and
the :class:`Agent` / :class:`Policy` protocols. Each algorithm owns a typed settings model (``Spec``), which
``experiments.spec`` composes into the experiment file's ``agent`` section.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

AGENT_FILE = "agent.json"

#: YAML name -> "module:Class". Imported lazily: ``retrodojo roms`` should not pay for importing torch.
ALGOS: dict[str, str] = {
    "ppo": "agents.sb3_agents:PPOAgent",
    "a2c": "agents.sb3_agents:A2CAgent",
    "ppo_lstm": "agents.sb3_agents:PPOLSTMAgent",
    "a2c_lstm": "agents.sb3_agents:A2CLSTMAgent",
    "neat": "agents.neat_agent:NEATAgent",
}


class AgentError(Exception):
    """A saved agent cannot be loaded (missing or corrupt files); the message says what to do."""


@runtime_checkable
class Policy(Protocol):
    """Maps observations (and a recurrent state) to actions, as SB3's ``PolicyPredictor``.

    SB3 models satisfy it as they are; NEAT's champion implements it over a batch of observations.
    """

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """Return (actions for the batch, next recurrent state or None)."""
        ...


class Agent(Protocol):
    """A learner: ``learn`` to a frame budget inside a run, ``save``/``load``, and serve a ``policy``."""

    algo: str

    def learn(self, budget_frames: int, run: Any) -> None:
        """Learn until ``budget_frames`` emulator frames (resuming from ``run``'s latest checkpoint)."""
        ...

    def save(self, path: Path) -> None:
        """Write everything needed to play (into the folder ``path``)."""
        ...

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> Agent:
        """Read an agent written by :meth:`save`."""
        ...

    def policy(self) -> Policy:
        """The current policy (PPO's network, NEAT's champion)."""
        ...


def agent_class(algo: str) -> type:
    """Return the agent class for a YAML algo name."""
    if algo not in ALGOS:
        raise AgentError(f"unknown algo '{algo}' (choices: {', '.join(ALGOS)})")
    module, name = ALGOS[algo].split(":")
    return getattr(importlib.import_module(module), name)


def agent_specs() -> list[type[BaseModel]]:
    """The settings model of every registered algorithm (for the experiment schema)."""
    return [agent_class(a).Spec for a in ALGOS]


def create(spec: BaseModel, env_spec: Any, seed: int) -> Agent:
    """Build a fresh agent from its settings (``spec.algo`` picks the class), an env spec and a seed."""
    return agent_class(spec.algo)(spec, env_spec, seed)


def write_agent_file(path: Path, algo: str, **extra) -> None:
    """Mark a folder as a saved agent of ``algo``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / AGENT_FILE).write_text(json.dumps({"algo": algo, **extra}, indent=2))


def load(path: str | Path, device: str = "auto") -> Agent:
    """Load whichever agent saved the folder ``path`` (it holds an ``agent.json``)."""
    path = Path(path)
    marker = path / AGENT_FILE
    if not marker.is_file():
        raise AgentError(f"{path} holds no saved agent ({AGENT_FILE} is missing). Give a run's final/ folder or a "
                         "checkpoint folder, or a run folder to `retrodojo evaluate`.")
    try:
        algo = json.loads(marker.read_text())["algo"]
    except (ValueError, KeyError) as e:
        raise AgentError(f"{marker} is corrupt ({e}); the run's other checkpoints may still load.") from None
    return agent_class(algo).load(path, device=device)


# --------------------------------------------------------------------------- shared settings types


class Schedule(BaseModel):
    """A learning-rate or clip schedule, as data: ``{schedule: linear, start: 2.5e-4, end: 0.0}``.

    ``linear`` goes from ``start`` to ``end`` over the first ``end_fraction`` of the budget, then stays.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: Literal["linear", "constant"]
    start: float
    end: float = 0.0
    end_fraction: float = Field(default=1.0, gt=0.0, le=1.0)

    def to_sb3(self):
        """The SB3 schedule object (a picklable callable of progress_remaining)."""
        from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule

        if self.schedule == "constant":
            return ConstantSchedule(self.start)
        return LinearSchedule(self.start, self.end, self.end_fraction)


def _schedule_from(value):
    if isinstance(value, bool):
        raise ValueError("a schedule is a number or {schedule: linear|constant, start: ..., end: ...}")
    if isinstance(value, (int, float)):
        return {"schedule": "constant", "start": float(value)}
    if isinstance(value, str):
        raise ValueError(f"schedules are data, not strings: write {{schedule: linear, start: 2.5e-4, end: 0.0}} "
                         f"or a number, not '{value}'")
    return value


#: A number (constant) or a :class:`Schedule` mapping.
ScheduleLike = Annotated[Schedule, BeforeValidator(_schedule_from)]
