"""Game profiles: what a game means for learning, as data (``configs/games/*.yaml``).

A profile names extra RAM variables (merged over the integration's ``data.json``), derived variables as
weighted sums, what ``progress`` means, reward terms, done rules, a success rule and named action sets.
Nothing in a profile is evaluated as code: conditions and sums are data that :class:`GameTracker` interprets.

Example profile (abridged ``configs/games/smb.yaml``)::

    game: SuperMarioBros-Nes
    variables:
      player_state: {address: 0x000E, type: "|u1"}
    derived:
      x: {sum: {xscrollHi: 256, xscrollLo: 1}}
    progress: x
    rewards:
      x: {delta: x, weight: 1.0}
    done:
      life_lost: {var: lives, op: decreased}
    success: {var: float_state, op: eq, value: 3}
    actions:
      right_only: [[], [RIGHT], [RIGHT, A]]
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from wrappers import configs
from wrappers.errors import UserError, read_text_file
from wrappers.settings import StrictModel

#: The profile name that needs no file: reward and done from the integration's own scenario.json.
SCENARIO = "scenario"

#: stable-retro variable types: byte order (``<``, ``>``, ``=``, ``|``), kind (signed, unsigned,
#: BCD ``d``, decimal nibbles ``n``) and size in bytes.
TYPE_RE = re.compile(r"^[<>=|][iudn][1-8]$")

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "increased", "decreased", "changed"]


class ProfileError(UserError):
    """A game profile is invalid; the message names the file and every bad key."""


class _Model(StrictModel):
    model_config = ConfigDict(frozen=True)


class Variable(_Model):
    """A RAM variable in stable-retro's ``data.json`` form."""

    address: int = Field(ge=0, description="Address as in data.json (NES CPU address, Genesis 0xFFxxxx).")
    type: str = Field(description="stable-retro type, e.g. '|u1', '>u2', '>n6' (BCD nibbles), '|d1'.")
    mask: int | None = Field(default=None, ge=0, description="Optional bit mask applied to the value.")

    @field_validator("type")
    @classmethod
    def _check_type(cls, v: str) -> str:
        if not TYPE_RE.match(v):
            raise ValueError(
                f"bad address type '{v}': expected byte order (< > = |), kind (i u d n) and size 1-8, e.g. '|u1'"
            )
        return v


class Derived(_Model):
    """A derived variable: ``offset + sum(weight * variable)``. SMB's x is ``256*xscrollHi + xscrollLo``."""

    sum: dict[str, float] = Field(min_length=1)
    offset: float = 0.0


class Condition(_Model):
    """A predicate on variables: ``{var, op, value|ref}``, ``{all: [...]}``, ``{any: [...]}``, or
    ``{scenario: true}`` (the integration's own scenario.json says done).

    ``increased``/``decreased``/``changed`` compare with the value at the previous agent step.
    ``ref`` names a variable to compare with instead of a constant ``value``.
    """

    var: str | None = None
    op: Op | None = None
    value: float | list[float] | None = None
    ref: str | None = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    scenario: bool | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [self.var is not None, self.all is not None, self.any is not None, self.scenario is not None]
        if sum(forms) != 1:
            raise ValueError("a condition is exactly one of {var, op, value|ref}, {all: [...]}, {any: [...]}, "
                             "{scenario: true}")
        if self.var is not None:
            if self.op is None:
                raise ValueError(f"condition on '{self.var}' needs an op")
            change = self.op in ("increased", "decreased", "changed")
            if change and (self.value is not None or self.ref is not None):
                raise ValueError(f"op '{self.op}' takes no value or ref")
            if not change and (self.value is None) == (self.ref is None):
                raise ValueError(f"op '{self.op}' needs exactly one of value or ref")
            if self.op in ("in", "not_in") and not isinstance(self.value, list):
                raise ValueError(f"op '{self.op}' needs a list value")
        return self

    def variables(self) -> set[str]:
        """Return every variable name the condition reads."""
        if self.all is not None or self.any is not None:
            return set().union(*(c.variables() for c in (self.all or self.any or [])))
        return {v for v in (self.var, self.ref) if v}

    def uses_scenario(self) -> bool:
        """Whether evaluating this condition needs stable-retro's scenario done flag."""
        if self.scenario:
            return True
        return any(c.uses_scenario() for c in (self.all or self.any or []))


