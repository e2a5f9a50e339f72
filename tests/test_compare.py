"""compare on run folders written by hand (no training): one task as before, several tasks as the strata of
one bootstrap on scores normalised against a stated baseline, pairs only within a task, no interval under
three seeds, the sample std, best up to --at; the shared settings flattener; evaluate's results record."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from experiments import stats
from experiments.cli import main
from experiments.run import flatten

PPO = {"algo": "ppo", "policy": "cnn", "hyperparams": {"n_steps": 128, "gamma": 0.99,
                                                        "learning_rate": {"schedule": "linear", "start": 3e-4}}}
A2C = {"algo": "a2c", "policy": "cnn", "hyperparams": {"n_steps": 5, "gamma": 0.99}}


def fake_run(root: Path, name: str, seed: int, evals: dict[int, float], agent: dict = PPO,
             game: str = "SuperMarioBros-Nes", state: str | None = "Level1-1", **extra) -> Path:
    """A finished run folder as `retrodojo train` leaves it, with ``evals`` as its eval/progress history."""
    run = root / name / f"{agent['algo']}-s{seed}"
    (run / "eval").mkdir(parents=True)
    config = {"name": name, "description": f"{name} runs", "game": game, "state": state, "states": None,
              "profile": "smb" if game.startswith("Super") else "boxing",
              "env": {"frame_skip": 4, "resize": [84, 84], "reward_clip": None}, "agent": agent,
              "budget": {"frames": max(evals)}, "seeds": [seed], **extra}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "meta.json").write_text(json.dumps({"experiment": name, "algo": agent["algo"], "seed": seed,
                                               "status": "finished", "frames": max(evals)}))
    (run / "eval" / "history.jsonl").write_text("".join(
        json.dumps({"frames": f, "progress": v, "return": v / 10}) + "\n" for f, v in sorted(evals.items())))
    return run


def compare_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["compare", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def wide_console(monkeypatch) -> io.StringIO:
    """The CLI's console, wide enough that no table cell wraps; returns what it prints."""
    from rich.console import Console

    from experiments import cli

    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=250, color_system=None))
    return out


# --------------------------------------------------------------------------- one task


