"""The backward curriculum: states cut from an episode, shared start states for NEAT, the backward step,
and resuming a curriculum run exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import meta, one_run, smb_spec, tb_scalars

from experiments.cli import main
from experiments.curriculum import Curriculum, CurriculumError, CurriculumSettings
from experiments.spec import SpecError, load_spec


def _episode(progress, frames=600, cuts=(), success=False, state="Level1-1"):
    return {"progress": progress, "frames": frames, "success": success, "state": state, "r": progress,
            "cuts": list(cuts)}


def _cuts(step_frames=60, n=10, px=100.0):
    return [{"frames": i * step_frames, "progress": i * px, "return": i * px / 2, "state": f"state{i}".encode(),
             "action": None if i == 0 else i % 5} for i in range(n)]


# --------------------------------------------------------------------------- the decisions, on made-up episodes


def test_backward_step_moves_the_pool_back_and_raises_the_real_starts_share():
    cur = Curriculum(CurriculumSettings(size=2, window=4, advance_at=0.5, margin_frames=60), start="Level1-1")
    # the episode ended at frame 600 at progress 950: cuts at 60..540 are usable, the one at 600 is too late
    assert cur.after_eval(0, [_episode(950, 600, _cuts())])
    assert cur.frontier == 950
    assert [s.progress for s in cur.source] == [100, 200, 300, 400, 500, 600, 700, 800, 900]
    names = cur.pool_states()
    assert [cur._by_name(n).progress for n in names] == [800, 900]  # just behind the frontier
    extra, weights = cur.pool()
    assert set(extra) == set(names) and extra[names[0]] == b"state8"
    assert weights == {"Level1-1": 0.5, names[0]: 0.25, names[1]: 0.25}
    assert cur.offsets() == {names[0]: 400.0, names[1]: 450.0}  # the source's return up to each state
    assert cur.actions() == {names[0]: 3, names[1]: 4}  # and the action it took just before

    # failures (not past the frontier) do not move it; neither do episodes from other starts
    fail = [_episode(40, state=names[1]), _episode(49, state=names[1]), _episode(5000, state="Level1-1")]
    assert not cur.observe(fail)
    assert cur.pool_states() == names
    # passing the frontier (900 + 51 > 950) from the pool's states does, once half the window succeeds
    assert cur.observe([_episode(51, state=names[1]), _episode(151, state=names[0])])
    assert cur.step == 1
    assert [cur._by_name(n).progress for n in cur.pool_states()] == [700, 800]
    assert cur.start_share() == pytest.approx(0.5 + 0.5 * 1 / 9)
    assert cur.scalars()["curriculum/success"] == pytest.approx(0.5)  # the rate that made the step

    # walked back to the start: only the real start is left, with all the weight
    cur.step = 9
    assert cur.pool_states() == [] and cur.start_share() == 1.0 and cur.pool() == ({}, {})

    # an evaluation that goes further is a new frontier: states re-cut, the walk starts again
    assert not cur.after_eval(100, [_episode(940, 600, _cuts())])  # not further: nothing changes
    assert cur.after_eval(200, [_episode(1200, 700, _cuts(n=12))])
    assert cur.frontier == 1200 and cur.step == 0 and len(cur.pool_states()) == 2


def test_an_episode_that_stalled_gives_no_states_from_its_stall():
    """An episode ended for making no progress spends its last seconds against the wall: the states come from
    before it first stood there."""
    cur = Curriculum(CurriculumSettings(size=2, margin_frames=60), start="S")
    rise = _cuts(n=8)  # 0..700 px by frame 420
    stall = [{**rise[-1], "frames": f} for f in (480, 540, 600, 660)]  # against the wall until frame 660
    assert cur.after_eval(0, [_episode(700, 700, rise + stall)])
    assert cur.frontier == 700
    assert [s.frames for s in cur.source] == [60, 120, 180, 240, 300, 360]  # up to 420 - 60, none of the stall
    assert [cur._by_name(n).progress for n in cur.pool_states()] == [500, 600]


def test_profile_success_counts_as_passing_and_beyond_raises_the_bar():
    cur = Curriculum(CurriculumSettings(size=1, window=1, beyond=100), start="S")
    cur.after_eval(0, [_episode(500, 600, _cuts(px=50))])
    (name,) = cur.pool_states()
    at = cur._by_name(name).progress
    assert not cur.observe([_episode(500 - at + 100, state=name)])  # at the frontier + 100: not beyond it
    assert cur.observe([_episode(1, state=name, success=True)])  # the level's own success always counts


def test_stall_trigger_waits_for_progress_to_stop_rising():
    cur = Curriculum(CurriculumSettings(stall_frames=1000), start="S")
    assert not cur.after_eval(0, [_episode(100, cuts=_cuts())])
    assert not cur.after_eval(600, [_episode(200, cuts=_cuts())])  # still rising
    assert not cur.after_eval(1500, [_episode(200, cuts=_cuts())])  # 900 frames without a rise
    assert not cur.active and cur.pool_states() == []
    assert cur.after_eval(1600, [_episode(200, cuts=_cuts())])  # 1000 frames: it starts
    assert cur.active and cur.frontier == 200


def test_checkpoint_round_trip_and_a_damaged_one(tmp_path):
    cur = Curriculum(CurriculumSettings(size=2, window=2), start="Level1-1")
    cur.after_eval(0, [_episode(950, 600, _cuts())])
    cur.observe([_episode(10, state=cur.pool_states()[0])])
    cur.save(tmp_path)
    back = Curriculum(CurriculumSettings(size=2, window=2), start="Level1-1")
    back.load(tmp_path)
    assert back.pool() == cur.pool() and back.scalars() == cur.scalars()
    assert list(back.recent) == list(cur.recent) and back.per_state == cur.per_state

    doc = json.loads((tmp_path / "curriculum.json").read_text())
    doc["source"][0]["name"] = "../../etc/passwd"
    (tmp_path / "curriculum.json").write_text(json.dumps(doc))
    with pytest.raises(CurriculumError, match="curriculum is unreadable.*bad state name"):
        back.load(tmp_path)
    (tmp_path / "curriculum.json").write_text("{not json")
    with pytest.raises(CurriculumError, match=r"curriculum\.json.*Delete the checkpoint folder"):
        back.load(tmp_path)


def test_a_curriculum_needs_one_real_start(tmp_path):
    with pytest.raises(SpecError, match="one real start"):
        load_spec("smb_neat", ["curriculum.size=2", "states=[Level1-1, Level2-1]", "state=null"])
    with pytest.raises(SpecError, match="eval.states"):
        load_spec("smb_neat", ["curriculum.size=2", "eval.states=[Level2-1]"])
    with pytest.raises(SpecError, match="curriculum.sise: unknown key, did you mean size"):
        load_spec("smb_neat", ["curriculum.sise=2"])
    assert load_spec("smb_neat", ["curriculum.size=3"]).start_state() == "Level1-1"


# --------------------------------------------------------------------------- the real emulator


class _Scripted:
    """A policy replaying a fixed action list (the scripted run of 1-1)."""

    def __init__(self, actions):
        self.actions, self.i = actions, 0

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if episode_start is not None and episode_start[0]:
            self.i = 0
        a = self.actions[min(self.i, len(self.actions) - 1)]
        self.i += 1
        return np.array([a]), None


def _x(env) -> int:
    data = env.unwrapped.data
    return 256 * data.lookup_value("xscrollHi") + data.lookup_value("xscrollLo")


def test_states_cut_from_an_episode_start_where_they_were_cut(smb_run):
    from experiments.evaluate import Evaluator
    from wrappers import make_env

    spec = smb_spec(stuck_frames=None)
    ev = Evaluator(spec, episodes=1)
    try:
        (episode,) = ev.run(_Scripted(smb_run[:200]), cut_every=240)["episodes"]
    finally:
        ev.close()
    cuts = episode["cuts"]
    assert [c["frames"] for c in cuts] == list(range(0, 240 * len(cuts), 240))
    assert len(cuts) == -(-episode["frames"] // 240)  # one at the start and every 240 frames after
    progress = [c["progress"] for c in cuts]
    assert progress[0] == 0 and progress == sorted(progress) and progress[-1] > 500
    # the smb profile pays x: the return so far is the progress so far
    assert [c["return"] for c in cuts] == progress
    # and each cut keeps the action taken just before it (none before the first step)
    assert [c["action"] for c in cuts] == [None] + [smb_run[c["frames"] // 4 - 1] for c in cuts[1:]]
    with make_env(spec) as env:
        env.reset()
        x0 = _x(env)
        extra = {f"curriculum-{i}": c["state"] for i, c in enumerate(cuts)}
        env.get_wrapper_attr("set_pool")(extra, None)
        for i, p in enumerate(progress):
            _, info = env.reset(options={"state": f"curriculum-{i}"})
            assert info["state"] == f"curriculum-{i}"
            # stable-retro's reset plays one frame after loading a state: Mario's momentum carries him a few px
            assert 0 <= _x(env) - x0 - p <= 4, f"state {i} should start {p} px into the level, not {_x(env) - x0}"
            _, _, _, _, info = env.step(1)  # progress counts from the state's own start
            assert 0 <= info["progress"] < 20
        env.get_wrapper_attr("set_pool")(None)
        assert env.reset()[1]["state"] == "Level1-1"


def test_a_genome_starting_at_a_cut_state_remembers_the_action_before_it():
    from agents.neat_config import load_neat_config
    from agents.neat_play import Actor

    config, _ = load_neat_config("smb", 208 + 5, 5, pop_size=4)
    import neat

    genome = next(iter(neat.Population(config, seed=3).population.values()))
    actor = Actor(genome, config, discrete=True, scale=1.0, last_action=True)
    actor.reset(3)
    assert actor.last.tolist() == [0, 0, 0, 1, 0]
    actor.reset()
    assert actor.last.tolist() == [0] * 5
    buttons = Actor(genome, config, discrete=False, scale=1.0, last_action=True)
    buttons.reset([0.0, 1.0, 0.0, 1.0, 1.0])
    assert buttons.last.tolist() == [0, 1, 0, 1, 1]


def test_set_pool_weights_decide_the_draws_and_names_are_checked():
    from wrappers import make_env

    with make_env(smb_spec(), seed=3) as env:
        env.reset()
        snap = env.get_wrapper_attr("emulator_state")()
        set_pool = env.get_wrapper_attr("set_pool")
        with pytest.raises(ValueError, match="named curriculum-"):
            set_pool({"Level1-1x": snap})
        set_pool({"curriculum-a": snap}, {"Level1-1": 1.0, "curriculum-a": 3.0})
        draws = [env.reset()[1]["state"] for _ in range(400)]
        share = draws.count("curriculum-a") / len(draws)
        assert 0.68 < share < 0.82  # 0.75 expected
        set_pool({"curriculum-a": snap}, {"Level1-1": 0.0, "curriculum-a": 1.0})
        assert {env.reset()[1]["state"] for _ in range(20)} == {"curriculum-a"}


def test_shared_starts_give_a_genome_the_same_fitness_whatever_the_draw(smb_run):
    """Two workers with different random streams play the same genome from the same weighted starts: the
    same fitness, the weighted mean of its returns from each start."""
    import neat

    from agents.neat_config import load_neat_config
    from agents.neat_play import play_genome
    from experiments.evaluate import Evaluator
    from wrappers import make_env

    spec = smb_spec(obs="tiles", frame_stack=1, stuck_frames=120)
    ev = Evaluator(spec, episodes=1)
    try:
        (episode,) = ev.run(_Scripted(smb_run[:200]), cut_every=200)["episodes"]
    finally:
        ev.close()
    extra = {f"curriculum-{i}": c["state"] for i, c in enumerate(episode["cuts"][1:3])}
    weights = {"Level1-1": 0.5, "curriculum-0": 0.3, "curriculum-1": 0.2}
    offsets = {"curriculum-0": episode["cuts"][1]["return"], "curriculum-1": episode["cuts"][2]["return"]}
    actions = {"curriculum-0": episode["cuts"][1]["action"], "curriculum-1": episode["cuts"][2]["action"]}
    config, _ = load_neat_config("smb", 208, 5, pop_size=4)
    pop = neat.Population(config, seed=11)
    genome = next(iter(pop.population.values()))
    results = []
    for seed in (1, 2):
        with make_env(spec.model_copy(update={"state": ["Level1-1"]}), seed=seed) as env:
            env.get_wrapper_attr("rng").random(seed * 17)  # different draws before the genome plays
            results.append(play_genome(genome, env, config, True, 1.0, starts=(extra, weights, offsets, actions)))
            # back to no pool: the worker's env forgets the states (its next genome starts at the real start)
            play_genome(genome, env, config, True, 1.0)
            assert env.get_wrapper_attr("pool_weights")() == {"Level1-1": 1.0}
    (f1, eps1), (f2, eps2) = results
    assert f1 == f2
    assert [e["state"] for e in eps1] == list(weights)  # every start once, in the pool's order
    assert [e["r"] for e in eps1] == [e["r"] for e in eps2]
    # each start scores as a whole episode: the source's return up to it, then the genome's from it
    assert f1 == pytest.approx(sum(w * (e["r"] + offsets.get(e["state"], 0.0)) for w, e in
                                   zip(weights.values(), eps1)) / sum(weights.values()))


def _neat_experiment(tmp_path: Path, generations: int) -> Path:
    data = {
        "name": "tiny_neat_cur", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 120},
        "agent": {"algo": "neat", "config": "smb", "pop_size": 8, "workers": 2, "last_action": True},
        "budget": {"frames": 10_000_000, "generations": generations}, "seeds": [5],
        "eval": {"every_frames": 1, "episodes": 1},
        "curriculum": {"every_frames": 60, "size": 2, "window": 2, "advance_at": 0.5},
    }
    path = tmp_path / f"cur{generations}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_a_curriculum_run_resumes_exactly(tmp_path):
    """Four generations straight, or two then a resume to four: the same champions, fitnesses, pools."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", str(_neat_experiment(tmp_path, 4)), "--runs-dir", str(straight)]) == 0
    assert main(["train", str(_neat_experiment(tmp_path, 2)), "--runs-dir", str(split)]) == 0
    run_b = one_run(split)
    assert main(["train", "--resume", str(run_b), "--set", "budget.generations=4"]) == 0
    run_a = one_run(straight)
    for tag in ("neat/best_fitness", "neat/best_progress", "curriculum/frontier_x", "curriculum/start_share",
                "curriculum/states", "eval/progress"):
        a, b = tb_scalars(run_a, tag), tb_scalars(run_b, tag)
        assert a and a == b, tag
    assert tb_scalars(run_a, "curriculum/states")[-1][1] > 0  # the pool was in play
    last = [sorted((r / "checkpoints").iterdir())[-1] for r in (run_a, run_b)]
    ca, cb = (json.loads((c / "curriculum.json").read_text()) for c in last)
    assert ca == cb and ca["frontier"] > 0
    assert json.loads((run_a / "final" / "agent.json").read_text())["fitness"] == \
        json.loads((run_b / "final" / "agent.json").read_text())["fitness"]
    assert meta(run_a)["status"] == meta(run_b)["status"] == "finished"