class RewardTerm(_Model):
    """One reward term, logged on its own as ``reward/<name>``.

    Exactly one source: ``delta`` (change of a variable since the last agent step), ``gain`` (increase of
    the variable's running maximum: never pays twice for the same ground, so rocking back and forth earns
    nothing), ``event`` (a one-off ``value`` when a done rule or ``success`` fires) or ``scenario`` (the
    integration's own scenario.json reward). ``weight`` scales it and ``clip`` bounds it per agent step.
    """

    delta: str | None = None
    gain: str | None = None
    event: str | None = None
    scenario: bool | None = None
    weight: float = 1.0
    value: float | None = None
    clip: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RewardTerm:
        if sum(x is not None for x in (self.delta, self.gain, self.event, self.scenario)) != 1:
            raise ValueError("a reward term has exactly one of delta, gain, event, scenario")
        if (self.event is None) != (self.value is None):
            raise ValueError("'value' goes with 'event' (and only with it)")
        if self.clip is not None and self.clip[0] > self.clip[1]:
            raise ValueError(f"clip {list(self.clip)} has low > high")
        return self


class Profile(_Model):
    """A game profile (see the module docstring); load it with :func:`load_profile`."""

    name: str = ""
    game: str
    description: str = ""
    variables: dict[str, Variable] = Field(default_factory=dict)
    derived: dict[str, Derived] = Field(default_factory=dict)
    progress: str | None = Field(
        default=None, description="Variable whose episode maximum is progress; None: the return so far.")
    target: str | float | None = Field(default=None, description="Progress value (or variable) of the goal.")
    rewards: dict[str, RewardTerm] = Field(min_length=1)
    done: dict[str, Condition] = Field(default_factory=dict)
    success: Condition | None = None
    end_on_success: bool = True
    actions: dict[str, list[list[str]]] = Field(default_factory=dict)
    default_actions: str | None = None
    path: str = ""

    def needs_scenario(self) -> bool:
        """Whether any term or rule reads stable-retro's scenario (forcing a RAM update per agent step)."""
        conds = [*self.done.values(), *([self.success] if self.success else [])]
        return any(t.scenario for t in self.rewards.values()) or any(c.uses_scenario() for c in conds)


Condition.model_rebuild()


# --------------------------------------------------------------------------- loading and validation


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-"))


def profile_path(name: str) -> Path:
    """Resolve a profile name (``smb``) or path to its YAML file (see :mod:`wrappers.configs`)."""
    return configs.resolve("games", name)


def available_profiles() -> list[str]:
    """Return the names of the profile files found (user folders and shipped); ``scenario`` needs none."""
    return configs.available("games")


@lru_cache(maxsize=64)
def _integration_variables(game: str) -> dict[str, dict]:
    import stable_retro.data as rdata

    from wrappers import roms

    path = rdata.get_file_path(roms.canonical_game(game), "data.json", roms.INTTYPE)
    if not path:
        return {}
    with open(path) as f:
        return json.load(f).get("info", {})


def system_buttons(game: str) -> list[str]:
    """Return the controller buttons of ``game``'s console, as stable-retro orders them."""
    import stable_retro.data as rdata

    from wrappers import roms

    system = roms.short_name(roms.canonical_game(game)).rsplit("-", 1)[-1]
    return list(rdata.EMU_INFO[system]["buttons"])


