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
import json
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from agents.base import agent_class, agent_specs
from experiments.curriculum import CurriculumSettings
from experiments.errors import UserError
from wrappers import configs
from wrappers.errors import HostileDocumentError, load_yaml, read_text_file
from wrappers.settings import EnvSettings, EnvSpec, StrictModel, env_problems, state_problems


class SpecError(UserError):
    """An experiment file is invalid; ``errors`` holds one line per problem."""

    def __init__(self, source: str, errors: list[str]):
        self.source = source
        self.errors = errors
        super().__init__(f"{source} is not a valid experiment ({len(errors)} problem"
                         f"{'s' if len(errors) != 1 else ''}):\n  " + "\n  ".join(errors))


class Budget(StrictModel):
    """The ``budget:`` section."""

    frames: int = Field(gt=0, description="Emulator frames to train for: the common axis of every run.")
    generations: int | None = Field(default=None, gt=0, description="NEAT only: also stop after this many.")
    minutes: float | None = Field(default=None, gt=0, description="Also stop after this much training time "
                                                                   "(summed over resumes).")


class EvalSpec(StrictModel):
    """The ``eval:`` section: the protocol every algorithm is judged on, in a separate env."""

    every_frames: int = Field(default=250_000, gt=0, description="Evaluate at 0, every N frames, and at the end.")
    episodes: int = Field(default=5, ge=1, le=1000)
    states: list[str] | None = Field(default=None, description="States cycled through; default: the training ones.")
    heldout_states: list[str] | None = Field(
        default=None, min_length=1, description="States never trained on, evaluated on the same schedule and "
                                                "logged as eval_heldout/*: overfitting to the training states shows.")
    deterministic: bool | None = Field(
        default=None, description="Greedy actions (NEAT is always deterministic). Default: greedy, but sampled for a "
                                  "fight (a profile with a fight: section): a greedy fighter often presses one "
                                  "button for ever, and the sampled policy is the one that trained.")
    env: dict[str, Any] = Field(
        default_factory=dict, description="Env settings the evaluation plays with instead of training's (env: "
                                          "keys but those that shape the policy's input or output): whole bouts for "
                                          "an agent trained on half ones, sticky actions for one trained without.")
    record_bk2: Literal["none", "best", "all"] = Field(
        default="none", description="Write evaluation episodes as .bk2 movies (eval/bk2/<frames>/): all of them, "
                                    "or the best of each evaluation.")


class CheckpointSpec(StrictModel):
    """The ``checkpoint:`` section."""

    every_frames: int = Field(default=500_000, gt=0)
    keep: int = Field(default=3, ge=1, description="Newest checkpoints kept on disk.")
    keep_best: bool = Field(default=False, description="Also keep the policy of the best evaluation in best/ "
                                                       "(`retrodojo evaluate RUN --checkpoint best`).")
    best_metric: str = Field(default="eval/return", pattern=r"^eval/[A-Za-z0-9_]+$",
                             description="The evaluation figure that decides the best policy (a tie goes to "
                                         "the higher eval/return).")


class TuneParam(StrictModel):
    """One searched setting: ``{float: [low, high]}``, ``{int: [low, high]}`` (``log: true`` searches on a
    log scale, ``step`` quantises), or ``{choice: [a, b, ...]}``."""

    # named by their YAML keys through aliases: fields called float and int would hide the types
    float_range: tuple[float, float] | None = Field(default=None, alias="float")
    int_range: tuple[int, int] | None = Field(default=None, alias="int")
    choice: list[Any] | None = Field(default=None, min_length=1)
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> TuneParam:
        kinds = [k for k in (self.float_range, self.int_range, self.choice) if k is not None]
        if len(kinds) != 1:
            raise ValueError("a searched setting is exactly one of {float: [low, high]}, {int: [low, high]}, "
                             "{choice: [...]}")
        bounds = self.float_range or self.int_range
        if bounds is not None and bounds[0] >= bounds[1]:
            raise ValueError(f"the range {list(bounds)} is empty (low must be below high)")
        if self.log and (bounds is None or bounds[0] <= 0):
            raise ValueError("log: true needs a range of positive numbers")
        return self

    def example(self) -> Any:
        """A value inside the space (its low end, or its first choice), to check the setting exists."""
        return self.choice[0] if self.choice is not None else (self.float_range or self.int_range)[0]