@pytest.mark.slow
def test_ppo_trains_from_the_pool_the_run_pushes(tmp_path):
    data = {
        "name": "tiny_ppo_cur", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "resize": [42, 42], "frame_stack": 2, "stuck_frames": 240,
                "max_frames": 1200},
        "agent": {"algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1}},
        "budget": {"frames": 12_000}, "seeds": [1], "eval": {"every_frames": 4_000, "episodes": 1},
        "curriculum": {"every_frames": 30, "size": 2, "start_share": 0.2, "window": 1000},
    }
    path = tmp_path / "ppo.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["train", str(path), "--runs-dir", str(tmp_path / "runs")]) == 0
    run = one_run(tmp_path / "runs")
    states = tb_scalars(run, "curriculum/states")
    # on from the first evaluation whose episode moved (a fresh policy's first one may stand still)
    assert states and states[-1][1] == 2 and states[0][0] == 0
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    doc = json.loads((ckpt / "curriculum.json").read_text())
    assert len(list((ckpt / "curriculum").glob("*.state"))) == len(doc["source"]) > 0
    # 80% of episodes start from the pool's states: they feed the curriculum's counts, not train/*
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    per_state = [t for t in acc.Tags()["scalars"] if t.startswith("curriculum/success/at")]
    assert per_state, acc.Tags()["scalars"]
    # the counts start again with each pool; the walk back is made of them too
    assert sum(n for _, n in doc["per_state"].values()) > 0 or doc["step"] > 0, doc