def test_one_task_sample_std_no_interval_under_three_seeds_and_best_up_to_at(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    fake_run(runs, "one", 1, {0: 10, 100: 40, 200: 900})  # a peak after --at that `best` must not see
    for seed, v in [(1, 50), (2, 70)]:
        fake_run(runs, "two", seed, {0: 0, 100: v, 200: v})
    for seed, v in [(1, 10), (2, 20), (3, 30)]:
        fake_run(runs, "three", seed, {0: 0, 100: v, 200: v})
    out = compare_json(capsys, runs, "--at", 100)
    g = {row["experiment"]: row for row in out["groups"]}
    assert g["one"]["values"] == [40] and g["one"]["best"] == 40  # not 900, logged at 200 > --at
    assert g["one"]["std"] is None and g["one"]["iqm_ci"] is None and g["one"]["interval"] == "n=1: no interval"
    assert g["two"]["std"] == pytest.approx(np.std([50, 70], ddof=1))  # the sample std (14.1), not 10
    assert g["two"]["iqm_ci"] is None and g["two"]["interval"] == "n=2: no interval"
    assert g["three"]["std"] == pytest.approx(10.0) and g["three"]["interval"] is None
    lo, hi = g["three"]["iqm_ci"]
    assert lo < g["three"]["iqm"] < hi
    assert {g["task"] for g in out["groups"]} == {"SuperMarioBros-Nes:Level1-1"} and not out["methods"]
    assert len(out["pairs"]) == 3 and all(p["task"] == "SuperMarioBros-Nes:Level1-1" for p in out["pairs"])
    # the table says so instead of printing a zero-width interval
    printed = wide_console(monkeypatch)
    assert main(["compare", str(runs), "--at", "100"]) == 0
    text = printed.getvalue()
    assert "n=1: no interval" in text and "n=2: no interval" in text and "[40, 40]" not in text
    assert "Across tasks" not in text and "normalised" not in text


def test_pairs_only_within_a_task(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (1, 2, 3):
        fake_run(runs, "smb_ppo", seed, {0: 0, 100: 100 * seed})
        fake_run(runs, "smb_a2c", seed, {0: 0, 100: 90 * seed}, agent=A2C)
        fake_run(runs, "boxing_a2c", seed, {0: 0, 100: seed}, agent=A2C, game="Boxing-Atari2600", state="Start")
    out = compare_json(capsys, runs / "smb_ppo", runs / "boxing_a2c")
    assert len(out["groups"]) == 2 and out["pairs"] == []  # SMB progress against Boxing margins: no pair
    assert out["methods"] == []  # nothing played both, so nothing to aggregate and no baseline needed
    # A2C played both games (the name and profile change only with the game): it is aggregated, ppo is not
    out = compare_json(capsys, runs / "smb_ppo", runs / "smb_a2c", runs / "boxing_a2c",
                       "--baseline", f"reference={runs / 'smb_a2c'}", "--baseline", f"reference={runs / 'boxing_a2c'}")
    (pair,) = out["pairs"]
    assert {pair["a"], pair["b"]} == {"smb_ppo (ppo)", "smb_a2c (a2c)"}
    assert pair["task"] == "SuperMarioBros-Nes:Level1-1"
    assert {m["method"]: len(m["tasks"]) for m in out["methods"]} == {"a2c": 2, "ppo": 1}
    assert out["method_pairs"] == []  # ppo played one of a2c's two tasks: no pair over different tasks


def test_groups_of_one_name_are_labelled_by_what_sets_them_apart_and_pool_joins_a_cap(tmp_path, capsys,
                                                                                       monkeypatch):
    """A run with a section switched off (``--set curriculum=null``) beside runs with it on reads
    ``[curriculum=null]`` / ``[curriculum=on]`` in the table (not every key of the section, and not eaten as
    console markup); ``--pool budget.frames`` makes seeds of runs that differ only in a cap that did not bind."""
    runs = tmp_path / "runs"
    cur = {"every_frames": 60, "size": 2, "start_share": 0.5}
    fake_run(runs, "smb_neat", 1, {0: 0, 100: 30}, curriculum=cur)
    fake_run(runs, "smb_neat", 2, {0: 0, 100: 50, 150: 50}, curriculum=cur)  # budget.frames 150, not 100
    fake_run(runs / "nocur", "smb_neat", 1, {0: 0, 100: 20}, curriculum=None)
    out = compare_json(capsys, runs)
    assert sorted(g["group"] for g in out["groups"]) == ["smb_neat (ppo) [budget.frames=100, curriculum=null]",
                                                         "smb_neat (ppo) [budget.frames=100, curriculum=on]",
                                                         "smb_neat (ppo) [budget.frames=150, curriculum=on]"]
    out = compare_json(capsys, runs, "--pool", "budget.frames", "--at", 100)
    g = {row["group"]: row for row in out["groups"]}
    assert set(g) == {"smb_neat (ppo) [curriculum=on]", "smb_neat (ppo) [curriculum=null]"}
    assert g["smb_neat (ppo) [curriculum=on]"]["per_seed"] == [30, 50]
    printed = wide_console(monkeypatch)
    assert main(["compare", str(runs), "--pool", "budget.frames", "--at", "100"]) == 0
    text = printed.getvalue()
    assert "smb_neat (ppo) [curriculum=null]" in text and "s1: 30, s2: 50" in text


def test_a_setting_added_since_an_older_run_does_not_split_its_seeds(tmp_path, capsys):
    """A run from before a setting existed has no such key; a newer run writes it at its default, null: seeds
    of one group (as ``differing`` already counts them), while a setting that is on still splits."""
    runs = tmp_path / "runs"
    fake_run(runs, "smb_neat", 1, {0: 0, 100: 30})
    fake_run(runs, "smb_neat", 2, {0: 0, 100: 50}, env={"frame_skip": 4, "resize": [84, 84], "reward_clip": None,
                                                        "ram_stack": None})
    out = compare_json(capsys, runs)
    assert [(g["group"], g["per_seed"]) for g in out["groups"]] == [("smb_neat (ppo)", [30, 50])]
    fake_run(runs, "smb_neat", 3, {0: 0, 100: 70}, env={"frame_skip": 4, "resize": [84, 84], "reward_clip": None,
                                                        "ram_stack": 2})
    out = compare_json(capsys, runs)
    assert sorted((g["group"], g["per_seed"]) for g in out["groups"]) == [
        ("smb_neat (ppo) [env.ram_stack=2]", [70]), ("smb_neat (ppo) [env.ram_stack=null]", [30, 50])]


def test_labels_keep_dotted_names_and_a_plain_null_setting_is_not_a_section():
    """A state name with dots (SF2's) stays whole in a label; a plain setting null in one group reads null
    there and its value elsewhere (not ``null`` for both)."""
    from experiments.compare import _settings_label

    sf2 = "Champion.Level1.RyuVsGuile"
    a = {"name": "x", "states": {sf2: 1.0, "Other": 1.0}, "state": None}
    b = {"name": "x", "states": {sf2: 3.0, "Other": 1.0}, "state": "Level1-1"}
    flats = [flatten(c) for c in (a, b)]
    keys = [f"states.{sf2}", "state"]
    assert _settings_label(keys, [a, b], flats) == [[f"states.{sf2}=1.0", "state=null"],
                                                    [f"states.{sf2}=3.0", "state=Level1-1"]]


def test_pool_is_checked_and_kept_out_of_the_methods_across_tasks(tmp_path, capsys):
    """A --pool key no run has is one paragraph; two runs of one seed pooled into one group are refused; a
    pooled cap does not split a method across tasks."""
    runs = tmp_path / "runs"
    for task, state in (("a", "Level1-1"), ("b", "Level2-1")):
        for seed, cap in ((1, 100), (2, 150), (3, 150)):
            fake_run(runs / task, f"smb_{task}", seed, {0: 0, 100: seed * 10, cap: seed * 10}, state=state)
    assert main(["compare", str(runs), "--pool", "budget.frame"]) == 2
    assert "--pool budget.frame: no run has that setting" in capsys.readouterr().err
    out = compare_json(capsys, runs, "--pool", "budget.frames", "--at", 100, "--baseline", f"reference={runs / 'a'}",
                       "--baseline", f"reference={runs / 'b'}")
    assert len(out["groups"]) == 2 and [len(m["tasks"]) for m in out["methods"]] == [2]
    fake_run(runs / "again", "smb_a", 1, {0: 0, 100: 5, 300: 5})  # seed 1 again, a larger cap
    assert main(["compare", str(runs / "a"), str(runs / "again"), "--pool", "budget"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "runs of one seed (1) in one group" in err and "Traceback" not in err


# --------------------------------------------------------------------------- several tasks


def two_tasks(runs: Path) -> None:
    """PPO and A2C on two start states of SMB (experiment names differ per state), 3 seeds each; A2C does
    much worse on Level2-1 than on Level1-1."""
    for seed in (1, 2, 3):
        for level, scale, a2c in (("Level1-1", 1000, 1000), ("Level2-1", 100, 10)):
            tag = level[-3]
            fake_run(runs, f"ppo_{tag}", seed, {0: 0, 100: scale * (1 + seed)}, state=level)
            fake_run(runs, f"a2c_{tag}", seed, {0: 0, 100: a2c * seed}, agent=A2C, state=level)


def test_several_tasks_without_a_baseline_are_refused_with_how_to_give_one(tmp_path, capsys):
    runs = tmp_path / "runs"
    two_tasks(runs)
    capsys.readouterr()
    assert main(["compare", str(runs)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "2 tasks (SuperMarioBros-Nes:Level1-1, SuperMarioBros-Nes:Level2-1)" in err
    assert "--baseline random=FILE.json" in err and "--baseline reference=RUN_OR_DIR" in err
    assert "one task at a time" in err and "Traceback" not in err
    # a baseline for one task only names the other
    assert main(["compare", str(runs), "--baseline", f"reference={runs / 'ppo_1'}"]) == 2
    assert "State a baseline for SuperMarioBros-Nes:Level2-1 with" in " ".join(capsys.readouterr().err.split())
    assert main(["compare", str(runs), "--baseline", "median=3"]) == 2
    assert "expected random=FILE.json" in " ".join(capsys.readouterr().err.split())


def test_several_tasks_are_the_strata_of_one_bootstrap_on_normalised_scores(tmp_path, capsys, monkeypatch):
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    two_tasks(runs)
    fake_run(ref, "ref_1", 1, {0: 0, 100: 2000})  # the yardstick of Level1-1
    fake_run(ref, "ref_2", 1, {0: 0, 100: 200}, state="Level2-1")  # and of Level2-1
    out = compare_json(capsys, runs, "--baseline", f"reference={ref}")
    tasks = ["SuperMarioBros-Nes:Level1-1", "SuperMarioBros-Nes:Level2-1"]
    assert out["tasks"] == tasks
    assert out["baselines"][tasks[1]]["unit"] == 200 and out["baselines"][tasks[1]]["zero"] == 0
    # groups named per state are one method per algo (the name changes only with the task)
    m = {row["method"]: row for row in out["methods"]}
    assert set(m) == {"ppo", "a2c"} and m["ppo"]["tasks"] == tasks
    # ppo: 2000, 3000, 4000 on Level1-1 and 200, 300, 400 on Level2-1: normalised, the same 1, 1.5, 2 on both
    assert m["ppo"]["values"] == {t: [1.0, 1.5, 2.0] for t in tasks}
    scores = {t: np.array(v) for t, v in m["a2c"]["values"].items()}
    point, lo, hi = stats.stratified_bootstrap(scores, stats.iqm, reps=2000, seed=0)
    assert m["a2c"]["iqm"] == pytest.approx(point) and m["a2c"]["iqm_ci"] == pytest.approx([lo, hi])
    pooled = stats.stratified_bootstrap(np.concatenate(list(scores.values())), stats.iqm, reps=2000, seed=0)
    assert m["a2c"]["iqm_ci"] != pytest.approx(pooled[1:])  # stratified by task, not pooled
    # the pairs: each task's groups, and the methods over both tasks
    assert sorted(p["task"] for p in out["pairs"]) == tasks
    (mp,) = out["method_pairs"]
    assert mp["tasks"] == tasks and {mp["a"], mp["b"]} == {"ppo", "a2c"}
    raw = {row["group"]: row["values"] for row in out["groups"]}
    a, b = ({t: raw[g] for t, g in zip(m[x]["tasks"], m[x]["groups"])} for x in (mp["a"], mp["b"]))
    assert mp["p_a_better"] == pytest.approx(stats.probability_of_improvement(a, b))
    # the table prints the baselines and the aggregate
    printed = wide_console(monkeypatch)
    assert main(["compare", str(runs), "--baseline", f"reference={ref}"]) == 0
    text = printed.getvalue()
    assert "SuperMarioBros-Nes:Level2-1: eval/progress" in text and "normalised per task" in text
    assert "reference: mean of 1 run(s)" in text


def test_a_random_policy_file_is_a_baseline_and_with_a_reference_the_zero(tmp_path, capsys):
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    two_tasks(runs)
    fake_run(ref, "ref_1", 1, {0: 0, 100: 2000})
    fake_run(ref, "ref_2", 1, {0: 0, 100: 200}, state="Level2-1")
    rnd1, rnd2 = tmp_path / "random1.json", tmp_path / "random2.json"
    # as scripts/random_policy.py writes it (game and state), and an older file that names its experiment
    rnd1.write_text(json.dumps({"experiment": "x", "game": "SuperMarioBros-Nes", "state": "Level1-1",
                                "states": None, "mean": {"progress": 500.0, "return": 1.0}}))
    rnd2.write_text(json.dumps({"experiment": "ppo_2", "mean": {"progress": 50.0}}))
    out = compare_json(capsys, runs, "--baseline", f"random={rnd1}", "--baseline", f"random={rnd2}")
    m = {row["method"]: row for row in out["methods"]}
    assert m["ppo"]["values"]["SuperMarioBros-Nes:Level1-1"] == [4.0, 6.0, 8.0]  # score / random
    assert m["ppo"]["values"]["SuperMarioBros-Nes:Level2-1"] == [4.0, 6.0, 8.0]
    out = compare_json(capsys, runs, "--baseline", f"random={rnd1}", "--baseline", f"random={rnd2}",
                       "--baseline", f"reference={ref}")
    m = {row["method"]: row for row in out["methods"]}
    # (score - random) / (reference - random): 0 is the random policy, 1 the reference
    assert m["ppo"]["values"]["SuperMarioBros-Nes:Level1-1"] == pytest.approx([1, 5 / 3, 7 / 3])  # (x-500)/1500
    assert m["ppo"]["values"]["SuperMarioBros-Nes:Level2-1"] == pytest.approx([1, 5 / 3, 7 / 3])  # (x-50)/150
    # a random policy's file holds eval means only, and a baseline at or below its zero measures nothing
    assert main(["compare", str(runs), "--metric", "eval/episode_frames", "--baseline", f"random={rnd1}"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "evaluation means (eval/progress, eval/return), not eval/episode_frames" in err
    assert "--baseline reference=RUN_OR_DIR" in err
    assert main(["compare", str(runs), "--baseline", f"random={rnd1}", "--baseline", f"random={rnd2}",
                 "--baseline", f"reference={runs / 'a2c_1'}", "--at", "0"]) == 2
    assert "not above its zero 500" in " ".join(capsys.readouterr().err.split())


def test_html_page_and_profile_across_tasks(tmp_path, capsys):
    runs, ref = tmp_path / "runs", tmp_path / "ref"
    two_tasks(runs)
    fake_run(ref, "ref_1", 1, {0: 0, 100: 2000})
    fake_run(ref, "ref_2", 1, {0: 0, 100: 200}, state="Level2-1")
    page, png = tmp_path / "report.html", tmp_path / "curves.png"
    assert main(["compare", str(runs), "--baseline", f"reference={ref}", "--html", str(page),
                 "--plot", str(png)]) == 0
    text = page.read_text()
    assert "<h2>Across tasks</h2>" in text and "<tr class=diff><td>state</td>" in text
    assert text.count("data:image/png;base64,") == 2  # the curves and the performance profile
    assert (tmp_path / "curves_profile.png").read_bytes()[:4] == b"\x89PNG"


def test_help_says_how_to_state_a_baseline(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--baseline" in text and "random=FILE.json" in text and "reference=RUN_OR_DIR" in text
    assert "(score - random) / (reference - random)" in text


# --------------------------------------------------------------------------- the pieces shared


def test_one_flattener_for_compare_and_tensorboard():
    from experiments.compare import differing, methods
    from experiments.run import flatten

    flat = flatten({"agent": {"algo": "ppo", "hyperparams": {"lr": {"schedule": "linear", "start": 3e-4}}},
                    "env": {"resize": [84, 84], "reward_clip": None, "rewards": {}}, "state": "Level1-1"})
    assert flat == {"agent.algo": "ppo", "agent.hyperparams.lr.schedule": "linear",
                    "agent.hyperparams.lr.start": 3e-4, "env.resize": "[84, 84]", "env.reward_clip": "null",
                    "env.rewards": "{}", "state": "Level1-1"}
    # what differs: a key one config lacks counts as null, as a run from before the setting existed
    assert differing([{"a": 1, "b": "null"}, {"a": 2}, {"a": 1, "c": 3}]) == ["a", "c"]
    assert not hasattr(__import__("experiments.run").run, "_flatten")
    from experiments import compare

    assert not hasattr(compare, "_flat")
    assert methods([]) == []


# --------------------------------------------------------------------------- evaluate's record


def test_evaluate_results_are_built_in_evaluate_not_the_cli(tmp_path):
    from experiments.evaluate import results, save_results

    def ep(state, r, progress):
        return {"r": r, "progress": progress, "success": False, "frames": 100, "reason": "dying",
                "state": state, "metrics": {}, "internal": "dropped"}

    eps = [ep("Level1-1", 10, 100), ep("Level1-1", 10, 100), ep("Level4-1", 3, 30), ep("Level4-1", 5, 50)]
    greedy_fixed = SimpleNamespace(sticky_prob=0.0, noop_max=0)
    out = results(eps, {"return": 7.0}, greedy_fixed, True, run=tmp_path, agent=tmp_path / "final",
                  checkpoint="final", algo="neat", states=["Level1-1", "Level4-1"])
    assert out["deterministic"] and list(out["per_state"]) == ["Level1-1", "Level4-1"]
    assert out["per_state"]["Level1-1"]["distinct"] == 1 and out["per_state"]["Level4-1"]["return"]["max"] == 5
    assert out["overall"]["episodes"] == 4 and out["mean"] == {"return": 7.0}
    assert out["episodes"][0]["return"] == 10 and "r" not in out["episodes"][0] and "internal" not in out["episodes"][0]
    assert out["run"] == str(tmp_path) and out["video"] is None
    sticky = SimpleNamespace(sticky_prob=0.25, noop_max=0)
    assert not results(eps, {}, sticky, True, run="r", agent="a", checkpoint="best", algo="ppo",
                       states=None)["deterministic"]
    path = save_results(out, tmp_path / "eval")
    assert path == tmp_path / "eval" / "results.json" and json.loads(path.read_text()) == out


# --------------------------------------------------------------------------- NEAT at equal generations

NEAT = {"algo": "neat", "config": "smb"}


def neat_run(root: Path, name: str, seed: int, frames_per_gen: int, best: list[float], **extra) -> Path:
    """A NEAT run whose generation g (0-based) ends at (g + 1) * frames_per_gen frames with best x best[g]."""
    from torch.utils.tensorboard import SummaryWriter

    ends = [(g + 1) * frames_per_gen for g in range(len(best))]
    run = fake_run(root, name, seed, {0: 0.0, ends[-1]: best[-1]}, agent=NEAT, **extra)
    with SummaryWriter(str(run / "tb")) as w:
        for g, (f, x) in enumerate(zip(ends, best)):
            w.add_scalar("neat/generation", g, f)
            w.add_scalar("neat/best_progress", x, f)
    return run


def test_neat_runs_are_compared_at_equal_generations_with_the_best_so_far(tmp_path, capsys, monkeypatch):
    """Pixels cost more frames per generation than tiles: at generation 3 the pixel runs are read at 3x
    their cost, not at the tile runs' frame count; the best so far is the max of the generations' bests;
    a run that ended sooner is read at its end and said to be."""
    for seed in (1, 2):
        neat_run(tmp_path, "tiles", seed, 100, [10.0, 50.0 + seed, 20.0, 30.0, 90.0])
        neat_run(tmp_path, "pixels", seed, 1000, [5.0, 6.0, 40.0 + seed, 1.0, 2.0] if seed == 1 else [7.0, 8.0])
    res = compare_json(capsys, tmp_path / "tiles", tmp_path / "pixels", "--metric", "neat/best_progress",
                       "--at-generation", "3", "--running-best", "--pool", "budget")
    rows = {g["experiment"]: g for g in res["groups"]}
    assert res["at_generation"] == 3 and res["at_frames"] is None and res["running_best"] is True
    assert rows["tiles"]["per_seed"] == [51.0, 52.0] and rows["tiles"]["at_per_seed"] == [300.0, 300.0]
    assert rows["pixels"]["per_seed"] == [41.0, 8.0] and rows["pixels"]["at_per_seed"] == [3000.0, 2000.0]
    assert rows["pixels"]["generations_per_seed"] == [3, 2]
    # without --running-best, each generation's own best at generation 3
    res = compare_json(capsys, tmp_path / "tiles", "--metric", "neat/best_progress", "--at-generation", "3")
    assert res["groups"][0]["per_seed"] == [20.0, 20.0]
    out = wide_console(monkeypatch)
    assert main(["compare", str(tmp_path / "pixels"), "--metric", "neat/best_progress", "--at-generation", "3",
                 "--running-best", "--pool", "budget"]) == 0
    printed = out.getvalue()
    assert "neat/best_progress at 3 generations, best so far" in printed
    assert "s1: 41, s2: 8 (ended at generation 2)" in printed


def test_generations_are_refused_for_runs_without_them_and_beside_a_frame_count(tmp_path, capsys):
    fake_run(tmp_path, "ppo_runs", 1, {0: 0.0, 100: 5.0})
    for args, says in ([["--at-generation", "3"], "logs no neat/generation"],
                       [["--at-generation", "3", "--at", "100"], "not both"],
                       [["--at-generation", "0"], "1 or more"]):
        capsys.readouterr()
        assert main(["compare", str(tmp_path), *args]) == 2
        assert says in capsys.readouterr().err
