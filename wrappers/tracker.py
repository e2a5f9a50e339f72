"""A game profile, evaluated: rewards, done rules, success, fights and metrics from RAM, once per agent step.

Everything here is pure: it sees variable values through a ``read(name)`` function (stable-retro's
``GameData.lookup_value`` in the env; a RAM trace in the tests), so the fight rules, rewards and metrics
can be driven on recorded or synthetic RAM without an emulator.

Per step, in this order: the RAM variables and derived values are read; the fight (if any) turns them
into events (``round_won``, ``match_lost``, ...) and signals (``damage_dealt``, ...); the done rules and
the success rule fire as events too; then every reward term, the episode end and the metrics follow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wrappers.profile import FIGHT_SIGNALS, Condition, Fight, Profile

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

#: (values, previous values, scenario done, events so far) -> bool
Rule = Callable[[dict, dict, bool, set], bool]

#: What ends an episode in each episode mode of a fight.
MODE_ENDS = {"round": ("round_won", "round_lost", "round_draw"), "match": ("match_won", "match_lost"), "run": ()}
#: The win event of each mode: a fight's success when the profile names none.
MODE_WIN = {"round": "round_won", "match": "match_won", "run": "match_won"}


def compile_condition(cond: Condition) -> Rule:
    """Turn a condition into a closure over (values, previous values, scenario done, events)."""
    if cond.all is not None:
        parts = [compile_condition(c) for c in cond.all]
        return lambda v, p, s, e: all(f(v, p, s, e) for f in parts)
    if cond.any is not None:
        parts = [compile_condition(c) for c in cond.any]
        return lambda v, p, s, e: any(f(v, p, s, e) for f in parts)
    if cond.scenario is not None:
        want = cond.scenario
        return lambda v, p, s, e: s == want
    if cond.event is not None:
        name = cond.event
        return lambda v, p, s, e: name in e
    var, op = cond.var, cond.op
    if op == "increased":
        return lambda v, p, s, e: v[var] > p[var]
    if op == "decreased":
        return lambda v, p, s, e: v[var] < p[var]
    if op == "changed":
        return lambda v, p, s, e: v[var] != p[var]
    fn = _OPS[op]
    if cond.ref is not None:
        ref = cond.ref
        return lambda v, p, s, e: fn(v[var], v[ref])
    value = set(cond.value) if isinstance(cond.value, list) else cond.value
    return lambda v, p, s, e: fn(v[var], value)


class VariableReader:
    """Reads the values of ``names`` from RAM: a RAM variable as ``read`` gives it, a derived one as
    ``offset + sum(weight * variable)``, clipped to ``[low, high]`` if the profile says so.

    Called as ``reader()``, it returns ``{name: value}`` for the names and the RAM variables behind them.
    """

    def __init__(self, profile: Profile, names, read: Callable[[str], float]):
        names = set(names)
        raw: set[str] = set()
        for name in names:
            raw |= set(profile.derived[name].sum) if name in profile.derived else {name}
        self._raw = sorted(raw)
        self._read = read
        # unpacked once: this runs every agent step
        self._derived = [(n, d.offset, list(d.sum.items()), d.clip) for n, d in profile.derived.items()
                         if n in names]

    def __call__(self) -> dict[str, float]:
        """The current values."""
        v = {name: self._read(name) for name in self._raw}
        for name, offset, terms, clip in self._derived:
            x = offset + sum(w * v[var] for var, w in terms)
            v[name] = min(max(x, clip[0]), clip[1]) if clip else x
        return v


class StepResult:
    """What the profile says about one agent step."""

    __slots__ = ("reward", "terms", "terminated", "reason", "success", "progress", "events", "waiting")

    def __init__(self, reward, terms, terminated, reason, success, progress, events=frozenset(), waiting=False):
        self.reward: float = reward
        self.terms: dict[str, float] = terms
        self.terminated: bool = terminated
        self.reason: str | None = reason
        self.success: bool = success
        self.progress: float = progress
        self.events: set[str] = set(events)
        self.waiting: bool = waiting  # a fight between rounds: the wrapper plays on with no input

    def merge(self, later: StepResult) -> StepResult:
        """This step followed by ``later`` within the same agent step (the frames between rounds)."""
        terms = dict(self.terms)
        for k, v in later.terms.items():
            terms[k] = terms.get(k, 0.0) + v
        return StepResult(self.reward + later.reward, terms, self.terminated or later.terminated,
                          self.reason or later.reason, self.success or later.success, later.progress,
                          self.events | later.events, later.waiting)


class FightTracker:
    """Rounds and matches from RAM (a profile's ``fight:`` section; see :class:`wrappers.profile.Fight`)."""

    def __init__(self, fight: Fight):
        self.fight = fight
        self.rules = {name: compile_condition(c) for name, c in fight.conditions().items()}
        self.live = True
        self.wins = self.losses = 0
        self.rounds_won = self.matches_won = 0
        self._prev_live = True

    def reset(self, v: dict) -> None:
        """A new episode starts (mid-round, as savestates do)."""
        self.live = self._prev_live = True
        self.wins = self.losses = self.rounds_won = self.matches_won = 0
        self._signals(v, 0.0, 0.0)

    def _rule(self, name: str, v, p, s, default: bool) -> bool:
        rule = self.rules.get(name)
        return rule(v, p, s, set()) if rule else default

    def _signals(self, v: dict, dealt: float, taken: float) -> None:
        f = self.fight
        v["damage_dealt"], v["damage_taken"] = dealt, taken
        if f.health is not None:
            v["health_left"] = max(v[f.health], 0.0) / f.max_health
            v["enemy_health_left"] = max(v[f.enemy_health], 0.0) / f.max_health
        else:
            v["health_left"] = v["enemy_health_left"] = 0.0
        v["rounds_won_in_match"], v["rounds_lost_in_match"] = float(self.wins), float(self.losses)
        v["rounds_won_total"], v["matches_won_total"] = float(self.rounds_won), float(self.matches_won)

    def step(self, v: dict, p: dict, scenario_done: bool) -> set[str]:
        """The fight events of this step; adds the fight's signals to ``v``."""
        f, events = self.fight, set()
        hp = f.health is not None
        h, eh = (v[f.health], v[f.enemy_health]) if hp else (0.0, 0.0)
        dealt = taken = 0.0
        if self.live:
            if hp and self._prev_live:
                # health lost this step; a KO (-1) counts down to 0, a refill (an increase) never counts
                dealt = max(0.0, p[f.enemy_health] - max(eh, 0.0)) if p[f.enemy_health] >= 0 else 0.0
                taken = max(0.0, p[f.health] - max(h, 0.0)) if p[f.health] >= 0 else 0.0
            time_up = self._rule("time_up", v, p, scenario_done, False)
            ko_win = self._rule("ko_win", v, p, scenario_done, hp and eh < 0)
            ko_loss = self._rule("ko_loss", v, p, scenario_done, hp and h < 0)
            over = self._rule("round_over", v, p, scenario_done, ko_win or ko_loss or time_up)
            if over:
                self._round_over(v, p, scenario_done, events, h, eh, ko_win, ko_loss, time_up)
        elif self._rule("round_start", v, p, scenario_done, hp and h == f.max_health and eh == f.max_health):
            events.add("round_start")
            self.live = True
        if self._rule("continue_screen", v, p, scenario_done, False):
            events.add("continue")
        self._prev_live = self.live
        self._signals(v, dealt, taken)
        return events

    def _round_over(self, v, p, s, events, h, eh, ko_win, ko_loss, time_up) -> None:
        f = self.fight
        if ko_win and ko_loss:
            events.add("double_ko")
        elif ko_win:
            events.add("ko_win")
        elif ko_loss:
            events.add("ko_loss")
        if time_up:
            events.add("time_up")
        if "won" in self.rules or "lost" in self.rules:
            won, lost = self._rule("won", v, p, s, False), self._rule("lost", v, p, s, False)
        elif ko_win or ko_loss:
            won, lost = ko_win and not ko_loss, ko_loss and not ko_win
        else:  # time up (or a round_over rule): more health wins
            won, lost = h > eh, h < eh
        if won and not lost:
            events.add("round_won")
            self.wins += 1
            self.rounds_won += 1
        elif lost and not won:
            events.add("round_lost")
            self.losses += 1
        else:
            events.add("round_draw")
        if self.wins >= f.rounds_to_win:
            events.add("match_won")
            self.matches_won += 1
        elif self.losses >= f.rounds_to_win:
            events.add("match_lost")
        if events & {"match_won", "match_lost"}:
            self.wins = self.losses = 0
        self.live = False


class GameTracker:
    """Evaluates a profile against live emulator RAM, once per agent step.

    Args:
        profile: the validated profile.
        read: function returning the current value of a RAM variable by name (stable-retro's
            ``GameData.lookup_value``; it reads live memory, so no ``update_ram`` is needed).
        scenario_reward: function returning the scenario's reward since the last call (only called when
            a term uses it).
        scenario_done: function returning the scenario's done flag (only called when a rule uses it).
        episode: a fight's episode: one ``round``, one ``match`` or the whole ``run`` to the continue screen.
    """

    def __init__(self, profile: Profile, read: Callable[[str], float],
                 scenario_reward: Callable[[], float] | None = None,
                 scenario_done: Callable[[], bool] | None = None, episode: str = "match"):
        self.profile = profile
        self.episode = episode
        self._scenario_reward = scenario_reward
        self._scenario_done = scenario_done
        signals = set(FIGHT_SIGNALS) if profile.fight else set()
        conds = profile.conditions()
        needed = ({profile.progress} | {x for t in profile.rewards.values() for x in (t.delta, t.gain, t.signal,
                                                                                         t.scale)}) - {None}
        if isinstance(profile.target, str):
            needed.add(profile.target)
        for c in conds:
            needed |= c.variables()
        if profile.fight and profile.fight.health:
            needed |= {profile.fight.health, profile.fight.enemy_health}
        for m in profile.metrics.values():
            needed |= {x for x in (m.sum, m.last, m.max) if x and x not in profile.rewards}
        needed |= set(profile.observe)
        needed -= signals
        self._values = VariableReader(profile, needed, read)
        self.fight = FightTracker(profile.fight) if profile.fight else None
        self._done = [(n, compile_condition(c)) for n, c in profile.done.items()]
        success = profile.success
        if success is None and profile.fight:
            success = Condition(event=MODE_WIN[episode])
        self._success = compile_condition(success) if success else None
        self._uses_scen_done = any(c.uses_scenario() for c in conds)
        self._terms = list(profile.rewards.items())
        self._metrics = list(profile.metrics.items())
        self._ends = MODE_ENDS[episode] if profile.fight else ()
        self._prev: dict[str, float] = {}
        self._best: dict[str, float] = {}
        self._return = 0.0
        self.metrics: dict[str, float] = {}
        self.last_values: dict[str, float] = {}
        self.start_progress = 0.0
        self.best_progress = 0.0

    def values(self) -> dict[str, float]:
        """Read every variable the profile needs, derived ones included."""
        return self._values()

    def reset(self) -> dict[str, float]:
        """Start an episode from the current RAM; returns the variable values."""
        v = self.values()
        if self.fight:
            self.fight.reset(v)
        self._prev = self.last_values = v
        self._best = {t.gain: v[t.gain] for t in self.profile.rewards.values() if t.gain}
        self._return = 0.0
        self.metrics = {name: 0.0 for name, _ in self._metrics}
        for name, m in self._metrics:
            if m.last or m.max:
                self.metrics[name] = float(v[m.last or m.max])
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
        """Evaluate the fight, done rules, success, rewards and metrics for the agent step that just ran."""
        v, p = self.values(), self._prev
        scen_done = bool(self._scenario_done()) if self._uses_scen_done and self._scenario_done else False
        events = self.fight.step(v, p, scen_done) if self.fight else set()
        reason = None
        for name, f in self._done:
            if f(v, p, scen_done, events):
                events.add(name)
                reason = reason or name
        success = bool(self._success and self._success(v, p, scen_done, events))
        if success:
            events.add("success")
        if reason is None:
            reason = next((e for e in (*self._ends, "continue") if e in events), None) if self.fight else None
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
            elif t.signal is not None:
                r = v[t.signal] * t.weight
            elif t.event is not None:
                r = t.value if t.event in events else 0.0
            else:
                r = float(self._scenario_reward()) * t.weight if self._scenario_reward else 0.0
            if t.scale is not None and r:
                r *= v[t.scale]
            if t.clip is not None:
                r = min(max(r, t.clip[0]), t.clip[1])
            terms[name] = r
            total += r
        self._return += total
        for name, m in self._metrics:
            if m.count is not None:
                self.metrics[name] += m.count in events
            elif m.sum is not None:
                self.metrics[name] += v[m.sum] if m.sum in v else terms[m.sum]
            elif m.last is not None:
                self.metrics[name] = float(v[m.last])
            else:
                self.metrics[name] = max(self.metrics[name], float(v[m.max]))
            if m.cap is not None:
                self.metrics[name] = min(self.metrics[name], m.cap)
        prog = self._progress(v)
        if prog > self.best_progress:
            self.best_progress = prog
        self._prev = self.last_values = v
        if success and self.profile.end_on_success and reason is None:
            reason = "success"
        waiting = bool(self.fight and not self.fight.live and reason is None)
        return StepResult(total, terms, reason is not None, reason, success,
                          self.best_progress - self.start_progress, events, waiting)


def condition_reader(profile: Profile, cond: Condition, read: Callable[[str], float]) -> Callable[[], bool]:
    """A function telling whether ``cond`` holds on live RAM now (e.g. the ``mirror`` rule for macros).

    Only plain comparisons are meaningful here: there is no previous step, scenario flag or event.
    """
    values = VariableReader(profile, cond.variables(), read)
    rule = compile_condition(cond)

    def holds() -> bool:
        v = values()
        return bool(rule(v, v, False, set()))

    return holds