def test_the_champion_is_a_genome_that_reached_the_goal_from_the_real_start():
    from types import SimpleNamespace

    from agents.neat_agent import NEATAgent

    agent = NEATAgent.__new__(NEATAgent)
    fittest, solver, other_solver = (SimpleNamespace(key=k, fitness=f) for k, f in [(1, 900.0), (2, 700.0),
                                                                                    (3, 650.0)])
    agent._solvers = []
    assert agent.pick_champion(fittest) is fittest  # nobody reached the goal: neat-python's best
    agent._solvers = [other_solver, solver]
    assert agent.pick_champion(fittest) is solver  # the fittest of those who did
    agent._solvers = [solver, fittest]
    assert agent.pick_champion(fittest) is fittest


def test_from_a_cut_state_a_ram_observer_replays_the_episode_exactly(smb_run):
    """With tile (RAM) observations an added state starts without RetroEnv.reset's extra no-button frame, so
    the same actions from there give the same episode as the one it was cut from, frame for frame."""
    from experiments.evaluate import Evaluator
    from wrappers import make_env

    spec = smb_spec(obs="tiles", frame_stack=1, stuck_frames=None)
    ev = Evaluator(spec, episodes=1)
    try:
        (episode,) = ev.run(_Scripted(smb_run[:150]), cut_every=160)["episodes"]
    finally:
        ev.close()
    with make_env(spec) as env:
        env.reset()
        x0, xs = _x(env), []
        for a in smb_run[:150]:
            env.step(a)
            xs.append(_x(env) - x0)
        cuts = episode["cuts"][1:4]  # frames 160, 320, 480: steps 40, 80, 120 of the 150 played
        env.get_wrapper_attr("set_pool")({f"curriculum-{i}": c["state"] for i, c in enumerate(cuts)}, None)
        for i, c in enumerate(cuts):
            env.reset(options={"state": f"curriculum-{i}"})
            step = c["frames"] // 4
            assert _x(env) - x0 == c["progress"] == xs[step - 1]  # where it was cut, not a frame later
            replay = []
            for a in smb_run[step:min(step + 30, 150)]:
                env.step(a)
                replay.append(_x(env) - x0)
            assert replay == xs[step:min(step + 30, 150)], f"from the state cut at {c['frames']} frames the " \
                                                              "episode went another way"
