"""Judging runs: evaluate any state and checkpoint, bk2 movies and their replay, held-out evaluation during
training, the best policy, statistics with intervals, compare's groups and its HTML page, TensorBoard's hparams."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import meta, tb_scalars

from experiments import stats
from experiments.cli import main


def neat_experiment(tmp_path: Path, name: str = "judge", pop: int = 6, generations: int = 2, **extra) -> Path:
    data = {
        "name": name, "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 120},
        "agent": {"algo": "neat", "config": "smb", "pop_size": pop, "workers": 2, "last_action": True},
        "budget": {"frames": 10_000_000, "generations": generations}, "seeds": [1],
        "eval": {"every_frames": 1, "episodes": 1}, **extra,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------- statistics


def test_iqm_and_probability_of_improvement_by_hand():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # the middle half: 3, 4, 5, 6
    assert stats.iqm([1, 2, 100]) == pytest.approx(np.mean([1, 2, 100]))  # nothing to trim from 3 values
    # P(X > Y): pairs (1,0) (1,2) (1,4) (3,0) (3,2) (3,4): wins 1+0+0+1+1+0 = 3 of 6
    assert stats.probability_of_improvement([1, 3], [0, 2, 4]) == pytest.approx(0.5)
    assert stats.probability_of_improvement([5, 5], [5, 5]) == pytest.approx(0.5)  # ties count half
    assert stats.probability_of_improvement([[2, 9], [3, 9]], [[1, 9], [1, 10]]) == pytest.approx((1 + 0.25) / 2)


def test_windowed_curves_are_drawn_on_an_even_grid():
    from experiments.compare import Group, _curves, curve_grid

    # 8 envs ending their bouts on one clock: four values logged at each of two frame counts
    frames = np.array([100.0] * 4 + [200.0] * 4)
    g = Group(key="k", config={}, runs=[{"frames": frames, "values": np.array([0, 4, 0, 4, 10, 10, 10, 10.0])}])
    assert list(curve_grid(g)) == [100.0, 200.0]
    assert list(curve_grid(g, window=50, points=3)) == [150.0, 175.0, 200.0]  # from one window in to the end
    (curve,) = _curves(g, np.array([150.0, 200.0]), window=100)
    assert list(curve) == [2.0, 10.0]  # the mean of the bout ends in (at - 100, at], not the last one logged


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate():
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, size=10)
    a = stats.stratified_bootstrap(x, stats.iqm, reps=500, seed=1)
    assert a == stats.stratified_bootstrap(x, stats.iqm, reps=500, seed=1)  # reproducible
    assert a[1] <= a[0] <= a[2] and a[2] - a[1] < 6
    wide = stats.stratified_bootstrap(x[:3], stats.iqm, reps=500, seed=1)
    assert wide[2] - wide[1] > a[2] - a[1]  # fewer seeds, a wider interval
    p = stats.probability_of_improvement_ci(x + 3, x, reps=500, seed=0)
    assert p[0] > 0.7 and p[1] <= p[0] <= p[2]
    point, lo, hi = stats.bootstrap_band(np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]]), reps=200)
    assert point.tolist() == [2.0, 3.0, 5.0] and lo[2] == hi[2] == 5.0


def test_fewer_than_three_runs_get_no_interval_not_a_point():
    # a percentile bootstrap of 1 value is [x, x] and of 2 values their ends: neither is a 95% interval
    assert stats.stratified_bootstrap([4.0], stats.iqm) == (4.0, None, None)
    assert stats.stratified_bootstrap([4.0, 6.0], stats.iqm) == (5.0, None, None)
    assert stats.stratified_bootstrap([4.0, 6.0, 9.0], stats.iqm, reps=200)[1] is not None
    # across tasks the fewest runs of any task decides
    assert stats.stratified_bootstrap({"a": [1, 2, 3], "b": [5, 6]}, stats.iqm)[1:] == (None, None)
    assert stats.probability_of_improvement_ci([3, 4], [1, 2, 0])[1:] == (None, None)


def test_the_stratified_interval_of_a_runs_by_tasks_matrix_is_not_the_pooled_one():
    # 4 runs on 2 tasks whose scores lie far apart (normalised scores of an easy and a hard game)
    scores = np.array([[0.0, 100.0], [1.0, 101.0], [2.0, 102.0], [3.0, 103.0]])
    point, lo, hi = stats.stratified_bootstrap(scores, stats.iqm, reps=1000, seed=0)
    pooled = stats.stratified_bootstrap(scores.ravel(), stats.iqm, reps=1000, seed=0)  # one task of 8 runs
    assert point == pooled[0] == pytest.approx(51.5)  # the point estimate does not depend on the strata
    # every stratified resample holds 4 scores of each task: its middle half is the top 2 of task 0's
    # and the bottom 2 of task 1's, so its IQM stays within [(0+0+100+100)/4, (3+3+103+103)/4]
    assert 50 <= lo <= point <= hi <= 53
    # a pooled resample may draw 6 of one task and 2 of the other: its IQM swings most of the way across
    assert pooled[1] < 30 and pooled[2] > 70
    # tasks of different sizes (a mapping), each resampled at its own size
    sizes = []

    def record(tasks):
        sizes.append({t: len(v) for t, v in tasks.items()})
        return stats.iqm(tasks)

    ragged = {"Level1-1": [0.1, 0.2, 0.3], "Level2-1": [0.5, 0.6, 0.7, 0.8, 0.9]}
    stats.stratified_bootstrap(ragged, record, reps=50, seed=0)
    assert all(s == {"Level1-1": 3, "Level2-1": 5} for s in sizes)
    # P(X > Y) over tasks of different sizes: the mean of each task's own
    x, y = {"a": [1, 3], "b": [5]}, {"a": [0, 2, 4], "b": [4, 5]}
    assert stats.probability_of_improvement(x, y) == pytest.approx((3 / 6 + 1.5 / 2) / 2)
    with pytest.raises(ValueError, match="same tasks"):
        stats.probability_of_improvement(x, {"a": [1], "c": [2]})


# --------------------------------------------------------------------------- a run, judged


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("judge")
    exp = neat_experiment(tmp, eval={"every_frames": 1, "episodes": 1, "heldout_states": ["Level2-1"],
                                     "record_bk2": "best"},
                          checkpoint={"every_frames": 1, "keep": 5, "keep_best": True, "best_metric": "eval/progress"})
    assert main(["train", str(exp), "--runs-dir", str(tmp / "runs")]) == 0
    (run,) = (tmp / "runs" / "judge").iterdir()
    return run


@pytest.mark.slow
def test_heldout_states_best_policy_and_bk2_during_training(judged_run):
    run = judged_run
    held = tb_scalars(run, "eval_heldout/progress")
    assert [s for s, _ in held] == [s for s, _ in tb_scalars(run, "eval/progress")]  # the same schedule
    hist = [json.loads(line) for line in (run / "eval" / "history.jsonl").read_text().splitlines()]
    assert all(h["heldout"]["episodes"][0]["state"] == "Level2-1" for h in hist)
    assert not any("network" in h for h in hist)  # NEAT has no CNN to watch
    m = meta(run)
    assert m["best"]["metric"] == "eval/progress" and (run / "best" / "agent.json").is_file()
    assert m["best"]["value"] == max(h["progress"] for h in hist)
    movies = sorted((run / "eval" / "bk2").glob("*/*.bk2"))
    assert len(movies) == len(hist) and all(p.stat().st_size > 0 for p in movies)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in content and "_hparams_/session_start_info" in content
    start = content["_hparams_/session_start_info"]
    assert b"agent.pop_size" in start and b"env.frame_skip" in start


@pytest.mark.slow
def test_evaluate_any_state_any_checkpoint_with_identical_episodes_said(judged_run, capsys):
    run = judged_run
    assert main(["evaluate", str(run), "--state", "Level1-1", "Level4-1", "--episodes", "4", "--bk2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["per_state"]) == {"Level1-1", "Level4-1"} and out["overall"]["episodes"] == 4
    # NEAT is greedy and the env has no sticky actions: 4 episodes are 2 distinct ones, and said to be
    assert out["deterministic"] and out["overall"]["distinct"] == 2 and out["overall"]["identical"]
    saved = json.loads((run / "eval" / "results.json").read_text())
    assert saved["per_state"]["Level4-1"]["return"]["std"] == 0.0
    assert all(k in saved["overall"]["progress"] for k in ("mean", "std", "median", "min", "max"))
    assert all(Path(e["bk2"]).is_file() for e in saved["episodes"])
    assert main(["evaluate", str(run), "--checkpoint", "best", "--episodes", "1"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "best" in text and "Level1-1" in text
    first = sorted((run / "checkpoints").iterdir())[0]
    assert main(["evaluate", str(run), "--checkpoint", str(int(first.name) + 1), "--episodes", "1"]) == 0
    assert f"using {int(first.name):,}" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--state", "Level9-9"]) == 2
    assert "unknown state 'Level9-9'" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_overrides_the_saved_env_and_records_it(judged_run, capsys):
    run = judged_run
    assert main(["evaluate", str(run), "--episodes", "2", "--set", "env.max_frames=40", "--set",
                 "env.sticky_prob=0.25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # the episodes were played with the overrides: cut at 40 frames, and no longer one greedy replay
    assert [(e["frames"], e["reason"]) for e in out["episodes"]] == [(40, "time_limit")] * 2
    assert not out["deterministic"]
    expected = {"max_frames": {"saved": 18_000, "evaluated": 40}, "sticky_prob": {"saved": 0.0, "evaluated": 0.25}}
    assert out["env_overrides"] == expected
    assert json.loads((run / "eval" / "results.json").read_text())["env_overrides"] == expected
    # the run itself is untouched: its saved env is what the next evaluation starts from
    assert main(["evaluate", str(run), "--episodes", "1", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["env_overrides"] == {} and again["episodes"][0]["frames"] > 40
    # every bad override is named in one paragraph, exit 2, before anything is played
    bad = {"env.stiky_prob=0.2": "env.stiky_prob: unknown env setting, did you mean env.sticky_prob?",
           "env.sticky_prob=2": "env.sticky_prob: Input should be less than 1 (got 2)",
           "env.episode=bout": "env.episode: Input should be 'round', 'match' or 'run' (got 'bout')",
           "env.frame_stack=4": "env.frame_stack: the policy learnt on frame_stack 1",
           "env.rewards.coin=1": "env.rewards: unknown reward term(s) coin for profile smb",
           "sticky_prob=0.1": "sticky_prob=0.1: give env.KEY=VALUE (did you mean env.sticky_prob?)"}
    args = [a for item in bad for a in ("--set", item)]
    assert main(["evaluate", str(run), *args]) == 2
    err = capsys.readouterr().err
    text = " ".join(err.split())
    assert "Traceback" not in err and text.startswith("error: retrodojo evaluate --set:")
    for message in bad.values():
        assert message in text, message


@pytest.mark.slow
def test_a_recorded_run_keeps_its_best_policy_and_evaluate_plays_fresh_episodes_beside_it(judged_run, tmp_path,
                                                                                         monkeypatch, capsys):
    from conftest import load_script

    record_run = load_script("scripts/record_run.py")
    rec = record_run.record(judged_run, tmp_path / "results")
    assert (rec / "best" / "agent.json").is_file() and (rec / "final" / "agent.json").is_file()
    committed = (rec / "eval" / "results.json").read_bytes() if (rec / "eval" / "results.json").exists() else None
    monkeypatch.chdir(tmp_path)
    noisy = ["--set", "env.sticky_prob=0.25", "--set", "env.noop_max=30", "--episodes", "3", "--json"]

    def played(*args):
        assert main(["evaluate", str(rec), "--checkpoint", "best", *noisy, *args]) == 0
        out = json.loads(capsys.readouterr().out)
        return out, [(e["frames"], e["return"]) for e in out["episodes"]]

    out, default = played()
    assert out["seed"] == 20_241_124  # the seed every evaluation in training uses
    out, seven = played("--seed", "7")
    assert out["seed"] == 7 and seven != default  # other no-op starts and sticky draws
    assert played("--seed", "7")[1] == seven  # ...and the same ones again for the same seed
    # the record stays as committed: evaluations of it go under runs/evaluations/
    after = (rec / "eval" / "results.json").read_bytes() if (rec / "eval" / "results.json").exists() else None
    assert after == committed
    saved = tmp_path / "runs" / "evaluations" / rec.parent.name / rec.name / "results.json"
    assert json.loads(saved.read_text())["seed"] == 7
    assert main(["evaluate", str(rec), "--episodes", "1", "--out", str(tmp_path / "mine"), "--json"]) == 0
    assert json.loads((tmp_path / "mine" / "results.json").read_text())["checkpoint"] == "final"
    capsys.readouterr()
    assert main(["evaluate", str(rec), "--seed", "-1"]) == 2
    assert "--seed -1" in capsys.readouterr().err
    (tmp_path / "a_file").write_bytes(b"\x00")
    assert main(["evaluate", str(rec), "--out", str(tmp_path / "a_file")]) == 2
    assert "that is a file; give a folder" in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow
def test_bk2_replays_to_an_mp4_at_the_consoles_rate(judged_run, tmp_path, capsys):
    import imageio.v3 as iio
    import stable_retro

    movie = sorted((judged_run / "eval" / "bk2").glob("*/*.bk2"))[-1]
    m = stable_retro.Movie(str(movie))
    steps = 0
    while m.step():
        steps += 1
    m.close()
    out = tmp_path / "replay.mp4"
    assert main(["replay", str(movie), "--video", str(out), "--scale", "1"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "with sound" in text and f"replayed {steps - 1:,} frames" in text
    import imageio_ffmpeg

    frames, secs = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == steps - 1 and secs == pytest.approx((steps - 1) / 60.0998, rel=0.01)
    assert iio.improps(out).shape[1:] == (224, 240, 3)  # every frame at the console's own size
    # a movie of a game whose ROM is missing says which ROM to import
    bad = tmp_path / "x.bk2"
    bad.write_bytes(b"not a movie")
    assert main(["replay", str(bad)]) == 2
    assert "not a readable stable-retro .bk2 movie" in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow
def test_compare_groups_by_config_with_intervals_and_writes_a_page(tmp_path, capsys):
    runs = tmp_path / "runs"
    for pop in (4, 6):
        for seed in (1, 2):
            exp = neat_experiment(tmp_path, name="grp", pop=pop, generations=2)
            assert main(["train", str(exp), "--seed", str(seed), "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    page = tmp_path / "report.html"
    assert main(["compare", str(runs), "--metric", "eval/progress", "--json", "--html", str(page),
                 "--plot", str(tmp_path / "c.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    groups = out["groups"]
    assert len(groups) == 2 and all(g["n"] == 2 for g in groups)  # seeds pooled, configs not
    assert {g["group"] for g in groups} == {"grp (neat) [agent.pop_size=4]", "grp (neat) [agent.pop_size=6]"}
    for g in groups:  # two seeds: no interval, and the sample std
        assert g["iqm_ci"] is None and g["interval"] == "n=2: no interval"
        assert g["iqm"] == pytest.approx(np.mean(g["values"]))
        assert g["std"] == pytest.approx(np.std(g["values"], ddof=1))
    (pair,) = out["pairs"]
    assert 0 <= pair["p_a_better"] <= 1 and pair["ci"] is None and pair["task"] == "SuperMarioBros-Nes:Level1-1"
    text = page.read_text()
    assert text.count("data:image/png;base64,") >= 1 and "<tr class=diff><td>agent.pop_size</td>" in text
    assert "n=2: no interval" in text and "Across tasks" not in text
    assert "P(A &gt; B)" in text and str(runs) in text
    assert (tmp_path / "c.png").stat().st_size > 10_000


class _ThreadCounter:
    """A policy that notes torch's intra-op thread count at every step it is asked for."""

    def __init__(self):
        self.seen: set[int] = set()

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        """One no-op action; records the thread count."""
        import torch

        self.seen.add(torch.get_num_threads())
        return np.zeros((1,), dtype=np.int64), None