class TuneSpec(StrictModel):
    """The ``tune:`` section: what ``retrodojo tune`` searches and what it maximises.

    Searched settings are dotted paths of the experiment, written directly in the section or under
    ``params``: ``agent.hyperparams.learning_rate: {float: [1.0e-5, 2.0e-3], log: true}``.
    """

    metric: str = Field(default="eval/progress", pattern=r"^eval/[A-Za-z0-9_]+$",
                        description="The evaluation metric a trial is judged (and pruned) on.")
    direction: Literal["maximize", "minimize"] = "maximize"
    params: dict[str, TuneParam] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _dotted_keys_are_params(cls, data: Any) -> Any:
        if isinstance(data, dict):
            dotted = {k: v for k, v in data.items() if isinstance(k, str) and "." in k}
            if dotted:
                data = {k: v for k, v in data.items() if k not in dotted}
                data["params"] = {**(data.get("params") or {}), **dotted}
        return data


#: The ``agent:`` section: one settings model per registered algo, picked by its ``algo`` key.
AgentSpec = Annotated[Union[tuple(agent_specs())], Field(discriminator="algo")]  # noqa: UP007 - built at runtime


class ExperimentSpec(StrictModel):
    """A whole experiment file (see ``configs/experiments/*.yaml`` and DESIGN.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Experiment name; runs go in runs/<name>/.")
    description: str = ""
    game: str = Field(description="stable-retro integration, e.g. SuperMarioBros-Nes.")
    state: str | None = Field(default=None, description="Start state (default: the game's).")
    states: list[str] | dict[str, float] | None = Field(
        default=None, min_length=1, description="A start-state pool instead: a list (drawn uniformly) or "
                                                "{state: weight} (drawn in proportion).")
    profile: str = Field(description="Game profile: a name under configs/games, a YAML path, or 'scenario' "
                                     "(reward and done from the integration's scenario.json).")
    env: EnvSettings = Field(default_factory=EnvSettings)
    agent: AgentSpec
    budget: Budget
    seeds: list[int] = Field(default=[1], min_length=1)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    tune: TuneSpec | None = Field(default=None, description="The search space of `retrodojo tune`.")
    curriculum: CurriculumSettings | None = Field(
        default=None, description="A backward curriculum from the agent's own savestates (experiments/curriculum.py).")

    @model_validator(mode="after")
    def _one_state_key(self) -> ExperimentSpec:
        if self.state is not None and self.states is not None:
            raise ValueError("give either state or states, not both")
        if self.curriculum is not None:
            starts = self.env_spec().states or []
            if len(starts) != 1:
                raise ValueError("a curriculum starts from one real start: give `state: NAME` (not a pool), and "
                                 "the curriculum adds its own states")
            if self.eval.states and list(self.eval.states) != starts:
                raise ValueError(f"a curriculum's evaluation plays the real start {starts[0]}: leave eval.states "
                                 "out (eval.heldout_states judge other states)")
        return self

    def start_state(self) -> str | None:
        """The real start of a one-state experiment (what a curriculum and its evaluation start from)."""
        starts = self.env_spec().states
        return starts[0] if starts and len(starts) == 1 else None

    def env_spec(self) -> EnvSpec:
        """The env factory's spec for training."""
        return EnvSpec.from_settings(self.env, game=self.game, state=self.states or self.state, profile=self.profile)

    def eval_env_spec(self) -> EnvSpec:
        """The env the evaluation plays: training's, with ``eval.env`` applied."""
        return eval_env(self.env_spec(), self.eval.env)[0]

    def eval_states(self) -> list[str] | None:
        """States the evaluation cycles through."""
        return self.eval.states or self.env_spec().states


