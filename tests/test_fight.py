"""Fights as data: the RAM decoder against stable-retro's own, Street Fighter II's rules, rewards and metrics
on RAM traces (no ROM here), Atari Boxing through the same machinery on the real emulator, move macros,
mirroring, the action filter, RAM observations, and the frames between rounds on a real emulator.

Which traces are synthetic: every SF2 trace below is written by hand from the RAM facts the profile cites
(health 176 at a round's start, -1 at a KO until the refill, the BCD clock counting down). What a trace
recorded with the ROM must confirm: that the one-byte enemy round counter (0xFF845A) counts 0, 1, 2 while the
bytes before it hold other data (which is why stable-retro's >u4 enemy_matches_won reads nonsense), that the
clock reads 0 (not 99) between a time-up and the next refill, and the exact step at which the refill lands.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import stable_retro
from conftest import smb_spec, tb_scalars

from wrappers import EnvSpec, make_env, make_vec_env, roms
from wrappers.action import Discretizer, MaskSequence
from wrappers.profile import ProfileError, action_set, legal_combos, load_profile
from wrappers.ramtrace import RamImage, RamTrace, VarSpec, decode, integration_variables
from wrappers.tracker import GameTracker

REPO = Path(__file__).resolve().parent.parent

SF2 = "StreetFighterIISpecialChampionEdition-Genesis"


# --------------------------------------------------------------------------- the decoder


def _memory(game: str):
    roms.register()
    env = stable_retro.make(roms.canonical_game(game), render_mode=None, inttype=roms.INTTYPE)
    env.reset()
    return env


@pytest.mark.parametrize("game", ["Airstriker-Genesis", "SuperMarioBros-Nes", "Boxing-Atari2600"])
def test_decoder_reads_ram_as_stable_retro_does(game):
    """Random bytes in a real emulator's RAM, read with every type at even and odd addresses, both ways."""
    env = _memory(game)
    try:
        mem = env.unwrapped.data.memory
        system = roms.short_name(roms.canonical_game(game)).rsplit("-", 1)[-1]
        image = RamImage(system, {})
        base, size, swap = image.base, len(image.ram), image.swap
        rng = np.random.default_rng(0)
        start = base + (0x9000 if system == "Genesis" else 0x10)
        for i in range(48):
            mem.assign(start + i, "|u1", int(rng.integers(256)))
        ((block_base, block),) = [(k, bytes(b)) for k, b in mem.blocks.items() if k <= start < k + len(b)]
        assert block_base == base and len(block) >= min(size, 1024)
        checked = 0
        for address in range(start, start + 40):
            for t in ("|u1", "|i1", "|d1", "|n1", ">u2", "<u2", ">i2", ">u4", ">d4", ">n6", "<i4", "=u2"):
                spec = VarSpec(address, t)
                assert decode(block, address - base, spec, swap) == mem.extract(address, t), (hex(address), t)
                checked += 1
        masked = decode(block, start - base, VarSpec(start, "|u1", mask=0xF0), swap)
        assert masked == mem.extract(start, "|u1") & 0xF0
        # and writing through the image puts the bytes where stable-retro's own encoder puts them
        for address in (start + 7, start + 8):
            for t, value in ((">i2", -1), (">u2", 0x1234), (">u4", 0x01020304), (">d4", 12345678),
                             (">n6", 654321), ("<u2", 0xBEEF), ("|d1", 42)):
                mem.assign(address, t, value)
                spec = VarSpec(address, t)
                image.variables = {"v": spec}
                image.write("v", value)
                ((_, block),) = [(k, bytes(b)) for k, b in mem.blocks.items() if k <= start < k + len(b)]
                where = [(address - base + i) ^ 1 if swap else address - base + i for i in range(spec.size)]
                assert [image.ram[w] for w in where] == [block[w] for w in where], (hex(address), t)
                assert image.read("v") == value
        assert checked == 480
    finally:
        env.close()


# --------------------------------------------------------------------------- SF2 on RAM traces


def _round(start: tuple[int, int], end: tuple[int, int], steps: int = 4, timer_from: int = 90) -> list[dict]:
    """A live round: both healths move linearly from ``start`` to ``end``; the clock ticks down."""
    out = []
    for i in range(1, steps + 1):
        h = round(start[0] + (end[0] - start[0]) * i / steps)
        e = round(start[1] + (end[1] - start[1]) * i / steps)
        out.append({"health": h, "enemy_health": e, "round_timer": max(timer_from - i, 0)})
    return out