def test_evaluation_plays_on_one_torch_thread_and_gives_the_count_back():
    import torch

    from experiments.evaluate import Evaluator
    from wrappers.settings import EnvSpec

    spec = EnvSpec(game="Boxing-Atari2600", state="Start", profile="boxing", stuck_frames=None, max_frames=200,
                   actions="ale")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    policy = _ThreadCounter()
    ev = Evaluator(spec, episodes=2)
    try:
        result = ev.run(policy)
        assert len(result["episodes"]) == 2
        assert policy.seen == {1}
        assert torch.get_num_threads() == 2  # the trainer's count comes back for its next update
    finally:
        ev.close()
        torch.set_num_threads(before)


def test_the_kept_best_policy_is_the_higher_figure_and_a_tie_goes_to_the_higher_return():
    from experiments.run import beats_best

    assert beats_best(0.5, -3.0, None)
    best = {"value": 1.0, "return": 14.0}
    assert not beats_best(0.95, 40.0, best)  # the figure decides first
    assert beats_best(1.0, 33.0, best) and not beats_best(1.0, 14.0, best) and not beats_best(1.0, None, best)
    assert beats_best(1.0, 2.0, {"value": 1.0})  # a best recorded before returns were kept loses a tie
    assert beats_best(2.0, None, best)
