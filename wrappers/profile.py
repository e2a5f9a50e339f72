"""Game profiles: what a game means for learning, as data (``configs/games/*.yaml``).

A profile names extra RAM variables (merged over the integration's ``data.json``), derived variables as
weighted sums, what ``progress`` means, reward terms, done rules, a success rule and named action sets.
Nothing in a profile is evaluated as code: conditions and sums are data that
:class:`wrappers.tracker.GameTracker` interprets. A fighting game adds a ``fight:`` section (rounds and
matches as rules over RAM), ``metrics:`` name per-episode figures, ``observe:`` the variables of a RAM
observation, and an action set entry may be a move macro.

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

import difflib
import itertools
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from wrappers import configs
from wrappers.errors import HostileDocumentError, UserError, load_yaml, read_text_file
from wrappers.models import StrictModel

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
    """A derived variable: ``offset + sum(weight * variable)``, optionally clipped to ``[low, high]``.

    SMB's x is ``256*xscrollHi + xscrollLo``; Boxing's score is clipped at 100 (its KO shows as 192).
    """

    sum: dict[str, float] = Field(min_length=1)
    offset: float = 0.0
    clip: tuple[float, float] | None = None


class Condition(_Model):
    """A predicate: ``{var, op, value|ref}``, ``{all: [...]}``, ``{any: [...]}``, ``{scenario: true}`` (the
    integration's own scenario.json says done) or ``{event: NAME}`` (an event fired at this agent step:
    a done rule, ``success``, or a fight event such as ``round_won``).

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
    event: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [self.var is not None, self.all is not None, self.any is not None, self.scenario is not None,
                 self.event is not None]
        if sum(forms) != 1:
            raise ValueError("a condition is exactly one of {var, op, value|ref}, {all: [...]}, {any: [...]}, "
                             "{scenario: true}, {event: NAME}")
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

    def _parts(self) -> list[Condition]:
        return self.all or self.any or []

    def variables(self) -> set[str]:
        """Return every variable name the condition reads."""
        if self.all is not None or self.any is not None:
            return set().union(*(c.variables() for c in self._parts()))
        return {v for v in (self.var, self.ref) if v}

    def events(self) -> set[str]:
        """Return every event name the condition reads."""
        if self.event is not None:
            return {self.event}
        return set().union(*(c.events() for c in self._parts())) if self._parts() else set()

    def uses_scenario(self) -> bool:
        """Whether evaluating this condition needs stable-retro's scenario done flag."""
        if self.scenario:
            return True
        return any(c.uses_scenario() for c in self._parts())


class RewardTerm(_Model):
    """One reward term, logged on its own as ``reward/<name>``.

    Exactly one source: ``delta`` (change of a variable since the last agent step), ``gain`` (increase of
    the variable's running maximum: never pays twice for the same ground, so rocking back and forth earns
    nothing), ``signal`` (a per-step quantity such as a fight's ``damage_dealt``), ``event`` (a one-off
    ``value`` when an event fires: a done rule, ``success`` or a fight event) or ``scenario`` (the
    integration's own scenario.json reward). ``weight`` scales it, ``scale`` multiplies it by a variable or
    signal (a KO bonus times ``health_left``), and ``clip`` bounds it per agent step.
    """

    delta: str | None = None
    gain: str | None = None
    signal: str | None = None
    event: str | None = None
    scenario: bool | None = None
    weight: float = 1.0
    value: float | None = None
    scale: str | None = None
    clip: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> RewardTerm:
        if sum(x is not None for x in (self.delta, self.gain, self.signal, self.event, self.scenario)) != 1:
            raise ValueError("a reward term has exactly one of delta, gain, signal, event, scenario")
        if (self.event is None) != (self.value is None):
            raise ValueError("'value' goes with 'event' (and only with it)")
        if self.clip is not None and self.clip[0] > self.clip[1]:
            raise ValueError(f"clip {list(self.clip)} has low > high")
        return self


#: Events a fight section adds (rewards, done rules, conditions and metrics may name them).
FIGHT_EVENTS = ("round_start", "round_won", "round_lost", "round_draw", "ko_win", "ko_loss", "double_ko",
                "time_up", "match_won", "match_lost", "continue")
#: Per-step signals a fight section adds, as values beside the RAM variables.
FIGHT_SIGNALS = ("damage_dealt", "damage_taken", "health_left", "enemy_health_left", "rounds_won_in_match",
                 "rounds_lost_in_match", "rounds_won_total", "matches_won_total")