def _refill(timer: int = 99) -> list[dict]:
    """Between rounds: the KO'd health stays negative a while, then both refill."""
    return [{"round_timer": 0}, {"health": 176, "enemy_health": 176, "round_timer": timer}]


def _play(steps: list[dict], episode: str = "match"):
    profile = load_profile("sf2", game=SF2)
    first = {"health": 176, "enemy_health": 176, "round_timer": 99, "continuetimer": 0, "matches_won": 0}
    trace = RamTrace(profile, [first, *steps])
    tracker = GameTracker(profile, trace.read, episode=episode)
    tracker.reset()
    results = []
    while trace.advance():
        results.append(tracker.step())
        if results[-1].terminated:
            break
    return results, tracker


def _events(results) -> list[str]:
    return [e for r in results for e in sorted(r.events)]


def test_sf2_ko_win_pays_damage_ko_bonus_and_round():
    results, tracker = _play(_round((176, 176), (120, 30)) + [{"enemy_health": -1}], episode="round")
    assert _events(results) == ["ko_win", "round_won", "success"]
    end = results[-1]
    assert end.terminated and end.reason == "round_won"
    dealt = sum(r.terms["hit"] for r in results) / 3.0
    taken = -sum(r.terms["hurt"] for r in results)
    assert dealt == 176 and taken == 56  # the KO counts down to 0, not to -1
    assert end.terms["ko"] == pytest.approx(100 * 120 / 176)  # the bonus grows with the health left
    assert end.terms["round_won"] == 50
    assert tracker.metrics["damage_dealt"] == 176 and tracker.metrics["rounds_won"] == 1


def test_sf2_ko_loss_and_double_ko():
    results, _ = _play(_round((176, 176), (20, 100)) + [{"health": -1}], episode="round")
    assert _events(results) == ["ko_loss", "round_lost"] and results[-1].terms["round_lost"] == -50
    results, _ = _play(_round((176, 176), (10, 10)) + [{"health": -1, "enemy_health": -1}], episode="round")
    assert _events(results) == ["double_ko", "round_draw"] and results[-1].reason == "round_draw"
    assert "ko" not in {k for r in results for k, v in r.terms.items() if v}


@pytest.mark.parametrize("healths, outcome", [((150, 100), "round_won"), ((80, 120), "round_lost"),
                                              ((90, 90), "round_draw")])
def test_sf2_time_up_goes_to_the_healthier_fighter(healths, outcome):
    steps = _round((176, 176), healths, steps=3, timer_from=3)  # the clock reaches 0 on the last step
    results, _ = _play(steps, episode="round")
    assert set(_events(results)) == {"time_up", outcome} | ({"success"} if outcome == "round_won" else set())
    assert results[-1].reason == outcome


def test_sf2_match_two_rounds_to_one_and_refills_are_not_damage():
    steps = (_round((176, 176), (100, 20)) + [{"enemy_health": -1}] + _refill()
             + _round((176, 176), (40, 150)) + [{"health": -1}] + _refill()
             + _round((176, 176), (60, 10)) + [{"enemy_health": -1}])
    results, tracker = _play(steps, episode="match")
    assert [e for e in _events(results) if e.startswith(("round", "match"))] == [
        "round_won", "round_start", "round_lost", "round_start", "match_won", "round_won"]  # sorted in a step
    end = results[-1]
    assert end.terminated and end.reason == "match_won" and end.success
    assert [r.waiting for r in results].count(True) == 4  # the two steps between each pair of rounds
    # damage: only decreases in live rounds count, never the jumps back to 176
    assert tracker.metrics["damage_dealt"] == 176 + 26 + 176 and tracker.metrics["damage_taken"] == 76 + 176 + 116
    assert tracker.metrics["win_rate"] == 1 and tracker.metrics["rounds_won"] == 2
    assert tracker.metrics["rounds_lost"] == 1 and end.progress == 2