def load_profile(name: str, game: str | None = None) -> Profile:
    """Load and validate a profile by name or path; ``game`` overrides the profile's own game.

    Raises:
        ProfileError: naming the file and every bad key at once (unknown variables, bad address types,
            unknown buttons, malformed rules).
    """
    if name == SCENARIO:
        if game is None:
            raise ProfileError("The 'scenario' profile needs a game: it is read from the game's scenario.json.")
        return scenario_profile(game)
    path = profile_path(name)
    if not path.exists() and not configs.looks_like_path(name):
        raise ProfileError(
            f"Game profile '{name}' not found (looked for {path}). Profiles: {', '.join(available_profiles())}; "
            "or give the path of a YAML file, or 'scenario' to use the game's own scenario.json."
        )
    text = read_text_file(path, "game profile", "A profile is a YAML file like configs/games/smb.yaml.",
                          error=ProfileError)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: a profile is a mapping of keys (game, variables, rewards, ...).")
    raw.setdefault("name", path.stem)
    raw["path"] = str(path)
    if game:
        raw["game"] = game
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as e:
        lines = [f"{path}: {_loc(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in e.errors()]
        raise ProfileError("Invalid game profile:\n  " + "\n  ".join(lines)) from None
    errors = check_profile(profile)
    if errors:
        raise ProfileError("Invalid game profile:\n  " + "\n  ".join(f"{path}: {e}" for e in errors))
    return profile


def default_profile(game: str) -> str:
    """The profile to play ``game`` with when none is named: a profile file written for it, else 'scenario'."""
    from wrappers import roms

    want = roms.short_name(roms.canonical_game(game))
    for name in configs.available("games"):
        try:
            raw = yaml.safe_load(read_text_file(profile_path(name), "game profile", ""))
        except (UserError, yaml.YAMLError, ValueError):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("game"), str) and roms.short_name(raw["game"]) == want:
            return name
    return SCENARIO


def scenario_profile(game: str) -> Profile:
    """A profile that adds nothing to the integration: reward and done from its scenario.json.

    Progress is the return so far; the action set ``combos`` is every combination of the console's
    button groups (stable-retro's ``Actions.DISCRETE``: 18 on the Atari 2600, 36 on the NES), so any
    integrated game can be played and trained without writing a profile.
    """
    import stable_retro.data as rdata

    from wrappers import roms

    game = roms.canonical_game(game)
    system = roms.short_name(game).rsplit("-", 1)[-1]
    groups = rdata.EMU_INFO[system].get("actions") or [[[]]]
    combos = [[b for part in parts for b in part] or ["NOOP"] for parts in itertools.product(*groups)]
    return Profile(name=SCENARIO, game=game, description=f"{roms.short_name(game)} as its scenario.json says.",
                   rewards={"scenario": RewardTerm(scenario=True)}, done={"scenario": Condition(scenario=True)},
                   actions={"combos": combos}, default_actions="combos", path=f"{roms.short_name(game)}/scenario.json")


def with_rewards(profile: Profile, rewards: dict[str, float] | None) -> Profile:
    """The profile with reward terms re-weighted: ``{term: number}`` sets a delta/gain/scenario term's
    ``weight`` or an event term's ``value`` (``death: -50``, ``coins: 1``).

    Raises:
        ProfileError: a term the profile does not have.
    """
    if not rewards:
        return profile
    unknown = [k for k in rewards if k not in profile.rewards]
    if unknown:
        raise ProfileError(f"env.rewards: unknown reward term(s) {', '.join(unknown)} for profile {profile.name} "
                           f"(its terms: {', '.join(profile.rewards)})")
    terms = dict(profile.rewards)
    for name, number in rewards.items():
        field = "value" if terms[name].event is not None else "weight"
        terms[name] = terms[name].model_copy(update={field: float(number)})
    return profile.model_copy(update={"rewards": terms})


