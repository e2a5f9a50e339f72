"""`retrodojo report`: the tables of a results document remade from a record of runs, byte for byte; a
check that fails when the record and the document part; the committed document against the committed record."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script
from test_compare import fake_run

from experiments.cli import main

REPO = Path(__file__).resolve().parent.parent

DOC = """# Results

Prose stays as it is.

<!-- report: compare results/smb_a results/smb_b --at 300 --plot docs/curves.png -->
<!-- /report -->

More prose.

<!-- report: runs results/smb_a -->
stale text that the command replaces
<!-- /report -->

<!-- report: bench results/bench.json -->
<!-- /report -->
"""


def _record(root: Path) -> None:
    res = root / "results"
    for seed, (a, b) in enumerate([(900, 200), (1200, 250), (1000, 180)], 1):
        fake_run(res, "smb_a", seed, {0: 100, 300: a})
        fake_run(res, "smb_b", seed, {0: 100, 300: b}, agent={"algo": "ppo", "policy": "cnn",
                                                                  "hyperparams": {"n_steps": 64}})
    (res / "bench.json").write_text(json.dumps({"date": "2026-12-02", "machine": "2 vCPU", "fps": 4989.4,
                                                "rounds": [922.1, 917.3]}))
    (root / "docs").mkdir()
    (root / "docs" / "results.md").write_text(DOC)


def test_report_fills_every_block_and_check_holds_it_to_the_record(tmp_path, capsys):
    _record(tmp_path)
    doc = tmp_path / "docs" / "results.md"
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    text = doc.read_text()
    assert "Prose stays as it is." in text and "More prose." in text and "stale text" not in text
    assert "eval/progress at 300 frames" in text
    assert "1,033" in text or "1033" in text  # smb_a's mean (900 + 1200 + 1000) / 3
    assert "P(A > B)" in text and "| 1.00 |" in text  # every smb_a seed beats every smb_b seed
    assert "results/smb_a/ppo-s3" in text and "| 4,989 |" in text and "922.1, 917.3" in text
    assert (tmp_path / "docs" / "curves.png").stat().st_size > 1000
    assert "_Seeds:" not in text  # three seeds a side: intervals, and nothing to explain
    capsys.readouterr()

    # the same record gives the same bytes: check passes and writes nothing
    before = doc.read_text()
    assert main(["report", str(doc), "--root", str(tmp_path), "--check"]) == 0
    assert doc.read_text() == before and "3 tables match" in capsys.readouterr().out

    # a record that moved: check fails with a diff, and the document is untouched
    hist = tmp_path / "results" / "smb_b" / "ppo-s2" / "eval" / "history.jsonl"
    hist.write_text(hist.read_text().replace('"progress": 250', '"progress": 2500'))
    assert main(["report", str(doc), "--root", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr()
    assert "2,500" in out.out and "make results" in out.err
    assert doc.read_text() == before


def test_a_bad_block_is_one_paragraph(tmp_path, capsys):
    doc = tmp_path / "r.md"
    doc.write_text("<!-- report: tabulate everything -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
    assert "unknown block `tabulate everything`" in capsys.readouterr().err
    doc.write_text("<!-- report: compare results/none --at 5 --window -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
    assert "cannot read the block" in capsys.readouterr().err
    # an option another kind takes is one error naming what this kind reads, not argparse's usage and exit
    doc.write_text("<!-- report: bouts e.json --window 3 -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --window" in err and "report bouts [--random RANDOM]" in err, err
    assert err.lstrip().startswith("error: report: cannot read the block") and err.count("usage:") == 1, err
    doc.write_bytes(b"\x00\xbb" + bytes(range(256)))
    for args in ([str(doc)], [str(doc), "--check"], [str(tmp_path)]):
        assert main(["report", *args, "--root", str(tmp_path)]) == 2
        assert "not a results document" in capsys.readouterr().err
    # a block whose runs are not in the record yet says so (a campaign fills it over several sittings)
    doc.write_text("<!-- report: compare results/none -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    assert "_Not in the record yet: results/none._" in doc.read_text()


def test_a_comparison_under_three_seeds_says_how_many_and_why(tmp_path):
    _record(tmp_path)
    for seed in (2, 3):
        for name in ("smb_a", "smb_b"):
            next((tmp_path / "results" / name).glob(f"*-s{seed}*")).rename(tmp_path / f"{name}-{seed}")
    doc = tmp_path / "r.md"
    block = "<!-- report: compare results/smb_a results/smb_b --at 300 -->"
    end = "\n<!-- /report -->\n"
    doc.write_text(f"{block[:-4]} --why 'each seed took 75 minutes' -->{end}\n{block}{end}")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    first, second = doc.read_text().split(f"\n\n{block}")
    counts = "_Seeds: smb_a (ppo) 1, smb_b (ppo) 1; fewer than 3 a side, so no interval"
    assert f"{counts}: each seed took 75 minutes._" in first
    assert f"{counts}: no reason given (the block's --why says why)._" in second


def test_a_compare_block_reads_neat_runs_at_equal_generations(tmp_path):
    from test_compare import neat_run

    res = tmp_path / "results"
    neat_run(res, "tiles", 1, 100, [10.0, 50.0, 20.0, 30.0])
    neat_run(res, "pixels", 1, 1000, [5.0, 40.0])
    doc = tmp_path / "r.md"
    doc.write_text("<!-- report: compare results/tiles results/pixels --metric neat/best_progress --at-generation 3 "
                   "--running-best --why 'one seed each' -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    text = doc.read_text()
    assert "neat/best_progress at 3 generations, best so far:" in text
    assert "| s1: 40 (ended at generation 2) |" in text and "| s1: 50 |" in text


def test_a_rate_in_the_runs_table_carries_its_bouts_and_interval(tmp_path):
    run = fake_run(tmp_path / "results", "box", 1, {0: 0, 100: 0, 200: 0}, game="Boxing-Atari2600", state="Start")

    def bouts(won: int, n: int = 20, alike: bool = False) -> list[dict]:
        return [{"r": 5.0 if alike else float(i), "frames": 7000, "success": i < won} for i in range(n)]

    evals = [(0, bouts(2)), (100, bouts(18)), (200, bouts(3)), (300, bouts(1, 1)), (400, bouts(0, 4, alike=True))]
    (run / "eval" / "history.jsonl").write_text("".join(
        json.dumps({"frames": f, "win_rate": sum(e["success"] for e in eps) / len(eps), "episodes": eps}) + "\n"
        for f, eps in evals))
    doc = tmp_path / "r.md"
    doc.write_text("<!-- report: runs results/box --metric eval/win_rate -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    row = next(line for line in doc.read_text().splitlines() if line.startswith("| results/box"))
    # the best rate is 1 of 1, whose interval says how little that is; the last is 4 alike bouts: one sample
    assert "| 1 (1/1; 0.21-1.00) | 0 (0/4, identical episodes) |" in row, row
    (run / "eval" / "history.jsonl").write_text("".join(
        json.dumps({"frames": f, "win_rate": sum(e["success"] for e in eps) / len(eps), "episodes": eps}) + "\n"
        for f, eps in evals[:3]))
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    assert "| 0.9 (18/20; 0.70-0.97) | 0.15 (3/20; 0.05-0.36) |" in doc.read_text()


def test_an_evals_block_tabulates_evaluations_with_their_interval_and_refuses_other_files(tmp_path, capsys):
    from experiments.evaluate import describe, results
    from wrappers.settings import EnvSpec

    eps = [{"r": float(i), "progress": 0.0, "success": i < 17, "frames": 7000 + i, "state": "Start",
            "reason": "bout_over"} for i in range(20)]

    spec = EnvSpec(game="Boxing-Atari2600", state="Start", profile="boxing", sticky_prob=0.25)
    out = results(eps, {}, spec, False, run="results/box/neat-s2", agent="results/box/neat-s2/best",
                  checkpoint="best", algo="neat", states=["Start"], seed=1,
                  env_overrides={"sticky_prob": {"saved": 0.0, "evaluated": 0.25}})
    assert out["overall"] == describe(eps)
    (tmp_path / "e.json").write_text(json.dumps(out))
    (tmp_path / "bench.json").write_text(json.dumps({"fps": 1.0}))
    doc = tmp_path / "r.md"
    doc.write_text("<!-- report: evals e.json -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    row = next(line for line in doc.read_text().splitlines() if line.startswith("| `e.json`"))
    assert row == ("| `e.json` | box/neat-s2 | best | 1 | 20 (20 distinct) | 0.85 (17/20; 0.64-0.95) | 9.5 (std 5.766) "
                   "| sticky_prob 0.25 |"), row
    doc.write_text("<!-- report: evals bench.json -->\n<!-- /report -->\n")
    capsys.readouterr()
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "bench.json is not an evaluation's results.json" in err and "Traceback" not in err


def test_the_committed_results_match_the_committed_record(capsys):
    """docs/results.md's tables are what `make results` makes from results/ (fails when one was edited by
    hand or the record changed without them)."""
    assert main(["report", str(REPO / "docs" / "results.md"), "--root", str(REPO), "--check"]) == 0, \
        capsys.readouterr().out
    # and there is something to check: the record's claims are in report blocks
    assert "tables match the record" in capsys.readouterr().out
    text = (REPO / "docs" / "results.md").read_text()
    assert text.count("<!-- report: ") >= 2
    # every comparison under three seeds a side says why, in its table
    assert "no reason given (the block's --why says why)" not in text


def test_recording_thins_only_the_tags_over_the_limit_and_says_so(tmp_path):

    from torch.utils.tensorboard import SummaryWriter

    from experiments.run import read_scalars

    record_run = load_script("scripts/record_run.py")
    src = tmp_path / "run" / "tb"
    w = SummaryWriter(str(src))
    for i in range(50):
        w.add_scalar("train/episode_progress", float(i * i), i * 10)
        w.add_scalar("train/value_loss", float(i), i * 10)  # a diagnostic: fewer points
        if i % 10 == 0:
            w.add_scalar("eval/progress", float(i), i * 10)
    w.close()
    thinned = record_run.thin_events(src, tmp_path / "rec" / "tb", max_points=8, diagnostic_points=5)
    assert thinned == {"train/episode_progress": [8, 50], "train/value_loss": [5, 50]}
    kept = read_scalars(tmp_path / "rec", "train/episode_progress")
    assert len(kept) == 8 and kept[0] == (0, 0.0) and kept[-1] == (490, 2401.0)
    assert all(v == (s // 10) ** 2 for s, v in kept)
    assert read_scalars(tmp_path / "rec", "eval/progress") == read_scalars(tmp_path / "run", "eval/progress")
    assert [s for s, _ in read_scalars(tmp_path / "rec", "train/value_loss")] == [0, 120, 240, 370, 490]

    # a recorded run thinned again to lower limits keeps the counts as logged in training
    (tmp_path / "rec" / "meta.json").write_text(json.dumps({"record_thinned": {"max_points": 8, "tags": thinned}}))
    again = record_run.rethin(tmp_path / "rec", max_points=8, diagnostic_points=3)
    assert again["tags"] == {"train/episode_progress": [8, 50], "train/value_loss": [3, 50]}
    assert json.loads((tmp_path / "rec" / "meta.json").read_text())["record_thinned"] == again
    assert len(read_scalars(tmp_path / "rec", "train/value_loss")) == 3
    assert read_scalars(tmp_path / "rec", "train/episode_progress") == kept
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["meta.json", "tb"]
    # bytes that are no event file are refused, and left as they were
    import pytest

    from experiments.errors import UserError

    junk = tmp_path / "rec" / "tb" / "events.out.tfevents.junk"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(UserError, match="not a TensorBoard event file"):
        record_run.rethin(tmp_path / "rec")
    assert junk.read_bytes() == bytes(range(256)) * 8 and len(read_scalars(tmp_path / "rec", "train/value_loss")) == 3
    assert sorted(p.name for p in (tmp_path / "rec").iterdir()) == ["meta.json", "tb"]


def test_a_fights_block_pools_bouts_over_seeds_beside_the_random_policy(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter

    from experiments.evaluate import wilson_interval

    res = tmp_path / "results"
    for seed, won, margins in [(1, 18, [4.0, 6.0]), (2, 15, [-2.0, 2.0])]:
        run = fake_run(res, "box_ppo", seed, {0: 0, 200_000: 0}, game="Boxing-Atari2600", state="Start",
                       eval={"deterministic": False})
        bouts = [{"r": float(i - 5), "frames": 7000, "success": i < won} for i in range(20)]
        (run / "eval" / "history.jsonl").write_text(json.dumps(
            {"frames": 200_000, "return": 3.5 * seed, "win_rate": won / 20, "episodes": bouts}) + "\n")
        with SummaryWriter(str(run / "tb")) as w:
            # the first bout is outside the last 100k frames, so the window must leave it out
            for step, m in [(50_000, -90.0), (150_000, margins[0]), (190_000, margins[1])]:
                w.add_scalar("train/episode_return", m, step)
    unfinished = fake_run(res, "box_ppo", 3, {0: 0, 100: 0}, game="Boxing-Atari2600", state="Start")
    meta = json.loads((unfinished / "meta.json").read_text())
    (unfinished / "meta.json").write_text(json.dumps({**meta, "status": "stopped"}))
    (res / "random.json").write_text(json.dumps({"episodes": 20, "mean": {"return": 0.8, "win_rate": 0.65,
                                                                          "points_for": 33, "points_against": -32},
                                                 "return_std": 5.7}))
    doc = tmp_path / "r.md"
    doc.write_text("<!-- report: fights results/box_ppo --random results/random.json -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    text = doc.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| box_ppo (ppo)"))
    low, high = wilson_interval(33, 40)
    assert "| 1, 2 | 0.20M / 0.20M |" in row and "| sampled, 20 bouts |" in row
    assert f"| **0.82 (33/40; {low:.2f}-{high:.2f})** (18/20 / 15/20) |" in row, row
    assert "| **5.2** (3.5 / 7.0) |" in row  # the last evaluation's margins
    assert "| **2.5** (5.0 / 0.0) |" in row  # training bouts of the last 100k frames only
    assert "| random policy | - | - | - | uniform, 20 bouts | 0.8 (std 5.7) | 0.65 (13/20; 0.43-0.82) |" in text
    assert "_Not in the table: results/box_ppo/ppo-s3 (stopped at 100 frames)._" in text
    # the random line's file must be the random policy's JSON
    (res / "random.json").write_text("[1, 2]")
    capsys.readouterr()
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
    assert "random_policy.py" in capsys.readouterr().err
    # and one whose figures are not numbers is refused the same way, not with a traceback
    for bad in ({"episodes": "x", "mean": {"return": 0.8}}, {"episodes": 20, "mean": {"return": "0.8"}}):
        (res / "random.json").write_text(json.dumps(bad))
        assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "random_policy.py" in err and "Traceback" not in err, err


def test_every_policy_in_the_record_loads_with_todays_code():
    """The record is judged again by later code: a setting added to the env spec must still read the
    agent.json files written before and after it (each a NEAT genome or SB3 weights, no env built)."""
    from agents.base import load

    folders = sorted(p.parent for p in (Path(__file__).parents[1] / "results").glob("*/*/*/agent.json"))
    assert any(f.parent.parent.name == "boxing_ppo_pixram" for f in folders) and len(folders) >= 10
    for folder in folders:
        assert load(folder, device="cpu").policy() is not None, folder


def test_a_recorded_policy_stripped_for_the_budget_says_why_and_evaluate_says_it_too(tmp_path, monkeypatch,
                                                                                      capsys):
    import shutil
    import sys

    import pytest

    from experiments.errors import UserError
    from experiments.run import pick_agent

    record_run = load_script("scripts/record_run.py")
    src = REPO / "results" / "boxing_ppo_pixram" / "ppo-s2-20261203-155454"  # keeps a best/ of its own
    rec = tmp_path / "results" / "boxing_ppo_pixram" / src.name
    shutil.copytree(src, rec, ignore=shutil.ignore_patterns("tb"))
    # one folder of the list is no recorded run: nothing is touched, not even the good one before it
    monkeypatch.setattr(sys, "argv", ["record_run.py", "--strip-policy", "--why", "budget", str(rec),
                                      str(tmp_path)])
    assert record_run.main() == 2 and "not a recorded run" in capsys.readouterr().err
    assert (rec / "final" / "agent.json").is_file() and (rec / "best" / "agent.json").is_file()
    with pytest.raises(UserError, match="--why"):
        record_run.strip_policy(rec, "  ")
    freed = record_run.strip_policy(rec, "the random policy's level; seed 1 keeps its policy")
    assert freed > 3_000_000 and sorted(p.name for p in rec.iterdir()) == ["config.yaml", "eval", "meta.json"]
    meta = json.loads((rec / "meta.json").read_text())
    assert meta["record_policy"] is None and meta["record_policy_note"].startswith("the random policy's level")
    assert meta["frames"] == json.loads((src / "meta.json").read_text())["frames"]
    with pytest.raises(UserError, match="curves and evaluations only.*seed 1 keeps its policy"):
        pick_agent(rec)
    with pytest.raises(UserError, match="curves and evaluations only.*seed 1 keeps its policy"):
        pick_agent(rec, "best")
    with pytest.raises(UserError, match="nothing to strip"):
        record_run.strip_policy(rec, "again")


def test_a_best_policy_stripped_from_the_record_says_why_and_final_still_plays(tmp_path, monkeypatch, capsys):
    import shutil
    import sys

    import pytest

    from experiments.errors import UserError
    from experiments.run import pick_agent

    record_run = load_script("scripts/record_run.py")
    src = REPO / "results" / "boxing_ppo_pixram" / "ppo-s2-20261203-155454"  # keeps a best/ of its own
    rec = tmp_path / "results" / "boxing_ppo_pixram" / src.name
    shutil.copytree(src, rec, ignore=shutil.ignore_patterns("tb"))
    monkeypatch.setattr(sys, "argv", ["record_run.py", "--strip-best", str(rec)])
    assert record_run.main() == 2 and "--strip-best needs --why" in capsys.readouterr().err
    assert (rec / "best" / "agent.json").is_file()
    monkeypatch.setattr(sys, "argv", ["record_run.py", "--strip-best", "--strip-policy", "--why", "x", str(rec)])
    with pytest.raises(SystemExit):
        record_run.main()
    monkeypatch.setattr(sys, "argv", ["record_run.py", "--strip-best", "--why",
                                      "its fresh evaluation (18/20) is below final's (20/20)", str(rec)])
    assert record_run.main() == 0 and "best/ of" in capsys.readouterr().out
    assert not (rec / "best").exists() and (rec / "final" / "agent.json").is_file()
    meta = json.loads((rec / "meta.json").read_text())
    assert meta["record_best"] is None and meta["record_best_note"].startswith("its fresh evaluation")
    assert "record_policy" not in meta or meta["record_policy"] is not None
    with pytest.raises(UserError, match=r"best/ policy was taken out of the record \(its fresh evaluation.*"
                                        "--checkpoint final"):
        pick_agent(rec, "best")
    assert pick_agent(rec)[1] == rec / "final"
    with pytest.raises(UserError, match="keeps no best/ already"):
        record_run.strip_policy(rec, "again", best_only=True)
    # a training run is not its record; a best/ without a final/ is the last policy; a best/ stored as final/
    run = tmp_path / "runs" / "r"
    shutil.copytree(src, run, ignore=shutil.ignore_patterns("tb"))
    (run / "checkpoints").mkdir()
    with pytest.raises(UserError, match="holds checkpoints: it is a training run"):
        record_run.strip_policy(run, "x", best_only=True)
    (run / "checkpoints").rmdir()
    shutil.rmtree(run / "final")
    with pytest.raises(UserError, match="no final/ policy"):
        record_run.strip_policy(run, "x", best_only=True)
    meta = json.loads((rec / "meta.json").read_text())
    (rec / "meta.json").write_text(json.dumps({**meta, "record_best": "final"}))
    with pytest.raises(UserError, match="stored once in final/ already"):
        record_run.strip_policy(rec, "x", best_only=True)
    assert (run / "best" / "agent.json").is_file()


def test_every_recorded_run_keeps_its_policy_or_says_why_not():
    """results/README's budget rule: a run is recorded without a policy only with meta.json saying so."""
    runs = [m.parent for m in (REPO / "results").rglob("meta.json")
            if m.relative_to(REPO / "results").parts[0] not in ("evaluations", "in_progress")]
    assert len(runs) >= 35 and any(r.parent.parent.name == "parity_schedule_restarts" for r in runs)
    for run in runs:
        meta = json.loads((run / "meta.json").read_text())
        if not (run / "final").is_dir():
            assert "record_policy" in meta and meta["record_policy"] is None, run
            # a reference stack's run never saved one; any other says why its policy was taken out
            assert meta.get("record_policy_note") or run.parent.name == "parity_reference", run
        if not (run / "best").is_dir() and "record_best" in meta and meta["record_best"] is None:
            assert meta.get("record_best_note"), run  # a best/ taken out says why