def test_sf2_lost_match_then_continue_screen_ends_the_run():
    steps = (_round((176, 176), (50, 100)) + [{"health": -1}] + _refill()
             + _round((176, 176), (20, 90)) + [{"health": -1}]
             + [{"round_timer": 0}] * 3 + [{"continuetimer": 10}])
    results, tracker = _play(steps, episode="run")
    evs = _events(results)
    assert evs.count("round_lost") == 2 and "match_lost" in evs and evs[-1] == "continue"
    assert results[-1].reason == "continue" and tracker.metrics["win_rate"] == 0
    # the same trace in match mode ends at the lost match instead
    results, _ = _play(steps, episode="match")
    assert results[-1].reason == "match_lost"


def test_sf2_one_byte_enemy_round_counter_against_stable_retros_four_byte_read():
    """stable-retro reads enemy_matches_won as >u4 at 0xFF8457; the counter is its last byte, 0xFF845A."""
    profile = load_profile("sf2", game=SF2)
    image = RamImage("Genesis", integration_variables(SF2, profile))
    image.variables["junk"] = VarSpec(0xFF8457, ">u2")  # whatever the game keeps in the bytes before it
    image.write("junk", 0x0A0B)
    image.write("enemy_rounds_won", 1)
    assert image.read("enemy_rounds_won") == 1
    assert image.read("enemy_matches_won") == 0x0A0B0001  # 168,493,057 rounds: not a counter


def test_sf2_profile_and_configs_use_the_real_integration_files():
    profile = load_profile("sf2", game=SF2)
    spec_vars = integration_variables(SF2)
    assert {"health", "enemy_health", "matches_won", "enemy_matches_won", "continuetimer", "score"} <= set(spec_vars)
    assert spec_vars["health"] == VarSpec(0xFF8042, ">i2") and spec_vars["enemy_matches_won"].type == ">u4"
    assert roms.states(SF2) == ["Champion.Level1.RyuVsGuile"]
    assert roms.canonical_game(SF2) == roms.canonical_game(SF2 + "-v0")
    moves = action_set(profile, "moves")
    assert moves.labels[-3:] == ["hadouken", "shoryuken", "tatsumaki"] and moves.has_macros


def test_sf2_ram_observation_carries_where_the_cpu_stands():
    """``dx``/``dy`` are the CPU's place less the player's, read through the Genesis byte order as the game
    holds them, and inside the observed range: the distance Boxing's RAM learners fight from."""
    from wrappers.tracker import VariableReader

    profile = load_profile("sf2", game=SF2)
    assert {"dx", "dy"} <= set(profile.observe)
    trace = RamTrace(profile, [{"x": 300, "enemy_x": 420, "y": 192, "enemy_y": 192},
                               {"x": 500, "enemy_x": 260, "y": 120, "enemy_y": 192}])
    read = VariableReader(profile, ["dx", "dy"], trace.read)  # the fight signals come from the tracker
    seen = []
    while True:
        v = read()
        seen.append((v["dx"], v["dy"]))
        if not trace.advance():
            break
    assert seen == [(120, 0), (-240, 72)]
    low, high = profile.observe["dx"]
    assert (120 - low) / (high - low) > 0.5 > (-240 - low) / (high - low) > 0  # right of centre, then left


# --------------------------------------------------------------------------- macros, mirroring, the filter


def test_sf2_action_sets_pass_stable_retros_filter_unchanged():
    """Every combination in the SF2 profile survives the Genesis action filter (checked on Airstriker's)."""
    env = _memory("Airstriker-Genesis")
    try:
        profile = load_profile("sf2", game=SF2)
        for name in profile.actions:
            actions = action_set(profile, name)
            masks = [*actions.masks] + [m for macro in actions.macros if macro for m, _ in macro]
            for mask in masks:
                assert (env.unwrapped.action_to_array(mask)[0] == mask).all(), mask
        # and a combination the filter would change is refused when the profile loads
        x_z = np.zeros(12, np.uint8)
        x_z[[10, 11]] = 1
        assert not (env.unwrapped.action_to_array(x_z)[0] == x_z).all()
        assert frozenset({"X", "Z"}) not in legal_combos(SF2)
    finally:
        env.close()