def check_profile(profile: Profile) -> list[str]:
    """Check names against the game: every variable read exists, every button exists. Returns errors."""
    from wrappers import roms

    errors: list[str] = []
    try:
        base = _integration_variables(profile.game)
    except roms.RomError as e:
        return [f"game: {e}"]
    known = set(base) | set(profile.variables) | set(profile.derived)
    hint = ", ".join(sorted(known))

    def need(var: str | None, key: str) -> None:
        if var is not None and var not in known:
            errors.append(f"{key}: unknown variable '{var}' (known: {hint})")

    for name, d in profile.derived.items():
        for var in d.sum:
            if var in profile.derived:
                errors.append(f"derived.{name}.sum: '{var}' is derived; sums take RAM variables only")
            else:
                need(var, f"derived.{name}.sum.{var}")
    if profile.progress is not None:
        need(profile.progress, "progress")
    if isinstance(profile.target, str):
        need(profile.target, "target")
    for name, t in profile.rewards.items():
        need(t.delta, f"rewards.{name}.delta")
        need(t.gain, f"rewards.{name}.gain")
        if t.event is not None and t.event != "success" and t.event not in profile.done:
            errors.append(f"rewards.{name}.event: '{t.event}' is neither 'success' nor a done rule "
                          f"({', '.join(profile.done) or 'none'})")
    conds = {f"done.{k}": c for k, c in profile.done.items()}
    if profile.success:
        conds["success"] = profile.success
    for key, cond in conds.items():
        for var in sorted(cond.variables()):
            need(var, key)
    buttons = {b for b in system_buttons(profile.game) if b}
    for set_name, combos in profile.actions.items():
        for i, combo in enumerate(combos):
            for button in combo:
                if button.upper() not in buttons and button.upper() != "NOOP":
                    errors.append(f"actions.{set_name}[{i}]: unknown button '{button}' "
                                  f"(this console has {', '.join(sorted(buttons))})")
    if profile.default_actions and profile.default_actions not in profile.actions:
        errors.append(f"default_actions: '{profile.default_actions}' is not an action set "
                      f"({', '.join(profile.actions)})")
    return errors


def action_masks(profile: Profile, set_name: str) -> tuple[np.ndarray, list[str]]:
    """Return the button masks (n_actions x n_buttons, uint8) of a named action set and their labels."""
    if set_name not in profile.actions:
        raise ProfileError(f"{profile.path}: actions: no action set '{set_name}' "
                           f"(this profile has: {', '.join(profile.actions) or 'none'})")
    buttons = system_buttons(profile.game)
    masks = np.zeros((len(profile.actions[set_name]), len(buttons)), np.uint8)
    labels = []
    for i, combo in enumerate(profile.actions[set_name]):
        pressed = [b.upper() for b in combo if b.upper() != "NOOP"]
        for b in pressed:
            masks[i, buttons.index(b)] = 1
        labels.append("+".join(pressed) or "NOOP")
    return masks, labels


# --------------------------------------------------------------------------- runtime