# --------------------------------------------------------------------------- YAML loading


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML safely and within bounds (:func:`wrappers.errors.load_yaml`); every failure, a syntax error
    or aliases that would expand to gigabytes, becomes a SpecError with its line and column."""
    try:
        return load_yaml(text)
    except HostileDocumentError as e:
        raise SpecError(source, [f"not read: {e}"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError(source, [f"YAML syntax error{where}: {problem}"]) from None
    except ValueError as e:  # a date-like scalar that is no date (2024-13-01) fails in its constructor
        raise SpecError(source, [f"YAML value error: {e}"]) from None
    except RecursionError:
        raise SpecError(source, ["YAML nested too deeply to be an experiment"]) from None


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


def find_experiment(name: str | Path) -> Path:
    """The experiment file ``name`` means: a path as given, else a name under configs/experiments."""
    path = Path(name)
    if path.exists() or configs.looks_like_path(str(name)):
        return path
    found = configs.resolve("experiments", str(name))
    return found if found.is_file() else path


def load_spec(path: str | Path, overrides: list[str] | None = None, require_rom: bool = True) -> ExperimentSpec:
    """Load an experiment file (or a shipped experiment by name), apply ``--set`` overrides, validate
    everything, report all errors at once."""
    path = find_experiment(path)
    what = "Experiment files are YAML files such as configs/experiments/smb_ppo.yaml."
    if path.is_dir():
        hint = (f" It is a run folder: continue it with `retrodojo train --resume {path}`."
                if (path / "meta.json").is_file() else "")
        raise UserError(f"{path} is a folder, not an experiment file.{hint} {what}")
    if not path.exists():
        near = difflib.get_close_matches(path.name, [p.name for p in path.parent.glob("*.yaml")], n=1) \
            if path.parent.is_dir() else []
        names = difflib.get_close_matches(path.stem, configs.available("experiments"), n=1)
        hint = (f" Did you mean {path.parent / near[0]}?" if near else
                f" Did you mean the shipped experiment {names[0]}?" if names else "")
        raise UserError(f"{path}: no such experiment file.{hint} {what} Shipped experiments: "
                        f"{', '.join(configs.available('experiments'))} (give the name alone).")
    text = read_text_file(path, "experiment file", what)
    source = str(path)
    data = parse_yaml(text, source)
    return validate_spec(data, source, overrides, require_rom)


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
    if data.get("tune") is not None:
        try:
            tune = TuneSpec.model_validate(data["tune"])
        except ValidationError:
            tune = None  # reported above
        if tune is not None:
            errors.extend(_tune_errors(data, tune))
    if errors:
        errors = [e.replace("tune.params.", "tune.", 1) if e.startswith("tune.params.") else e for e in errors]
        raise SpecError(source, _dedupe(errors))
    if spec.eval.deterministic is None:
        spec.eval.deterministic = not _is_fight(spec)
    if spec.eval.env:
        try:
            spec.eval_env_spec()
        except UserError as e:
            raise SpecError(source, [f"eval.env: {str(e).removeprefix('retrodojo evaluate --set: ')}"]) from None
    return spec


def eval_env(env_spec: EnvSpec, settings: dict[str, Any] | None) -> tuple[EnvSpec, dict]:
    """``env_spec`` with an ``eval.env`` mapping applied (see :func:`experiments.evaluate.override_env`)."""
    from experiments.evaluate import override_env

    if not settings:
        return env_spec, {}
    return override_env(env_spec, [f"env.{k}={json.dumps(v)}" for k, v in settings.items()])


def _is_fight(spec: ExperimentSpec) -> bool:
    """Whether the experiment's profile describes a fight (its evaluation then samples actions)."""
    from wrappers.profile import load_profile

    if spec.profile == "scenario":
        return False
    try:
        return load_profile(spec.profile, game=spec.game).fight is not None
    except Exception:  # reported by the semantic checks already; an unreadable profile is no fight
        return False


