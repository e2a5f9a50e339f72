"""Experiment files: YAML -> typed, validated spec; every error in the file reported at once.

An experiment names the game, the start state(s), the game profile, the env settings (the shared
wrapper stack), the agent (its algo and typed hyperparameters), the budget in emulator frames, the seeds,
the evaluation schedule and the checkpoint interval. See ``configs/experiments/*.yaml``.

Errors carry their path in the YAML and a did-you-mean for unknown keys, e.g.
``agent.hyperparams.n_step: unknown key, did you mean n_steps?``, and never a traceback.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.base import agent_specs
from experiments.errors import UserError
from wrappers.factory import EnvSpec


class SpecError(UserError):
    """An experiment file is invalid; ``errors`` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]):
        self.source = source
        self.errors = errors
        super().__init__(f"{source} is not a valid experiment ({len(errors)} problem"
                         f"{'s' if len(errors) != 1 else ''}):\n  " + "\n  ".join(errors))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvSettings(_Strict):
    """The ``env:`` section: the shared wrapper stack (see :class:`wrappers.factory.EnvSpec`)."""

    frame_skip: int = Field(default=4, ge=1, le=64, description="Emulator frames per agent step.")
    max_pool: bool = Field(default=True, description="Max of the last two frames of each window.")
    sticky_prob: float = Field(default=0.0, ge=0.0, lt=1.0, description="Prob. the last action sticks a frame.")
    noop_max: int = Field(default=0, ge=0, description="Random 0..noop_max no-op frames at reset.")
    obs: Literal["pixels", "tiles"] = "pixels"
    resize: tuple[int, int] | None = Field(default=(84, 84), description="[height, width]; null keeps the size.")
    grayscale: bool = True
    frame_stack: int = Field(default=4, ge=1, le=32)
    stuck_frames: int | None = Field(default=600, gt=0, description="End after this many frames without progress.")
    max_frames: int | None = Field(default=18_000, gt=0, description="Episode time limit in frames.")
    actions: str | None = Field(default=None, description="Action set of the profile, or 'buttons'.")
    rewards: dict[str, float] | None = Field(
        default=None, description="Re-weight the profile's reward terms: {term: weight or event value}.")
    reward_scale: float = Field(default=1.0, gt=0)
    reward_clip: float | None = Field(default=None, gt=0)
    fast: bool = True


class Budget(_Strict):
    """The ``budget:`` section."""

    frames: int = Field(gt=0, description="Emulator frames to train for: the common axis of every run.")
    generations: int | None = Field(default=None, gt=0, description="NEAT only: also stop after this many.")
    minutes: float | None = Field(default=None, gt=0, description="Also stop after this much training time "
                                                                   "(summed over resumes).")


class EvalSpec(_Strict):
    """The ``eval:`` section: the protocol every algorithm is judged on, in a separate env."""

    every_frames: int = Field(default=250_000, gt=0, description="Evaluate at 0, every N frames, and at the end.")
    episodes: int = Field(default=5, ge=1, le=1000)
    states: list[str] | None = Field(default=None, description="States cycled through; default: the training ones.")
    deterministic: bool = Field(default=True, description="Greedy actions (NEAT is always deterministic).")


class CheckpointSpec(_Strict):
    """The ``checkpoint:`` section."""

    every_frames: int = Field(default=500_000, gt=0)
    keep: int = Field(default=3, ge=1, description="Newest checkpoints kept on disk.")


#: The ``agent:`` section: one settings model per registered algo, picked by its ``algo`` key.
AgentSpec = Annotated[Union[tuple(agent_specs())], Field(discriminator="algo")]  # noqa: UP007 - built at runtime


class ExperimentSpec(_Strict):
    """A whole experiment file (see ``configs/experiments/*.yaml`` and DESIGN.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Experiment name; runs go in runs/<name>/.")
    description: str = ""
    game: str = Field(description="stable-retro integration, e.g. SuperMarioBros-Nes.")
    state: str | None = Field(default=None, description="Start state (default: the game's).")
    states: list[str] | None = Field(default=None, min_length=1, description="A start-state pool instead.")
    profile: str = Field(description="Game profile: configs/games/<profile>.yaml, or a path.")
    env: EnvSettings = Field(default_factory=EnvSettings)
    agent: AgentSpec
    budget: Budget
    seeds: list[int] = Field(default=[1], min_length=1)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)

    @model_validator(mode="after")
    def _one_state_key(self) -> ExperimentSpec:
        if self.state is not None and self.states is not None:
            raise ValueError("give either state or states, not both")
        return self

    def env_spec(self) -> EnvSpec:
        """The env factory's spec for training."""
        return EnvSpec(game=self.game, state=self.states or self.state, profile=self.profile,
                       **self.env.model_dump())

    def eval_states(self) -> list[str] | None:
        """States the evaluation cycles through."""
        return self.eval.states or self.states or ([self.state] if self.state else None)