def test_illegal_combinations_start_and_bad_macros_are_profile_errors(tmp_path):
    base = load_profile("sf2", game=SF2).model_dump(exclude={"path", "name"}, exclude_none=True)
    import yaml

    for actions, message in (([["X", "Z"]], "X+Z is not a combination stable-retro lets through"),
                             ([["START"]], "START is never pressed by an agent"),
                             ([{"name": "hado", "macro": ["DOWN/3", "DOWN+RIGTH/3"]}], "unknown button 'RIGTH'"),
                             ([{"name": "hado", "macro": ["DOWN 3"]}], "macro steps are BUTTONS/FRAMES")):
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump({**base, "actions": {"a": actions}, "default_actions": "a"}))
        with pytest.raises(ProfileError) as e:
            load_profile(str(path))
        assert message in str(e.value)


def test_macros_are_mirrored_when_the_fighter_faces_left():
    env = _memory("Airstriker-Genesis")
    try:
        from wrappers.retro_game import RetroGame

        profile = load_profile("sf2", game=SF2)
        actions = action_set(profile, "moves")
        facing = [False]
        disc = Discretizer.from_action_set(RetroGame(env, frame_skip=6), actions, lambda: facing[0])
        hadouken = actions.labels.index("hadouken")
        right = disc.action(hadouken)
        facing[0] = True
        left = disc.action(hadouken)
        buttons = env.unwrapped.buttons
        names = lambda seq: [("+".join(b for b, on in zip(buttons, m) if on), n) for m, n in seq]  # noqa: E731
        assert isinstance(right, MaskSequence) and names(right) == [("DOWN", 3), ("DOWN+RIGHT", 3), ("RIGHT+Y", 6)]
        assert names(left) == [("DOWN", 3), ("DOWN+LEFT", 3), ("LEFT+Y", 6)]
        assert (disc.action(1) == actions.masks[1]).all()  # a plain LEFT is never mirrored
    finally:
        env.close()


def test_a_platformer_macro_plays_its_frames_and_counts_them(tmp_path):
    """A running jump on SMB as one agent step: 26 frames, all on the frames axis."""
    import yaml

    smb = load_profile("smb").model_dump(exclude={"path", "name"}, exclude_none=True)
    smb["actions"]["jumpy"] = [["NOOP"], ["RIGHT", "B"], {"name": "running_jump", "macro": ["RIGHT+B/6",
                                                                                          "RIGHT+A+B/20"]}]
    path = tmp_path / "smb_jumpy.yaml"
    path.write_text(yaml.safe_dump(smb))
    with make_env(smb_spec(profile=str(path), actions="jumpy", stuck_frames=None, frame_stack=1)) as env:
        env.reset()
        frames, xs = 0, []
        for a in [1] * 10 + [2] * 2:
            _, _, term, trunc, info = env.step(a)
            frames += info["frames"]
            xs.append(info["progress"])
        assert frames == 10 * 4 + 2 * 26 and not term
        assert xs[-1] > xs[9] + 30  # it ran on during the macros


# --------------------------------------------------------------------------- Boxing on the real emulator


def _boxing(**kw) -> EnvSpec:
    base = {"game": "Boxing-Atari2600", "profile": "boxing", "stuck_frames": None, "max_frames": None,
            "frame_stack": 1}
    return EnvSpec(**{**base, **kw})


def test_boxing_knock_out_through_the_fight_machinery():
    with make_env(_boxing(), seed=0) as env:
        env.reset()
        env.unwrapped.data.memory.assign(146, "|u1", 0x98)  # 98 points: two more and it is a KO
        env.get_wrapper_attr("tracker").reset()
        rng = np.random.default_rng(0)
        for _ in range(3000):
            _, r, term, trunc, info = env.step(int(rng.choice([1, 11, 10, 13])))
            if term or trunc:
                break
        assert term and info["reason"] == "bout_over"
        assert {"ko_win", "round_won", "match_won", "success"} <= info["events"]
        ep = info["episode"]
        assert ep["success"] and ep["metrics"]["win_rate"] == 1 and ep["metrics"]["kos"] == 1
        # stable-retro's own scenario never sees this KO: it decodes the KO byte 0xC0 as 20
        assert env.unwrapped.data.lookup_value("score1") == 20 and not env.unwrapped.data.is_done()