def _tune_errors(data: dict, tune: TuneSpec) -> list[str]:
    """Each searched setting must be a setting of the experiment: set it to a value of its space and
    validate, reporting problems under ``tune.<path>``."""
    errors = []
    for key, param in tune.params.items():
        if key.split(".")[0] in ("tune", "name", "seeds"):
            errors.append(f"tune.{key}: not a setting a trial can change")
            continue
        try:
            trial = apply_overrides(data, [f"{key}={yaml.safe_dump(param.example(), default_flow_style=True)}"])
        except SpecError as e:
            errors += [f"tune.{line.removeprefix('--set ')}" for line in e.errors]
            continue
        trial.pop("tune", None)
        try:
            ExperimentSpec.model_validate(trial)
        except ValidationError as e:
            errors += [f"tune.{line}" for line in _format_errors(e, ExperimentSpec, trial)
                       if line.split(":")[0] == key or line.startswith(f"{key}.")
                       or key.startswith(line.split(":")[0])]
    return errors


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
    keyed = False
    i = 0
    while i < len(loc):
        part = loc[i]
        if keyed:  # a key of a dict of models (tune.params.<setting>): the model stays the value's
            shown.append(str(part))
            keyed = False
            i += 1
            continue
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            shown.append(f"[{part}]" if isinstance(part, int) else str(part))
            model = None
            i += 1
            continue
        shown.append(part)
        field = model.model_fields[part]
        candidates = _unwrap(field.annotation)
        keyed = typing.get_origin(field.annotation) is dict and len(candidates) == 1
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
            fields = [f.alias or n for n, f in parent.model_fields.items()] if parent else []
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
    """Game, ROM, states, profile, action set and the agent's own files: checked even if other keys failed."""
    env = data.get("env") if isinstance(data.get("env"), dict) else {}
    pool = isinstance(data.get("states"), (list, dict))
    env_data = {**env, "game": data.get("game"), "profile": data.get("profile"),
                "state": data.get("states") if pool else data.get("state")}
    errors = []
    for key, msg in env_problems(env_data, require_rom=require_rom):
        if key.startswith("state"):
            key = key.replace("state", "states", 1) if pool else key
        elif key not in ("game", "profile"):
            key = f"env.{key}"
        errors.append(f"{key}: {msg}")
    ev = data.get("eval") if isinstance(data.get("eval"), dict) else {}
    game = data.get("game")
    for field in ("states", "heldout_states"):
        if isinstance(ev.get(field), list) and isinstance(game, str) and not any(e.startswith("game:") for e in errors):
            errors += [f"{key}: {msg}" for key, msg in state_problems(_canonical(game), ev[field], f"eval.{field}")]
    agent = data.get("agent")
    if isinstance(agent, dict) and isinstance(agent.get("algo"), str):
        try:
            cls = agent_class(agent["algo"])
            spec = cls.Spec.model_validate(agent)
        except (UserError, ValidationError):
            return errors  # the model reports these
        try:  # with the game, start states and profile where they are valid: an agent may check against them
            settings = EnvSpec.model_validate(env_data)
        except ValidationError:
            try:
                settings = EnvSettings.model_validate(env)
            except ValidationError:
                settings = None
        problems = getattr(cls, "problems", None)
        errors += [f"agent.{key}: {msg}" for key, msg in (problems(spec, settings) if problems else [])]
    return errors


def _canonical(game: str) -> str:
    from wrappers import roms

    return roms.canonical_game(game)


def dump_spec(spec: ExperimentSpec) -> str:
    """The resolved spec (defaults filled in) as YAML, for the run folder's config.yaml."""
    data = spec.model_dump(mode="json", by_alias=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)