class Fight(_Model):
    """Rounds and matches of a fighting game, as rules over RAM variables (the profile's ``fight:``).

    A live round ends when ``round_over`` holds (default: either health below 0, or ``time_up``). Who won
    is ``won``/``lost`` if given, else the health rule: a KO (health below 0) loses, both KO'd is a
    double KO (a draw), a time-up goes to the one with more health. The next round is live when
    ``round_start`` holds (default: both healths at ``max_health``); the frames between are played by the
    wrapper with no input. ``rounds_to_win`` round wins (or losses) end a match; ``continue_screen``
    means the game is over. Events: ``round_start``, ``round_won``, ``round_lost``, ``round_draw``,
    ``ko_win``, ``ko_loss``, ``double_ko``, ``time_up``, ``match_won``, ``match_lost``, ``continue``.
    Signals (values beside the RAM variables): ``damage_dealt``/``damage_taken`` (health lost this step in
    a live round; a refill never counts), ``health_left``/``enemy_health_left`` (0..1), the rounds won and
    lost in the current match, and the rounds and matches won in the episode (``rounds_won_total``,
    ``matches_won_total``: a fight's progress).
    """

    health: str | None = Field(default=None, description="Own health variable (below 0: knocked out).")
    enemy_health: str | None = Field(default=None, description="The opponent's health variable.")
    max_health: float | None = Field(default=None, gt=0, description="Health at a round's start.")
    round_over: Condition | None = None
    time_up: Condition | None = None
    won: Condition | None = None
    lost: Condition | None = None
    ko_win: Condition | None = None
    ko_loss: Condition | None = None
    round_start: Condition | None = None
    rounds_to_win: int = Field(default=2, ge=1)
    continue_screen: Condition | None = None
    max_wait_frames: int = Field(default=3600, gt=0, description="Longest wait between rounds or matches.")

    @model_validator(mode="after")
    def _enough_rules(self) -> Fight:
        has_health = self.health is not None and self.enemy_health is not None
        if (self.health is None) != (self.enemy_health is None):
            raise ValueError("give both health and enemy_health, or neither")
        if has_health and self.max_health is None:
            raise ValueError("health needs max_health (a round's starting health)")
        if not has_health and (self.round_over is None or self.won is None or self.lost is None):
            raise ValueError("without health variables, a fight needs round_over, won and lost rules")
        return self

    def conditions(self) -> dict[str, Condition]:
        """Every rule given, by name."""
        names = ("round_over", "time_up", "won", "lost", "ko_win", "ko_loss", "round_start", "continue_screen")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


class Metric(_Model):
    """An episode metric: ``{count: EVENT}`` (how often it fired; ``cap`` bounds it, so ``{count: match_won,
    cap: 1}`` averages to a win rate), ``{sum: NAME}`` (a signal's or reward term's total), ``{last: VAR}``
    or ``{max: VAR}`` (a variable at the end, or its maximum)."""

    count: str | None = None
    sum: str | None = None
    last: str | None = None
    max: str | None = None
    cap: float | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Metric:
        if sum(x is not None for x in (self.count, self.sum, self.last, self.max)) != 1:
            raise ValueError("a metric has exactly one of count, sum, last, max")
        return self


#: A macro step: buttons joined by '+' (or NOOP), '/', then the frames to hold them: ``DOWN+RIGHT/4``.
MACRO_STEP_RE = re.compile(r"^(NOOP|[A-Za-z]+(\+[A-Za-z]+)*)/([1-9][0-9]*)$")