# --------------------------------------------------------------------------- YAML loading


class _Loader(yaml.SafeLoader):
    """Safe loader that also reads YAML 1.2 floats such as ``1e6`` and ``3e-4`` (YAML 1.1 reads strings)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML safely; syntax errors become a SpecError with line and column."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(source, [f"YAML syntax error{where}: {problem}"]) from None


def apply_overrides(data: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a copy of ``data``."""
    data = copy.deepcopy(data)
    errors = []
    for item in overrides or []:
        if "=" not in item:
            errors.append(f"--set {item}: expected dotted.key=value")
            continue
        key, raw = item.split("=", 1)
        value = parse_yaml(raw, f"--set {key}") if raw.strip() else ""
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                errors.append(f"--set {key}: '{part}' is not a section")
                break
            node = child
        else:
            node[parts[-1]] = value
    if errors:
        raise SpecError(source, errors)
    return data


def load_spec(path: str | Path, overrides: list[str] | None = None, require_rom: bool = True) -> ExperimentSpec:
    """Load an experiment file, apply ``--set`` overrides, validate everything, report all errors at once."""
    path = Path(path)
    if not path.is_file():
        near = difflib.get_close_matches(path.name, [p.name for p in path.parent.glob("*.yaml")], n=1) \
            if path.parent.is_dir() else []
        hint = f" Did you mean {path.parent / near[0]}?" if near else ""
        raise SpecError(str(path), [f"no such file.{hint}"])
    data = parse_yaml(path.read_text(), str(path))
    return validate_spec(data, str(path), overrides, require_rom)


def validate_spec(data: Any, source: str, overrides: list[str] | None = None,
                  require_rom: bool = True) -> ExperimentSpec:
    """Validate a parsed experiment mapping; raises SpecError listing every problem with its YAML path.

    Game, states, profile and action set are always checked against stable-retro's integration files;
    ``require_rom`` also requires the game's ROM to be imported (off to validate a config for a game whose
    ROM this machine lacks).
    """
    if not isinstance(data, dict):
        raise SpecError(source, ["an experiment is a mapping of keys (name, game, agent, budget, ...)"])
    data = apply_overrides(data, overrides or [], source)
    cls = ExperimentSpec
    errors: list[str] = []
    spec = None
    try:
        spec = cls.model_validate(data)
    except ValidationError as e:
        errors.extend(_format_errors(e, cls, data))
    errors.extend(_semantic_errors(data, require_rom))
    if errors:
        raise SpecError(source, _dedupe(errors))
    return spec


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for i in items:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


# --------------------------------------------------------------------------- error formatting


