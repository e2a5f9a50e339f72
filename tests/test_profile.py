"""Game profiles: validation errors name file and key; rules evaluated on RAM traces.

Sonic 2 and Street Fighter II have no ROM here: their profiles are validated against the real
integration files and exercised on synthetic RAM traces with the real :class:`GameTracker`.
"""

from __future__ import annotations

import pytest

from wrappers.profile import ProfileError, action_masks, available_profiles, load_profile
from wrappers.tracker import GameTracker


class Trace:
    """A RAM 'reader' replaying a list of variable dicts, one per agent step (row 0 is the reset)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.i = 0

    def read(self, name):
        return self.rows[self.i][name]

    def run(self, profile):
        tracker = GameTracker(profile, self.read)
        tracker.reset()
        out = []
        for i in range(1, len(self.rows)):
            self.i = i
            out.append(tracker.step())
        return tracker, out


def test_every_shipped_profile_loads():
    assert {"smb", "sonic2", "sf2", "airstriker", "pong", "boxing"} <= set(available_profiles())
    for name in available_profiles():
        profile = load_profile(name)
        assert profile.actions, name


def _write(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_errors_name_file_and_key(tmp_path):
    path = _write(tmp_path, """
game: SuperMarioBros-Nes
variables:
  weird: {address: 0x10, type: "|q1"}
derived:
  x: {sum: {xscrollHi: 256, xscrollLoo: 1}}
progress: x
rewards:
  x: {delta: x}
  y: {delta: nope}
done:
  dead: {var: livez, op: decreased}
actions:
  moves: [[RIGHT], [JUMP]]