class Macro(_Model):
    """A move: button combinations, each held a number of frames, run to the end before the next decision.

    Written ``{name: hadouken, macro: [DOWN/3, DOWN+RIGHT/3, RIGHT+X/6]}``; with a profile ``mirror`` rule,
    LEFT and RIGHT swap while it holds (the fighter faces left). A platformer can use one too (a running
    jump: ``[RIGHT+B/6, RIGHT+A+B/20]``).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    macro: list[str] = Field(min_length=1)
    mirror: bool = True

    @field_validator("macro")
    @classmethod
    def _steps(cls, v: list[str]) -> list[str]:
        bad = [step for step in v if not MACRO_STEP_RE.match(step)]
        if bad:
            raise ValueError(f"macro steps are BUTTONS/FRAMES such as DOWN+RIGHT/4, not {', '.join(map(repr, bad))}")
        return v

    def steps(self) -> list[tuple[list[str], int]]:
        """(buttons, frames) of each step."""
        out = []
        for step in self.macro:
            combo, frames = step.rsplit("/", 1)
            out.append(([] if combo.upper() == "NOOP" else combo.upper().split("+"), int(frames)))
        return out


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
    fight: Fight | None = None
    metrics: dict[str, Metric] = Field(default_factory=dict)
    observe: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="RAM observation (obs: ram): variable -> [low, high], scaled to 0..1.")
    mirror: Condition | None = Field(default=None, description="When it holds, macros swap LEFT and RIGHT.")
    actions: dict[str, list[list[str] | Macro]] = Field(default_factory=dict)
    default_actions: str | None = None
    path: str = ""

    def needs_scenario(self) -> bool:
        """Whether any term or rule reads stable-retro's scenario (forcing a RAM update per agent step)."""
        return any(t.scenario for t in self.rewards.values()) or any(c.uses_scenario() for c in self.conditions())

    def conditions(self) -> list[Condition]:
        """Every condition of the profile: done rules, success, mirror and the fight's rules."""
        out = [*self.done.values(), *([self.success] if self.success else []), *([self.mirror] if self.mirror else [])]
        return out + (list(self.fight.conditions().values()) if self.fight else [])

    def events(self) -> set[str]:
        """Event names this profile can fire."""
        return {"success", *self.done, *(FIGHT_EVENTS if self.fight else ())}

    def signals(self) -> set[str]:
        """Per-step signal names this profile computes (the fight's)."""
        return set(FIGHT_SIGNALS) if self.fight else set()


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
def integration_variables(game: str) -> dict[str, dict]:
    """The variables of ``game``'s ``data.json`` as stable-retro writes them (``{name: {address, type, ...}}``;
    empty if the integration has none). Cached: treat the result as read-only."""
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
        raw = load_yaml(text)
    except HostileDocumentError as e:
        raise ProfileError(f"{path}: not read as a game profile: {e}.") from None
    except (yaml.YAMLError, ValueError, RecursionError) as e:
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
            raw = load_yaml(read_text_file(profile_path(name), "game profile", ""))
        except (UserError, yaml.YAMLError, ValueError, RecursionError):
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


#: Buttons an agent must never press: they pause, reset or change the game's mode.
FORBIDDEN_BUTTONS = {"START", "MODE", "SELECT", "RESET"}


def legal_combos(game: str) -> set[frozenset[str]]:
    """Every button combination stable-retro's default action filter lets through for ``game``'s console:
    one option of each of its button groups. Anything else is silently changed by the filter."""
    import stable_retro.data as rdata

    from wrappers import roms

    system = roms.short_name(roms.canonical_game(game)).rsplit("-", 1)[-1]
    groups = rdata.EMU_INFO[system].get("actions") or [[[]]]
    return {frozenset(b for part in parts for b in part) for parts in itertools.product(*groups)}