def test_recording_past_the_budget_is_refused_and_leaves_the_record_as_it_was(tmp_path):
    import pytest

    from experiments.errors import UserError

    record_run = load_script("scripts/record_run.py")
    results = tmp_path / "results"
    first = record_run.record(fake_run(tmp_path / "runs", "smb_a", 1, {0: 1, 300: 9}), results, policy=False,
                              budget_mib=1)
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}
    (results / "filler").write_bytes(b"\0" * (2 * 2**20))
    second = fake_run(tmp_path / "runs", "smb_a", 2, {0: 1, 300: 9})
    with pytest.raises(UserError, match=r"at 2\.0 MiB, over its budget of 2 MiB.*--strip-policy"):
        record_run.record(second, results, policy=False, budget_mib=2)
    # a --replace over budget keeps the record it would have replaced
    with pytest.raises(UserError, match="over its budget"):
        record_run.record(tmp_path / "runs" / "smb_a" / "ppo-s1", results, policy=False, replace=True,
                          budget_mib=2)
    assert sorted(p.name for p in (results / "smb_a").iterdir()) == [first.name]
    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    # a record replaced counts once: the old copy's bytes are not added to the new one's
    size = record_run.folder_bytes(results)
    assert record_run.record(tmp_path / "runs" / "smb_a" / "ppo-s1", results, policy=False, replace=True,
                             budget_mib=(size + 1) / 2**20).is_dir()
    assert record_run.record(second, results, policy=False, budget_mib=3).is_dir()