@pytest.mark.slow
def test_a_whole_boxing_bout_ends_on_the_clock_with_its_margin_and_frames():
    with make_env(_boxing(actions="combos"), seed=1) as env:
        env.reset()
        rng = np.random.default_rng(1)
        jab = env.get_wrapper_attr("labels").index("double_jab")
        total_frames = 0
        while True:
            a = jab if rng.random() < 0.3 else int(rng.integers(env.action_space.n))
            _, r, term, trunc, info = env.step(a)
            total_frames += info["frames"]
            if a == jab:
                assert info["frames"] == 12
            if term or trunc:
                break
        data = env.unwrapped.data
        ep = info["episode"]
        assert term and info["reason"] == "bout_over" and "time_up" in info["events"]
        assert data.lookup_value("minutes") == 0 and data.lookup_value("seconds") == 0
        margin = data.lookup_value("score1") - data.lookup_value("score2")
        assert ep["r"] == margin  # the return is the score margin, the figure papers report
        assert ep["metrics"]["points_for"] == data.lookup_value("score1")
        assert ep["frames"] == total_frames and 7000 < total_frames < 8000  # a 2:00 bout at 60 frames/s
        assert ep["actions"]["double_jab"] > 0 and sum(ep["actions"].values()) == ep["l"]


def test_boxing_positions_move_with_the_boxer_and_the_clock_runs_down():
    """The AtariARI addresses in the profile are the boxers' places: RIGHT raises the player's x, DOWN its y,
    LEFT and UP bring them back; dx and dy are the CPU's place from the player's; the clock counts down."""
    with make_env(_boxing(obs="ram", frame_stack=1), seed=0) as env:
        env.reset()
        tracker = env.get_wrapper_attr("tracker")
        ale = {"UP": 2, "RIGHT": 3, "LEFT": 4, "DOWN": 5}

        def hold(action, steps=15):
            for _ in range(steps):
                env.step(ale[action])
            v = dict(tracker.last_values)
            assert v["dx"] == v["x2"] - v["x1"] and v["dy"] == v["y2"] - v["y1"]
            return v

        start = dict(tracker.last_values)
        assert (start["x1"], start["x2"]) == (30, 109) and start["clock"] == 119  # 1:59 after the first step
        right = hold("RIGHT")
        assert right["x1"] > start["x1"] + 20 and right["y1"] == start["y1"]
        down = hold("DOWN")
        assert down["y1"] > right["y1"] + 20 and down["x1"] == right["x1"]
        left = hold("LEFT")
        assert left["x1"] < down["x1"] - 20
        up = hold("UP")
        assert up["y1"] < left["y1"] - 20
        assert up["clock"] < start["clock"]
        ram = env.unwrapped.get_ram()
        assert (up["x1"], up["x2"], up["y1"], up["y2"]) == tuple(int(ram[i]) for i in (32, 33, 34, 35))


def test_ram_observation_alone_and_beside_pixels_through_the_vec_env():
    with make_env(_boxing(obs="ram", frame_stack=3), seed=0) as env:
        obs, _ = env.reset()
        n = len(load_profile("boxing").observe)  # scores, positions, distances, clock
        assert n == 9 and env.observation_space.shape == (3 * n,) and obs.dtype == np.float32
        for _ in range(200):
            obs, *_ = env.step(1)
        assert ((obs >= 0) & (obs <= 1)).all()
    venv = make_vec_env(_boxing(obs="pixels+ram", frame_stack=2), n_envs=2, seed=0)
    try:
        obs = venv.reset()
        assert obs["pixels"].shape == (2, 2, 84, 84) and obs["ram"].shape == (2, 9)
        score2 = obs["ram"][:, 1].copy()
        for _ in range(300):
            obs, _, _, _ = venv.step(np.array([1, 1]))
        assert (obs["ram"][:, :2] > 0).any() and (obs["ram"][:, 1] != score2).any()  # the bout's points show
        assert venv.frames == 300 * 2 * 4  # every emulator frame both envs played
    finally:
        venv.close()