_OPS: dict[str, Callable[[float, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}


def _compile(cond: Condition) -> Callable[[dict, dict, bool], bool]:
    """Turn a condition into a closure over (values, previous values, scenario done)."""
    if cond.all is not None:
        parts = [_compile(c) for c in cond.all]
        return lambda v, p, s: all(f(v, p, s) for f in parts)
    if cond.any is not None:
        parts = [_compile(c) for c in cond.any]
        return lambda v, p, s: any(f(v, p, s) for f in parts)
    if cond.scenario is not None:
        want = cond.scenario
        return lambda v, p, s: s == want
    var, op = cond.var, cond.op
    if op == "increased":
        return lambda v, p, s: v[var] > p[var]
    if op == "decreased":
        return lambda v, p, s: v[var] < p[var]
    if op == "changed":
        return lambda v, p, s: v[var] != p[var]
    fn = _OPS[op]
    if cond.ref is not None:
        ref = cond.ref
        return lambda v, p, s: fn(v[var], v[ref])
    value = set(cond.value) if isinstance(cond.value, list) else cond.value
    return lambda v, p, s: fn(v[var], value)


class StepResult:
    """What the profile says about one agent step."""

    __slots__ = ("reward", "terms", "terminated", "reason", "success", "progress")

    def __init__(self, reward, terms, terminated, reason, success, progress):
        self.reward: float = reward
        self.terms: dict[str, float] = terms
        self.terminated: bool = terminated
        self.reason: str | None = reason
        self.success: bool = success
        self.progress: float = progress


class GameTracker:
    """Evaluates a profile against live emulator RAM, once per agent step.

    Args:
        profile: the validated profile.
        read: function returning the current value of a RAM variable by name (stable-retro's
            ``GameData.lookup_value``; it reads live memory, so no ``update_ram`` is needed).
        scenario_reward: function returning the scenario's reward since the last call (only called when
            a term uses it).
        scenario_done: function returning the scenario's done flag (only called when a rule uses it).
    """

    def __init__(self, profile: Profile, read: Callable[[str], float],
                 scenario_reward: Callable[[], float] | None = None,
                 scenario_done: Callable[[], bool] | None = None):
        self.profile = profile
        self._read = read
        self._scenario_reward = scenario_reward
        self._scenario_done = scenario_done
        conds = [*profile.done.values(), *([profile.success] if profile.success else [])]
        needed = ({profile.progress} | {t.delta or t.gain for t in profile.rewards.values()}) - {None}
        if isinstance(profile.target, str):
            needed.add(profile.target)
        for c in conds:
            needed |= c.variables()
        raw_needed = set()
        for name in needed:
            if name in profile.derived:
                raw_needed |= set(profile.derived[name].sum)
            else:
                raw_needed.add(name)
        self._raw = sorted(raw_needed)
        self._derived = [(n, d.offset, list(d.sum.items())) for n, d in profile.derived.items()
                         if n in needed]
        self._done = [(n, _compile(c)) for n, c in profile.done.items()]
        self._success = _compile(profile.success) if profile.success else None
        self._uses_scen_done = any(c.uses_scenario() for c in conds)
        self._terms = list(profile.rewards.items())
        self._prev: dict[str, float] = {}
        self._return = 0.0
        self._best: dict[str, float] = {}
        self.start_progress = 0.0
        self.best_progress = 0.0

    def values(self) -> dict[str, float]:
        """Read every variable the profile needs, derived ones included."""
        v = {name: self._read(name) for name in self._raw}
        for name, offset, terms in self._derived:
            v[name] = offset + sum(w * v[var] for var, w in terms)
        return v

    def reset(self) -> dict[str, float]:
        """Start an episode from the current RAM; returns the variable values."""
        v = self.values()
        self._prev = v
        self._best = {t.gain: v[t.gain] for t in self.profile.rewards.values() if t.gain}
        self._return = 0.0
        self.start_progress = self.best_progress = self._progress(v)
        if self._scenario_reward and any(t.scenario for t in self.profile.rewards.values()):
            self._scenario_reward()
        return v

    def _progress(self, v: dict[str, float]) -> float:
        return float(v[self.profile.progress]) if self.profile.progress is not None else self._return

    def target(self, v: dict[str, float]) -> float | None:
        """The goal in progress units relative to the start (None when the profile has no target)."""
        t = self.profile.target
        if t is None:
            return None
        return (v[t] if isinstance(t, str) else t) - self.start_progress

    def step(self) -> StepResult:
        """Evaluate rewards, done rules and success for the agent step that just ran."""
        v, p = self.values(), self._prev
        scen_done = bool(self._scenario_done()) if self._uses_scen_done and self._scenario_done else False
        reason = next((name for name, f in self._done if f(v, p, scen_done)), None)
        success = bool(self._success and self._success(v, p, scen_done))
        terms: dict[str, float] = {}
        total = 0.0
        for name, t in self._terms:
            if t.delta is not None:
                r = (v[t.delta] - p[t.delta]) * t.weight
            elif t.gain is not None:
                best = self._best[t.gain]
                r = max(0.0, v[t.gain] - best) * t.weight
                if v[t.gain] > best:
                    self._best[t.gain] = v[t.gain]
            elif t.event is not None:
                fired = success if t.event == "success" else reason == t.event
                r = t.value if fired else 0.0
            else:
                r = float(self._scenario_reward()) * t.weight if self._scenario_reward else 0.0
            if t.clip is not None:
                r = min(max(r, t.clip[0]), t.clip[1])
            terms[name] = r
            total += r
        self._return += total
        prog = self._progress(v)
        if prog > self.best_progress:
            self.best_progress = prog
        self._prev = v
        if success and self.profile.end_on_success and reason is None:
            reason = "success"
        return StepResult(total, terms, reason is not None, reason, success,
                          self.best_progress - self.start_progress)