""")
    with pytest.raises(ProfileError) as e:
        load_profile(str(path))
    msg = str(e.value)
    assert f"{path}: variables.weird.type: bad address type '|q1'" in msg
    # the type error stops before name checks; fix it and every name error shows at once
    path.write_text(path.read_text().replace('"|q1"', '"|u1"'))
    with pytest.raises(ProfileError) as e:
        load_profile(str(path))
    msg = str(e.value)
    assert f"{path}: derived.x.sum.xscrollLoo: unknown variable 'xscrollLoo'" in msg
    assert f"{path}: rewards.y.delta: unknown variable 'nope'" in msg
    assert f"{path}: done.dead: unknown variable 'livez'" in msg
    assert f"{path}: actions.moves[1]: unknown button 'JUMP'" in msg


def test_yaml_on_key_trap_is_not_silently_accepted(tmp_path):
    # YAML 1.1 reads a bare `on:` key as True; the reward term field is called `event` for that reason.
    text = "game: SuperMarioBros-Nes\nprogress: xscrollLo\nrewards:\n  bonus: {on: success, value: 1}\n"
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError, match="rewards.bonus"):
        load_profile(str(path))


def test_unknown_profile_lists_shipped_ones():
    with pytest.raises(ProfileError, match="Profiles: .*smb.*or .scenario."):
        load_profile("smbb")


def test_smb_x_wraps_into_xscrollhi():
    p = load_profile("smb")
    base = dict(lives=2, player_state=8, y_viewport=1, float_state=0, game_mode=1, coins=0, score=0,
                **{f"enemy_{i}": 0 for i in range(5)})
    rows = [dict(base, xscrollHi=0, xscrollLo=250), dict(base, xscrollHi=0, xscrollLo=254),
            dict(base, xscrollHi=1, xscrollLo=4), dict(base, xscrollHi=1, xscrollLo=40)]
    tracker, res = Trace(rows).run(p)
    assert [r.terms["x"] for r in res] == [4.0, 6.0, 36.0]
    assert res[-1].progress == 46.0
    assert not any(r.terminated for r in res)


def test_smb_death_and_flag_rules():
    p = load_profile("smb")
    base = dict(lives=2, player_state=8, y_viewport=1, float_state=0, game_mode=1, coins=0, score=0,
                xscrollHi=3, xscrollLo=0, **{f"enemy_{i}": 0 for i in range(5)})
    _, res = Trace([base, dict(base, player_state=0x0B)]).run(p)
    assert res[0].terminated and res[0].reason == "dying"
    _, res = Trace([base, dict(base, y_viewport=2)]).run(p)
    assert res[0].reason == "dying"
    # a vine also sets float_state 3: not a success without the flag in an enemy slot
    _, res = Trace([base, dict(base, float_state=3)]).run(p)
    assert not res[0].success and not res[0].terminated
    _, res = Trace([base, dict(base, float_state=3, enemy_2=0x31)]).run(p)
    assert res[0].success and res[0].reason == "success"


def test_sonic2_rocking_earns_nothing_and_signpost_is_success():
    p = load_profile("sonic2")
    assert p.game == "SonicTheHedgehog2-Genesis"
    base = dict(lives=3, game_mode=12, rings=0, screen_x_end=0x29A0)
    xs = [96, 300, 250, 300, 250, 300, 320]  # forward, then rocking, then a little further
    tracker, res = Trace([dict(base, x=x) for x in xs]).run(p)
    assert [r.terms["x"] for r in res] == [204.0, 0.0, 0.0, 0.0, 0.0, 20.0]
    assert [r.progress for r in res] == [204.0, 204.0, 204.0, 204.0, 204.0, 224.0]
    assert tracker.target(tracker.values()) == 0x29A0 + 160 - 96
    _, res = Trace([dict(base, x=10000), dict(base, x=0x2A40)]).run(p)
    assert res[0].success and res[0].reason == "success"
    _, res = Trace([dict(base, x=500), dict(base, x=500, lives=2)]).run(p)
    assert res[0].reason == "life_lost"


def test_sf2_round_refill_is_not_damage():
    from wrappers.ramtrace import RamTrace

    p = load_profile("sf2")
    base = dict(health=176, enemy_health=176, round_timer=90, continuetimer=0)
    rows = [base, dict(base, enemy_health=150), dict(base, enemy_health=150, health=140),
            dict(base, enemy_health=-1, health=140),  # round won by a KO
            dict(base, enemy_health=176, health=176)]  # next round: both refill
    trace = RamTrace(p, rows)
    tracker = GameTracker(p, trace.read, episode="run")
    tracker.reset()
    res = []
    while trace.advance():
        res.append(tracker.step())
    assert [r.terms["hit"] for r in res] == [3 * 26.0, 0.0, 3 * 150.0, 0.0]
    assert [r.terms["hurt"] for r in res] == [0.0, -36.0, 0.0, 0.0]
    assert [r.terms["round_won"] for r in res] == [0.0, 0.0, 50.0, 0.0]
    trace = RamTrace(p, [base, dict(base, continuetimer=10)])
    tracker = GameTracker(p, trace.read, episode="run")
    tracker.reset()
    trace.advance()
    assert tracker.step().reason == "continue"


def test_action_masks_follow_console_button_order():
    p = load_profile("smb")
    masks, labels = action_masks(p, "right_only")
    assert labels == ["NOOP", "RIGHT", "RIGHT+A", "RIGHT+B", "RIGHT+A+B"]
    # NES buttons: B, None, SELECT, START, UP, DOWN, LEFT, RIGHT, A
    assert masks[4].tolist() == [1, 0, 0, 0, 0, 0, 0, 1, 1]
    assert len(action_masks(p, "complex")[0]) == 12
    with pytest.raises(ProfileError, match="no action set 'jump'"):
        action_masks(p, "jump")


def test_experiment_can_reweight_reward_terms():
    from wrappers.profile import with_rewards

    p = with_rewards(load_profile("smb"), {"death": -50, "coins": 2})
    assert p.rewards["death"].value == -50 and p.rewards["coins"].weight == 2
    assert load_profile("smb").rewards["death"].value == 0  # the profile itself is untouched
    base = dict(lives=2, player_state=8, y_viewport=1, float_state=0, game_mode=1, coins=0, score=0,
                xscrollHi=0, xscrollLo=10, **{f"enemy_{i}": 0 for i in range(5)})
    _, res = Trace([base, dict(base, coins=1), dict(base, coins=1, player_state=0x0B)]).run(p)
    assert res[0].terms["coins"] == 2 and res[1].terms["death"] == -50 and res[1].reward == -50
    with pytest.raises(ProfileError, match="unknown reward term.*deaths.*its terms: x, coins"):
        with_rewards(load_profile("smb"), {"deaths": -1})