def test_pixels_beside_ram_learn_through_relu_layers_and_a_saved_policy_keeps_its_activation(tmp_path):
    """SB3's tanh heads saturated on the Nature CNN's unbounded features (boxing_ppo_pixram: a constant
    value for every observation); the multi-input policy uses ReLU, and model.json says which one a file
    holds, so a policy saved before the change still plays with the tanh it learned with."""
    import json

    import torch

    from agents.sb3_agents import PPOAgent, PPOSpec

    env_spec = _boxing(obs="pixels+ram", frame_stack=2)
    agent = PPOAgent(PPOSpec.model_validate({"algo": "ppo", "policy": "multi", "n_envs": 2,
                                             "hyperparams": {"n_steps": 16, "batch_size": 32, "n_epochs": 1}}),
                     env_spec, seed=1)
    venv = make_vec_env(env_spec, n_envs=2, seed=0)
    try:
        agent.model = agent._new_model(venv)
        agent.model.learn(total_timesteps=32)
        obs = venv.reset()
    finally:
        venv.close()
    hidden = lambda m: {type(x) for x in m.policy.mlp_extractor.modules() if not isinstance(  # noqa: E731
        x, (torch.nn.Sequential, torch.nn.Linear)) and x is not m.policy.mlp_extractor}
    assert hidden(agent.model) == {torch.nn.ReLU}
    agent.save(tmp_path / "a")
    assert json.loads((tmp_path / "a" / "model.json").read_text())["activation"] == "relu"
    loaded = PPOAgent.load(tmp_path / "a")
    assert hidden(loaded.model) == {torch.nn.ReLU}
    values = lambda m: m.policy.predict_values(m.policy.obs_to_tensor(obs)[0]).detach()  # noqa: E731
    assert torch.allclose(values(loaded.model), values(agent.model))
    # a file from before the change names no activation: it was SB3's tanh, and plays as such
    doc = json.loads((tmp_path / "a" / "model.json").read_text())
    del doc["activation"]
    (tmp_path / "a" / "model.json").write_text(json.dumps(doc))
    old = PPOAgent.load(tmp_path / "a")
    assert hidden(old.model) == {torch.nn.Tanh}
    assert not torch.allclose(values(old.model), values(agent.model))
    doc["activation"] = "os.system"
    (tmp_path / "a" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(Exception, match="activation"):
        PPOAgent.load(tmp_path / "a")


def test_ram_stack_gives_pixels_beside_ram_the_last_readings_and_only_there():
    from wrappers.settings import env_problems

    with make_env(_boxing(obs="pixels+ram", frame_stack=2, ram_stack=3), seed=0) as env:
        obs, _ = env.reset()
        assert obs["pixels"].shape == (2, 84, 84) and obs["ram"].shape == (27,)
        assert (obs["ram"][:9] == obs["ram"][18:]).all()  # the stack starts filled with the first reading
        for _ in range(5):
            obs, *_ = env.step(3)  # RIGHT, before the boxers meet: x grows step by step
        oldest, middle, newest = obs["ram"].reshape(3, 9)
        x1 = list(load_profile("boxing").observe).index("x1")
        assert oldest[x1] < middle[x1] < newest[x1]
    with make_env(_boxing(obs="pixels+ram", frame_stack=2), seed=0) as env:
        assert env.observation_space["ram"].shape == (9,)  # unset: the newest reading, as before ram_stack
    assert env_problems({"game": "Boxing-Atari2600", "profile": "boxing", "obs": "ram", "ram_stack": 2}) == [
        ("ram_stack", "stacks the RAM part of obs: pixels+ram; with obs: ram, frame_stack stacks the readings: "
                      "leave ram_stack out")]


def test_obs_ram_needs_an_observe_section():
    from wrappers.settings import env_problems

    assert env_problems({"game": "SuperMarioBros-Nes", "profile": "smb", "obs": "ram"}) == [
        ("obs", "ram needs the variables to observe: profile smb has no observe section")]


# --------------------------------------------------------------------------- between rounds, on a real emulator


def test_frames_between_rounds_are_played_without_input_and_counted(tmp_path):
    """A made-up fight on SMB: a "round" ends when Mario has walked 20 px; the next one starts when the game's
    clock has ticked down to 397 (a tick is ~24 frames). The wait is played inside the agent step, with no
    button pressed."""
    import yaml

    smb = load_profile("smb").model_dump(exclude={"path", "name"}, exclude_none=True)
    smb["fight"] = {"round_over": {"var": "player_x", "op": "ge", "value": 60},
                    "won": {"var": "player_x", "op": "ge", "value": 60},
                    "lost": {"var": "lives", "op": "lt", "value": 0},
                    "round_start": {"var": "time", "op": "le", "value": 397}, "rounds_to_win": 2}
    smb["done"] = {}
    smb["rewards"] = {"x": {"delta": "x"}}
    path = tmp_path / "smb_fight.yaml"
    path.write_text(yaml.safe_dump(smb))
    with make_env(smb_spec(profile=str(path), stuck_frames=None, frame_stack=1, actions="right_only")) as env:
        env.reset()
        data = env.unwrapped.data
        assert data.lookup_value("time") == 400
        for _ in range(200):
            _, _, term, _, info = env.step(1)  # RIGHT
            if "round_won" in info["events"]:
                break
        assert "round_won" in info["events"] and "round_start" in info["events"] and not term
        assert info["frames"] >= 4 + 24  # at least one clock tick of waiting is inside this step
        assert data.lookup_value("time") == 397
        x_after = data.lookup_value("player_x")
        assert x_after < 60 + 30  # nothing was pressed while waiting: Mario slowed to a stop
        _, _, term, _, info = env.step(0)
        assert term and info["reason"] == "match_won"  # round 2 is won at once: Mario stands past x 60


@pytest.mark.slow
def test_neat_learns_from_ram_variables_on_boxing(tmp_path):
    import yaml

    from experiments.cli import main

    exp = tmp_path / "boxing_neat.yaml"
    exp.write_text(yaml.safe_dump({
        "name": "boxing_neat", "game": "Boxing-Atari2600", "profile": "boxing",
        "env": {"obs": "ram", "frame_stack": 1, "stuck_frames": None, "max_frames": 400, "actions": "combos"},
        "agent": {"algo": "neat", "config": "sf2", "pop_size": 8, "workers": 1, "last_action": True},
        "budget": {"frames": 10_000_000, "generations": 4}, "eval": {"every_frames": 10**9, "episodes": 1}}))
    assert main(["train", str(exp), "--runs-dir", str(tmp_path / "runs")]) == 0
    (run,) = (tmp_path / "runs" / "boxing_neat").iterdir()
    import neat

    cfg = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                      neat.DefaultStagnation, str(run / "neat.cfg"))
    observed = len(load_profile("boxing").observe)  # scores, places, distances, clock
    assert cfg.genome_config.num_inputs == observed + 14 and cfg.genome_config.num_outputs == 14  # + last action
    # and it learns: the score margin of the best and of the average genome rises over four generations
    # (seeded and deterministic: 2 -> 6 and -2.6 -> -0.4 points)
    best = [v for _, v in tb_scalars(run, "neat/best_fitness")]
    mean = [v for _, v in tb_scalars(run, "neat/mean_fitness")]
    assert len(best) == len(mean) == 4
    assert best[-1] > best[0] and best == sorted(best) and mean[-1] > mean[0] + 2


