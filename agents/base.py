"""The agent interface every learner implements, its registry, and shared settings types.

The runner and the evaluator never branch on the algorithm: they call :func:`create` / :func:`load` and
the :class:`Agent` / :class:`Policy` protocols. Each algorithm owns a typed settings model (``Spec``), which
``experiments.spec`` composes into the experiment file's ``agent`` section.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from agents.errors import AgentError  # re-exported: the agents' error, raised and caught by that name
from wrappers.errors import read_json_file
from wrappers.settings import EnvSpec

AGENT_FILE = "agent.json"

#: YAML name -> "module:Class". Imported lazily: ``retrodojo roms`` should not pay for importing torch.
ALGOS: dict[str, str] = {
    "ppo": "agents.sb3_agents:PPOAgent",
    "a2c": "agents.sb3_agents:A2CAgent",
    "ppo_lstm": "agents.sb3_agents:PPOLSTMAgent",
    "a2c_lstm": "agents.sb3_agents:A2CLSTMAgent",
    "neat": "agents.neat_agent:NEATAgent",
}


class WorkersLost(RuntimeError):
    """The processes an agent plays through are gone and none can be started again (a lost Ray node, a
    cluster without room): the run stops with its last checkpoint, like a run whose env worker died."""


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
    """A learner: ``learn`` to a frame budget inside a run, checkpoint, ``save``/``load``, serve a ``policy``.

    ``Spec`` is the algorithm's settings model (the experiment file's ``agent:`` section); an instance
    holds its ``spec``, the ``env_spec`` of the game it plays and its ``seed``. A class may also define
    ``problems(spec, env_settings) -> [(key, message)]`` (a classmethod) to check its settings against the
    env and the files they name before a run folder is made (NEAT's config, a policy that cannot read
    the observation).
    """

    algo: ClassVar[str]
    Spec: ClassVar[type[BaseModel]]
    spec: BaseModel
    env_spec: EnvSpec
    seed: int

    def learn(self, budget_frames: int, run: RunContext) -> None:
        """Learn until ``budget_frames`` emulator frames (resuming from ``run``'s latest checkpoint).

        Call ``run.begin`` once learning starts, ``run.record`` as episodes end, ``run.tick`` at every point
        where the agent's state is whole (it evaluates, then checkpoints, when due) and stop when it
        returns False, and ``run.finish`` at the end.
        """
        ...

    def write_checkpoint(self, folder: Path) -> None:
        """Write everything resume needs (weights, optimizer, counters, RNG states) into ``folder``."""
        ...

    def save(self, path: Path, optimizer: bool = False, half: bool = False) -> None:
        """Write everything needed to play into the folder ``path``, in the safe formats: the policy alone
        (``optimizer`` adds what training needs; ``half`` stores weights in 16 bits where the agent has any)."""
        ...

    @classmethod
    def load(cls, path: Path, device: str = "auto", trust_pickles: bool = False) -> Agent:
        """Read an agent written by :meth:`save` (an earlier version's pickles only with ``trust_pickles``)."""
        ...

    def policy(self) -> Policy:
        """The current policy (PPO's network, NEAT's champion)."""
        ...


@runtime_checkable
class RunContext(Protocol):
    """What an agent may use of the run it learns in (:class:`experiments.run.Run` implements it).

    The run owns the choreography every learner shares: :meth:`tick` evaluates when an evaluation is
    due and only then checkpoints, so a checkpoint covers everything logged up to its frame, and
    :meth:`finish` evaluates the final policy before the last checkpoint. Agents never order these
    themselves. Every ``frames`` is emulator frames, the common x-axis.
    """

    dir: Path
    seed: int
    resumes: int
    trust_pickles: bool  # the user trusts this run's pickled checkpoints (an earlier version's)
    start_frames: int
    spec: Any
    env_spec: EnvSpec
    stop_requested: bool
    last_eval_seconds: float
    watch: Any  # a wrappers.tap.FrameFeed a window reads (train --watch), or None: show env 0 / NEAT's first worker

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder to resume from, or None for a fresh run."""
        ...

    def begin(self, frames: int, agent: Agent) -> None:
        """Learning starts (a fresh run is evaluated at frame 0, for the curves' first point)."""
        ...

    def record(self, frames: int, episodes: Sequence[dict] = (), observe: bool = True) -> None:
        """Episodes that ended while learning (``train/*``, ``reward/*``), and progress for the bar; those
        from a curriculum's states feed the curriculum (unless ``observe`` is false)."""
        ...

    def attach_envs(self, venv: Any) -> None:
        """The training vec env, whose start-state pool a curriculum moves (``env_method("set_pool")``)."""
        ...

    def start_pool(self) -> tuple[dict[str, bytes], dict[str, float], dict[str, float], dict] | None:
        """A curriculum's start states now, their weights (with the real start), offsets and the actions
        taken before them, or None."""
        ...

    def observe_curriculum(self, frames: int, episodes: Sequence[dict]) -> None:
        """Episodes from a curriculum's states that decide its backward step (NEAT: its champion's)."""
        ...

    def tick(self, frames: int, agent: Agent, checkpoint: bool = False, generation: int | None = None) -> bool:
        """At a point where the agent is whole: evaluate if due, then checkpoint if due (or if asked).

        ``generation`` (NEAT) lets a generations budget drive the progress bar.

        Returns:
            False when the agent must stop (a signal, or the time budget ran out).
        """
        ...

    def checkpoint(self, frames: int, agent: Agent) -> Path:
        """Checkpoint now (e.g. before giving up on a dead env worker)."""
        ...

    def record_bk2(self, policy: Policy, name: str) -> Path | None:
        """Play one evaluation episode as a .bk2 movie named ``name`` (a new NEAT champion, say)."""
        ...

    def finish(self, frames: int, agent: Agent) -> None:
        """Learning ended: evaluate the final policy (unless stopping on request), then checkpoint."""
        ...

    def scalar(self, tag: str, value: float, frames: int) -> None:
        """Write one TensorBoard scalar at ``frames``."""
        ...

    def hyperparameters(self, table: dict) -> None:
        """Write the resolved hyperparameters once per run."""
        ...

    def warn(self, message: str) -> None:
        """A warning for the user, kept in meta.json."""
        ...

    def end(self, status: str, message: str) -> None:
        """End the run early for a reason of the agent's own (NEAT: extinction, goal reached)."""
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


def create(spec: BaseModel, env_spec: EnvSpec, seed: int) -> Agent:
    """Build a fresh agent from its settings (``spec.algo`` picks the class), an env spec and a seed."""
    return agent_class(spec.algo)(spec, env_spec, seed)


def write_agent_file(path: Path, algo: str, **extra) -> None:
    """Mark a folder as a saved agent of ``algo``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / AGENT_FILE).write_text(json.dumps({"algo": algo, **extra}, indent=2))


def read_agent_file(path: str | Path) -> dict:
    """The ``agent.json`` of a saved agent folder, checked to name a registered algo."""
    path = Path(path)
    marker = path / AGENT_FILE
    if not marker.is_file():
        raise AgentError(f"{path} holds no saved agent ({AGENT_FILE} is missing). Give a run's final/ folder or a "
                         "checkpoint folder, or a run folder to `retrodojo evaluate`.")
    fix = "The run's other checkpoints may still load; delete this folder to resume from the one before it."
    meta = read_json_file(marker, "saved agent's agent.json", fix, error=AgentError)
    if not isinstance(meta, dict) or not isinstance(meta.get("algo"), str) or meta["algo"] not in ALGOS:
        raise AgentError(f"{marker} does not name a known algo (one of {', '.join(ALGOS)}). {fix}")
    return meta


def load(path: str | Path, device: str = "auto", trust_pickles: bool = False) -> Agent:
    """Load whichever agent saved the folder ``path`` (it holds an ``agent.json``).

    Only the safe formats are read (:mod:`agents.safe_io`); a folder an earlier version saved as pickles is
    refused unless ``trust_pickles`` (the user's ``--trust-pickles``) says its source is trusted.

    Raises:
        AgentError: the folder is no saved agent, one of its files is missing or corrupt, or it holds pickles.
    """
    from agents import safe_io

    path = Path(path)
    meta = read_agent_file(path)
    algo = meta["algo"]
    fmt = meta.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > safe_io.FORMAT_VERSION:
        raise AgentError(f"{path} was saved in format {fmt}, newer than this retrodojo reads "
                         f"({safe_io.FORMAT_VERSION}); update retrodojo to load it.")
    old = safe_io.legacy_files(path)
    if old and not trust_pickles:
        raise safe_io.legacy_refusal(path, old)
    try:
        return agent_class(algo).load(path, device=device, trust_pickles=trust_pickles)
    except AgentError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, EOFError, OSError) as e:
        # a hand-edited or half-written agent.json (pydantic's ValidationError is a ValueError)
        raise AgentError(f"{path} holds a saved {algo} agent that cannot be read ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}). A run's other checkpoints may still "
                         "load.") from None


# --------------------------------------------------------------------------- shared settings types


class Schedule(BaseModel):
    """A learning-rate or clip schedule, as data: ``{schedule: linear, start: 2.5e-4, end: 0.0}``.

    ``linear`` goes from ``start`` to ``end`` over the first ``end_fraction`` of the budget, then stays.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