def _unwrap(tp):
    """The BaseModel classes a field annotation may hold (through Optional, Union, Annotated, list)."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, getattr(__import__("types"), "UnionType", Union), list, dict, tuple):
        out = []
        for a in typing.get_args(tp):
            out.extend(_unwrap(a))
        return out
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _walk(cls: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """Follow a pydantic error location through the models; return the display path and the last model."""
    shown: list[str] = []
    model: type[BaseModel] | None = cls
    i = 0
    while i < len(loc):
        part = loc[i]
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            shown.append(f"[{part}]" if isinstance(part, int) else str(part))
            model = None
            i += 1
            continue
        shown.append(part)
        field = model.model_fields[part]
        candidates = _unwrap(field.annotation)
        if part == "agent":
            candidates = agent_specs()
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        tagged = [c for c in candidates if "algo" in c.model_fields and nxt is not None
                  and nxt in typing.get_args(c.model_fields["algo"].annotation)]
        if tagged:  # a discriminated union puts the tag in the location: skip it
            model = tagged[0]
            i += 2
            continue
        model = candidates[0] if len(candidates) == 1 else None
        i += 1
    return shown, model


def _format_errors(e: ValidationError, cls: type[BaseModel], data: dict) -> list[str]:
    out = []
    for err in e.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            shown, parent = _walk(cls, loc[:-1])
            key = str(loc[-1])
            fields = list(parent.model_fields) if parent else []
            near = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
            hint = f", did you mean {near[0]}?" if near else (f" (known: {', '.join(fields)})" if fields else "")
            out.append(f"{'.'.join([*shown, key])}: unknown key{hint}")
            continue
        shown, _ = _walk(cls, loc)
        where = ".".join(shown) or "(top level)"
        if kind == "union_tag_invalid":
            tag = err.get("input", {}).get("algo") if isinstance(err.get("input"), dict) else None
            algos = [typing.get_args(s.model_fields["algo"].annotation)[0] for s in agent_specs()]
            near = difflib.get_close_matches(str(tag), algos, n=1)
            hint = f", did you mean {near[0]}?" if near else ""
            out.append(f"{where}.algo: unknown algo '{tag}'{hint} (choices: {', '.join(algos)})")
            continue
        if kind == "union_tag_not_found":
            out.append(f"{where}.algo: missing (choices: "
                       f"{', '.join(typing.get_args(s.model_fields['algo'].annotation)[0] for s in agent_specs())})")
            continue
        if kind == "missing":
            out.append(f"{where}: missing (required)")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        shown_value = f" (got {value!r})" if kind not in ("model_type",) and not isinstance(value, dict) else ""
        out.append(f"{where}: {msg}{shown_value}")
    return out


def _semantic_errors(data: dict, require_rom: bool) -> list[str]:
    """Game, ROM, states, profile and action set: checked against stable-retro even if other keys failed."""
    from wrappers import roms
    from wrappers.profile import ProfileError, action_masks, load_profile, with_rewards

    errors: list[str] = []
    game = data.get("game")
    if not isinstance(game, str):
        return errors
    try:
        canonical = roms.canonical_game(game)
    except roms.RomError as e:
        return [f"game: {e}"]
    if require_rom and roms.rom_path(canonical) is None:
        errors.append(f"game: no ROM for {game}. ROMs are copyrighted and not shipped: import your own dump "
                      f"with `retrodojo roms import PATH` (matched by SHA-1); `retrodojo roms list` shows what "
                      f"is playable now.")
    known = roms.states(canonical)
    state_keys = []
    if isinstance(data.get("state"), str):
        state_keys.append(("state", data["state"]))
    if isinstance(data.get("states"), list):
        state_keys += [(f"states[{i}]", s) for i, s in enumerate(data["states"])]
    ev = data.get("eval") if isinstance(data.get("eval"), dict) else {}
    if isinstance(ev.get("states"), list):
        state_keys += [(f"eval.states[{i}]", s) for i, s in enumerate(ev["states"])]
    for key, s in state_keys:
        if s not in known:
            near = difflib.get_close_matches(str(s), known, n=1)
            hint = f" Did you mean {near[0]}?" if near else ""
            errors.append(f"{key}: unknown state '{s}' for {game}.{hint} Its states: {', '.join(known)}")
    profile_name = data.get("profile")
    if isinstance(profile_name, str):
        try:
            profile = load_profile(profile_name, game=canonical)
        except ProfileError as e:
            errors.append(f"profile: {e}")
        else:
            env = data.get("env") if isinstance(data.get("env"), dict) else {}
            actions = env.get("actions")
            if isinstance(actions, str) and actions != "buttons":
                try:
                    action_masks(profile, actions)
                except ProfileError:
                    near = difflib.get_close_matches(actions, list(profile.actions), n=1)
                    hint = f", did you mean {near[0]}?" if near else ""
                    errors.append(f"env.actions: no action set '{actions}' in profile {profile.name}{hint} "
                                  f"(sets: {', '.join(profile.actions)}, or 'buttons')")
            if isinstance(env.get("rewards"), dict):
                try:
                    with_rewards(profile, {k: 0.0 for k in env["rewards"]})
                except ProfileError as e:
                    errors.append(str(e))
            if env.get("obs") == "tiles" and not roms._short(canonical).startswith("SuperMarioBros-Nes"):
                errors.append(f"env.obs: tiles reads Super Mario Bros' RAM and does not work for {game}")
    return errors


def dump_spec(spec: ExperimentSpec) -> str:
    """The resolved spec (defaults filled in) as YAML, for the run folder's config.yaml."""
    data = spec.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)