@pytest.mark.parametrize("name", ["sf2_ppo_lstm", "sf2_ppo_ram", "sf2_ppo_pixram"])
def test_sf2_experiments_say_which_rom_to_import(capsys, name):
    from experiments.cli import main

    assert main(["train", name, "--runs-dir", "/nonexistent/never"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "No ROM for StreetFighterIISpecialChampionEdition-Genesis" in err and "retrodojo roms import PATH" in err
    assert "Special Champion Edition (USA), No-Intro" in err and "Traceback" not in err


def test_episode_seeds_give_a_genome_one_fitness_under_sticky_actions_and_no_ops():
    """With ``agent.episode_seeds`` a genome's episodes meet the same sticky-action and no-op draws whatever the
    worker's random stream, so its fitness under that noise is a fact; without them two workers differ."""
    import neat

    from agents.neat_agent import NEATSpec
    from agents.neat_config import load_neat_config
    from agents.neat_play import play_genome

    spec = _boxing(obs="ram", max_frames=400, sticky_prob=0.25, noop_max=30, actions="ale")
    config, _ = load_neat_config("sf2", len(load_profile("boxing").observe), 18, pop_size=4)
    genomes = list(neat.Population(config, seed=4).population.values())

    def play(seed: int, episodes):
        out = []
        with make_env(spec, seed=seed) as env:
            env.reset()
            env.get_wrapper_attr("rng").random(seed * 7)  # a worker's stream, wherever it stands
            for g in genomes:
                out.append(play_genome(g, env, config, True, 1.0, episodes=episodes))
        return out

    a, b = play(1, (5, 6)), play(2, (5, 6))
    assert [f for f, _ in a] == [f for f, _ in b]
    assert [[(e["r"], e["frames"]) for e in eps] for _, eps in a] == [[(e["r"], e["frames"]) for e in eps]
                                                                      for _, eps in b]
    # the noise is there: without seeds the same genomes score differently in the two workers
    c, d = play(1, 2), play(2, 2)
    assert [[e["r"] for e in eps] for _, eps in c] != [[e["r"] for e in eps] for _, eps in d]
    assert NEATSpec(algo="neat", episode_seeds=[5, 6]).episode_seeds == [5, 6]
    with pytest.raises(ValueError, match="give one of the two"):
        NEATSpec(algo="neat", episode_seeds=[5, 6], episodes_per_genome=3)


def test_a_neat_run_with_episode_seeds_plays_every_genome_under_them(tmp_path, capsys):
    """The agent hands its episode seeds to the workers: the saved champion, replayed under the same seeds in a
    fresh env, scores exactly its recorded fitness (with sticky actions on, a worker's own stream would not);
    a pool weighted by failures is refused beside them."""
    import yaml

    from agents.base import load as load_agent
    from agents.neat_agent import NEATAgent, NEATSpec
    from agents.neat_play import play_genome
    from experiments.cli import main

    env = {"obs": "ram", "frame_stack": 1, "stuck_frames": None, "max_frames": 300, "actions": "ale",
           "sticky_prob": 0.25, "noop_max": 30}
    exp = tmp_path / "boxing_seeds.yaml"
    exp.write_text(yaml.safe_dump({
        "name": "boxing_seeds", "game": "Boxing-Atari2600", "profile": "boxing", "env": env,
        "agent": {"algo": "neat", "config": "sf2", "pop_size": 6, "workers": 1, "episode_seeds": [3, 4]},
        "budget": {"frames": 10_000_000, "generations": 1}, "eval": {"every_frames": 10**9, "episodes": 1}}))
    assert main(["train", str(exp), "--runs-dir", str(tmp_path / "runs")]) == 0
    (run,) = (tmp_path / "runs" / "boxing_seeds").iterdir()
    (best,) = [v for _, v in tb_scalars(run, "neat/best_fitness")]
    agent = load_agent(run / "final")
    with make_env(_boxing(**env), seed=99) as e:
        e.reset()
        fitness, eps = play_genome(agent.champion, e, agent.config, True, agent.input_scale, episodes=(3, 4))
    assert fitness == best and len(eps) == 2
    pool = _boxing(**env).model_copy(update={"state": ["Start", "Start"], "pool_weighting": "failures"})
    (problem,) = NEATAgent.problems(NEATSpec(algo="neat", config="sf2", episode_seeds=[3]), pool)
    assert problem[0] == "episode_seeds" and "pool_weighting: fixed" in problem[1]
    # and so is an experiment file that asks for both, before any run folder exists
    data = yaml.safe_load(exp.read_text())
    data["states"] = ["Start", "Start"]
    data["env"]["pool_weighting"] = "failures"
    exp.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    assert main(["train", str(exp), "--runs-dir", str(tmp_path / "runs2")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "agent.episode_seeds: fixed episode seeds and env.pool_weighting: failures" in err, err
    assert not (tmp_path / "runs2").exists()


@pytest.mark.slow
def test_the_random_policy_plays_the_fresh_bouts_of_an_env_seed_as_evaluate_does():
    """scripts/random_policy.py --env-seed N plays the bouts `retrodojo evaluate --seed N` plays: the same seed
    twice gives the same bout, another seed another one, and the JSON says which it was."""
    import subprocess
    import sys

    def bout(*extra):
        out = subprocess.run([sys.executable, "scripts/random_policy.py", "boxing_ppo_ram", "--episodes", "1",
                              "--json", *extra], cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
        return json.loads(out.stdout)

    one, again, two, fixed = bout("--env-seed", "1"), bout("--env-seed", "1"), bout("--env-seed", "2"), bout()
    assert one["env_seed"] == 1 and two["env_seed"] == 2 and fixed["env_seed"] is None
    assert one["mean"] == again["mean"] and one["returns"] == again["returns"]
    # sticky actions and no-ops drawn from another seed: another bout (the points, frames and margin all tie
    # by chance only rarely)
    assert one["mean"] != two["mean"] and one["mean"] != fixed["mean"], (one["mean"], two["mean"])