def test_the_committed_record_is_within_its_budget():
    record_run = load_script("scripts/record_run.py")
    # a record into a folder inside results/ (results/parity) is held to the whole of results/
    assert record_run.budget_folder(REPO / "results" / "parity") == (REPO / "results").resolve()
    assert record_run.folder_bytes(REPO / "results") < record_run.BUDGET_MIB * 2**20


def test_a_best_policy_that_is_the_final_one_is_stored_once_and_still_read_as_best(tmp_path, monkeypatch, capsys):
    import shutil
    import sys

    from safetensors.numpy import load_file, save_file

    from experiments.run import pick_agent

    record_run = load_script("scripts/record_run.py")
    src = REPO / "results" / "boxing_ppo_pixram" / "ppo-s2-20261203-155454"  # best/ at 4.5M frames, final at 10.2M
    rec = tmp_path / "results" / "boxing_ppo_pixram" / src.name
    shutil.copytree(src, rec, ignore=shutil.ignore_patterns("tb"))
    assert not record_run.same_policy(rec / "best", rec / "final") and record_run.dedupe_best(rec) == 0
    # best/ made the final policy again, its tensors written in another order: another file, the same policy
    shutil.rmtree(rec / "best")
    shutil.copytree(rec / "final", rec / "best")
    tensors = load_file(rec / "final" / "policy.safetensors")
    save_file(dict(reversed(list(tensors.items()))), rec / "best" / "policy.safetensors")
    assert (rec / "best" / "policy.safetensors").read_bytes() != (rec / "final" / "policy.safetensors").read_bytes()
    assert record_run.same_policy(rec / "best", rec / "final")
    one = dict(tensors)
    one["action_net.bias"] = one["action_net.bias"] + 1
    save_file(one, tmp_path / "changed.safetensors")
    changed = tmp_path / "changed"
    shutil.copytree(rec / "final", changed)
    shutil.copy(tmp_path / "changed.safetensors", changed / "policy.safetensors")
    assert not record_run.same_policy(changed, rec / "final")

    monkeypatch.setattr(sys, "argv", ["record_run.py", "--dedupe-best", str(rec)])
    assert record_run.main() == 0 and "stored once" in capsys.readouterr().out
    assert not (rec / "best").exists() and json.loads((rec / "meta.json").read_text())["record_best"] == "final"
    _spec, folder, note = pick_agent(rec, "best")
    assert folder == rec / "final" and "final/" in note
    assert record_run.dedupe_best(rec) == 0  # a second pass finds nothing to drop
    # a list with a folder that is no recorded run touches nothing
    monkeypatch.setattr(sys, "argv", ["record_run.py", "--dedupe-best", str(rec), str(tmp_path)])
    assert record_run.main() == 2 and "not a recorded run" in capsys.readouterr().err