def check_profile(profile: Profile) -> list[str]:
    """Check names against the game and each other: every variable, signal and event read exists, every
    button exists and every combination is one the integration allows. Returns errors."""
    from wrappers import roms

    errors: list[str] = []
    try:
        base = integration_variables(profile.game)
    except roms.RomError as e:
        return [f"game: {e}"]
    variables = set(base) | set(profile.variables) | set(profile.derived)
    signals = profile.signals()
    events = profile.events()
    for name in sorted(signals & variables):
        errors.append(f"variables.{name}: the fight signal '{name}' has this name already; rename the variable")

    def need(var: str | None, key: str, allowed: set[str] = variables, what: str = "variable") -> None:
        if var is not None and var not in allowed:
            near = difflib.get_close_matches(var, sorted(allowed), n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            errors.append(f"{key}: unknown {what} '{var}' ({hint}known: {', '.join(sorted(allowed)) or 'none'})")

    for name, d in profile.derived.items():
        for var in d.sum:
            if var in profile.derived:
                errors.append(f"derived.{name}.sum: '{var}' is derived; sums take RAM variables only")
            else:
                need(var, f"derived.{name}.sum.{var}")
    values = variables | signals
    value_kind = "signal or variable" if signals else "variable"
    if profile.progress is not None:
        need(profile.progress, "progress", values, value_kind)
    if isinstance(profile.target, str):
        need(profile.target, "target", values, value_kind)
    for name, t in profile.rewards.items():
        need(t.delta, f"rewards.{name}.delta")
        need(t.gain, f"rewards.{name}.gain")
        need(t.signal, f"rewards.{name}.signal", values, value_kind)
        need(t.scale, f"rewards.{name}.scale", values, value_kind)
        need(t.event, f"rewards.{name}.event", events, "event")
    conds = {f"done.{k}": c for k, c in profile.done.items()}
    if profile.success:
        conds["success"] = profile.success
    if profile.mirror:
        conds["mirror"] = profile.mirror
    if profile.fight:
        conds.update({f"fight.{k}": c for k, c in profile.fight.conditions().items()})
        need(profile.fight.health, "fight.health")
        need(profile.fight.enemy_health, "fight.enemy_health")
    for key, cond in conds.items():
        for var in sorted(cond.variables()):
            need(var, key, values, value_kind)
        for ev in sorted(cond.events()):
            need(ev, key, events, "event")
    for name, m in profile.metrics.items():
        need(m.count, f"metrics.{name}.count", events, "event")
        need(m.sum, f"metrics.{name}.sum", values | set(profile.rewards), f"{value_kind} or reward term")
        need(m.last, f"metrics.{name}.last", values, value_kind)
        need(m.max, f"metrics.{name}.max", values, value_kind)
    for name, (low, high) in profile.observe.items():
        need(name, f"observe.{name}", values, value_kind)
        if high <= low:
            errors.append(f"observe.{name}: the range [{low}, {high}] is empty")
    errors += _action_errors(profile)
    if profile.default_actions and profile.default_actions not in profile.actions:
        errors.append(f"default_actions: '{profile.default_actions}' is not an action set "
                      f"({', '.join(profile.actions)})")
    return errors


def _action_errors(profile: Profile) -> list[str]:
    errors = []
    buttons = {b for b in system_buttons(profile.game) if b}
    legal = legal_combos(profile.game)
    for set_name, entries in profile.actions.items():
        names = set()
        for i, entry in enumerate(entries):
            key = f"actions.{set_name}[{i}]"
            combos = [c for c, _ in entry.steps()] if isinstance(entry, Macro) else [
                [b.upper() for b in entry if b.upper() != "NOOP"]]
            if isinstance(entry, Macro):
                if entry.name in names:
                    errors.append(f"{key}: a second action named '{entry.name}'")
                names.add(entry.name)
            for combo in combos:
                unknown = [b for b in combo if b not in buttons]
                forbidden = [b for b in combo if b in FORBIDDEN_BUTTONS]
                if unknown:
                    errors.append(f"{key}: unknown button '{unknown[0]}' (this console has "
                                  f"{', '.join(sorted(buttons))})")
                elif forbidden:
                    errors.append(f"{key}: {forbidden[0]} is never pressed by an agent (it pauses or resets)")
                elif frozenset(combo) not in legal:
                    errors.append(f"{key}: {'+'.join(combo)} is not a combination stable-retro lets through on "
                                  "this console (its action filter would silently change it); press fewer buttons")
    return errors


def action_set(profile: Profile, set_name: str):
    """The named action set as a :class:`wrappers.action.ActionSet`: masks, labels and macros."""
    from wrappers.action import ActionSet

    if set_name not in profile.actions:
        raise ProfileError(f"{profile.path}: actions: no action set '{set_name}' "
                           f"(this profile has: {', '.join(profile.actions) or 'none'})")
    buttons = system_buttons(profile.game)

    def mask(combo: list[str]) -> np.ndarray:
        m = np.zeros(len(buttons), np.uint8)
        for b in combo:
            m[buttons.index(b)] = 1
        return m

    def swapped(combo: list[str]) -> list[str]:
        return [{"LEFT": "RIGHT", "RIGHT": "LEFT"}.get(b, b) for b in combo]

    labels, masks, macros, mirrored = [], [], [], []
    for entry in profile.actions[set_name]:
        if isinstance(entry, Macro):
            steps = entry.steps()
            labels.append(entry.name)
            masks.append(mask(steps[0][0]))
            macros.append(tuple((mask(c), n) for c, n in steps))
            mirrored.append(tuple((mask(swapped(c)), n) for c, n in steps) if entry.mirror else None)
        else:
            pressed = [b.upper() for b in entry if b.upper() != "NOOP"]
            labels.append("+".join(pressed) or "NOOP")
            masks.append(mask(pressed))
            macros.append(None)
            mirrored.append(None)
    return ActionSet(labels=labels, masks=np.array(masks, np.uint8), macros=macros, mirrored=mirrored)


def action_masks(profile: Profile, set_name: str) -> tuple[np.ndarray, list[str]]:
    """The button masks (n_actions x n_buttons, uint8) of a named action set and their labels (a macro's
    mask is its first step's)."""
    actions = action_set(profile, set_name)
    return actions.masks, actions.labels