def test_a_bouts_block_pools_fresh_evaluations_by_policy_and_names_the_training_behind_each(tmp_path, capsys):
    from experiments.evaluate import results, wilson_interval
    from wrappers.settings import EnvSpec

    spec = EnvSpec(game="Boxing-Atari2600", state="Start", profile="boxing", sticky_prob=0.25)
    res = tmp_path / "results"
    files = []
    for seed, won, policy, env_seed, changed in [(1, 18, "final", 1, None), (2, 15, "final", 1, None),
                                                 (2, 9, "best", 1, None), (1, 11, "final", 2, None),
                                                 (1, 20, "final", 1, {"saved": 0.25, "evaluated": 0.0})]:
        run = res / "box_ppo" / f"ppo-s{seed}"
        if not run.exists():
            fake_run(res, "box_ppo", seed, {0: 0, 200_000: 0}, game="Boxing-Atari2600", state="Start")
            meta = json.loads((run / "meta.json").read_text())
            (run / "meta.json").write_text(json.dumps({**meta, "train_seconds": 600.0 * seed,
                                                       "best": {"frames": 150_000, "metric": "eval/win_rate"}}))
        eps = [{"r": float(seed * (i < won)), "progress": 0.0, "success": i < won, "frames": 7000 + i,
                "state": "Start", "reason": "bout_over", "metrics": {"kos": float(i < 2 * seed - 1)}}
               for i in range(20)]
        # an evaluation names the folder it read: here a training machine's runs/, not the record
        out = results(eps, {}, spec, False, run=f"/elsewhere/runs/box_ppo/{run.name}", agent="x", checkpoint=policy,
                      algo="ppo", states=["Start"], seed=env_seed,
                      env_overrides={"sticky_prob": changed} if changed else {})
        files.append(f"{policy}{seed}-{env_seed}{'-greedy' if changed else ''}.json")
        (tmp_path / files[-1]).write_text(json.dumps(out))
    (res / "random.json").write_text(json.dumps({"episodes": 20, "env_seed": 1, "return_std": 5.7,
                                                 "mean": {"return": 0.8, "win_rate": 0.65, "kos": 0.0}}))
    doc = tmp_path / "r.md"
    doc.write_text(f"<!-- report: bouts {' '.join(files)} --random results/random.json -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    lines = doc.read_text().splitlines()
    final = next(line for line in lines if line.startswith("| box_ppo (ppo) | final | 1, 2 |"))
    low, high = wilson_interval(33, 40)
    assert f"| 1, 2 | 1 | **0.82 (33/40; {low:.2f}-{high:.2f})** (18/20 / 15/20) |" in final, final
    assert "| **1.2** (0.9 / 1.5) |" in final  # margins: seed x wins / 20
    assert "| **0.10** (0.05 / 0.15) |" in final  # knock-outs a bout: 1 and 3 of 20
    assert final.endswith("| 0.20M / 0.20M | 10 / 20 | end |"), final
    best = next(line for line in lines if line.startswith("| box_ppo (ppo) | best"))
    assert "| 2 | 1 | 0.45 (9/20;" in best and best.endswith("| 0.20M | 20 | 0.15M |"), best
    # the same policy on other bouts, or with the env changed for its evaluation, is a line of its own
    assert any(line.startswith("| box_ppo (ppo) | final | 1 | 2 | 0.55 (11/20;") for line in lines), lines
    assert any(line.startswith("| box_ppo (ppo) | final (sticky_prob 0.0) | 1 | 1 | 1.00 (20/20;") for line in lines)
    assert sum(line.startswith("| box_ppo") for line in lines) == 4
    assert any(line.startswith("| random policy | uniform | - | 1 | 0.65 (13/20; 0.43-0.82) | 0.8 | 0.00 |")
               for line in lines)
    # the same evaluation twice in one block would count its bouts twice
    doc.write_text(f"<!-- report: bouts {files[0]} {files[1]} {files[0]} -->\n<!-- /report -->\n")
    capsys.readouterr()
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
    assert "count that policy twice" in capsys.readouterr().err
    # a file that is not an evaluation, or one with no bouts or no rate, is refused in one paragraph
    doc.write_text(f"<!-- report: bouts {files[0]} -->\n<!-- /report -->\n")
    good = json.loads((tmp_path / files[0]).read_text())
    for bad in ({"fps": 1.0}, {**good, "overall": {**good["overall"], "episodes": 0}},
                {**good, "overall": {**good["overall"], "success_rate": float("nan")}}, {**good, "run": None}):
        (tmp_path / files[0]).write_text(json.dumps(bad))
        assert main(["report", str(doc), "--root", str(tmp_path)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert files[0] in err and "results.json" in err and "Traceback" not in err, err


def test_a_fights_block_calls_neat_greedy_whatever_its_file_says(tmp_path):
    res = tmp_path / "results"
    run = fake_run(res, "box_neat", 1, {0: 0, 100: 0}, agent={"algo": "neat"}, game="Boxing-Atari2600",
                   state="Start", eval={"deterministic": False})
    (run / "eval" / "history.jsonl").write_text(json.dumps(
        {"frames": 100, "return": 1.0, "win_rate": 0.5, "episodes": [{"r": 1.0}, {"r": -1.0}]}) + "\n")
    doc = tmp_path / "r.md"
    doc.write_text("<!-- report: fights results/box_neat -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    row = next(line for line in doc.read_text().splitlines() if line.startswith("| box_neat (neat)"))
    assert "| greedy, 2 bouts |" in row, row


def test_runs_of_one_experiment_whose_learner_changed_are_lines_of_their_own(tmp_path):
    """A file whose agent settings changed after some of its runs (A2C's optimizer): the fights and bouts
    tables give the old and the new runs a line each, named by the setting, and pool the rest as seeds."""
    from experiments.evaluate import results
    from wrappers.settings import EnvSpec

    res = tmp_path / "results"
    spec = EnvSpec(game="Boxing-Atari2600", state="Start", profile="boxing")
    files = []
    for seed, agent in [(1, {"algo": "a2c", "hyperparams": {"n_steps": 5}}),
                        # where a run ran is not what learned: still a seed of the old line
                        (2, {"algo": "a2c", "device": "cpu", "hyperparams": {"n_steps": 5}}),
                        (3, {"algo": "a2c", "hyperparams": {"n_steps": 5, "rms_prop_tf_like": True}})]:
        run = fake_run(res, "box_a2c", seed, {0: 0, 100: 0}, agent=agent, game="Boxing-Atari2600", state="Start")
        (run / "eval" / "history.jsonl").write_text(json.dumps(
            {"frames": 100, "return": 1.0, "win_rate": 0.5, "episodes": [{"r": 1.0}, {"r": -1.0}]}) + "\n")
        eps = [{"r": 1.0, "progress": 0.0, "success": i < seed, "frames": 7000, "state": "Start",
                "reason": "bout_over", "metrics": {}} for i in range(4)]
        out = results(eps, {}, spec, False, run=f"/elsewhere/runs/box_a2c/{run.name}", agent="x",
                      checkpoint="final", algo="a2c", states=["Start"], seed=1)
        files.append(f"final{seed}.json")
        (tmp_path / files[-1]).write_text(json.dumps(out))
    doc = tmp_path / "r.md"
    doc.write_text("<!-- report: fights results/box_a2c -->\n<!-- /report -->\n\n"
                   f"<!-- report: bouts {' '.join(files)} -->\n<!-- /report -->\n")
    assert main(["report", str(doc), "--root", str(tmp_path)]) == 0
    lines = [line for line in doc.read_text().splitlines() if line.startswith("| box_a2c")]
    assert len(lines) == 4, lines
    old, new = "| box_a2c (a2c; rms_prop_tf_like false) |", "| box_a2c (a2c; rms_prop_tf_like true) |"
    assert lines[0].startswith(f"{old} 1, 2 |") and lines[1].startswith(f"{new} 3 |"), lines
    assert lines[2].startswith(f"{old} final | 1, 2 | 1 | **0.38 (3/8;") and lines[3].startswith(
        f"{new} final | 3 | 1 | 0.75 (3/4;"), lines
    # told apart by the files alone: a game whose ROM this machine lacks splits as on the machine that has it
    from experiments.fights import settings_apart

    sf2 = [fake_run(tmp_path / "sf2", "sf2_a2c", seed, {0: 0, 100: 0}, agent=agent,
                    game="StreetFighterIISpecialChampionEdition-Genesis", state="Champion.Level1.RyuVsGuile")
           for seed, agent in [(1, {"algo": "a2c"}), (2, {"algo": "a2c", "hyperparams": {"rms_prop_tf_like": True}})]]
    assert settings_apart(sf2) == ["rms_prop_tf_like false", "rms_prop_tf_like true"]
