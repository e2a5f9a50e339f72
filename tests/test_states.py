"""Start states cut from episodes (a policy's or a movie's), found by experiments and `roms list`, and a pool
drawn more often where the agent fails."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import smb_spec, tiny_neat_experiment

from experiments.cli import main
from wrappers import make_env, roms


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("states")
    exp = tiny_neat_experiment(tmp / "s.yaml", "st")
    assert main(["train", str(exp), "--runs-dir", str(tmp / "runs")]) == 0
    (run,) = (tmp / "runs" / "st").iterdir()
    return run


@pytest.mark.slow
def test_states_cut_from_a_policy_episode_start_where_it_was(tiny_run, capsys):
    assert main(["states", "make", str(tiny_run), "--every", "40", "--prefix", "Level1-1-test"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Level1-1-test000000 (0 frames, progress 0)" in out
    names = [s for s in roms.states("SuperMarioBros-Nes") if s.startswith("Level1-1-test")]
    assert len(names) >= 2 and "Level1-1-test000040" in names  # found beside the game's own states
    # the state at 40 frames starts where the episode was after 40 frames
    with make_env(smb_spec(state="Level1-1-test000040", frame_stack=1, obs="tiles")) as env:
        env.reset()
        data = env.unwrapped.data
        assert data.lookup_value("player_x") > 40  # Mario starts at x 40 on 1-1
    assert main(["roms", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    smb = next(r for r in listed if r["game"] == "SuperMarioBros-Nes")
    assert "Level1-1-test000040" in smb["states"]


@pytest.mark.slow
def test_states_cut_from_a_bk2_movie(tiny_run, capsys):
    from experiments.replay import movie_env, movie_steps

    assert main(["evaluate", str(tiny_run), "--episodes", "1", "--bk2", "--json"]) == 0
    (episode,) = json.loads(capsys.readouterr().out)["episodes"]
    (movie,) = sorted((tiny_run / "eval" / "bk2").glob("*/*.bk2"))
    assert main(["states", "make", str(movie), "--every", "25", "--prefix", "Level1-1-movie"]) == 0
    names = sorted(s for s in roms.states("SuperMarioBros-Nes") if s.startswith("Level1-1-movie"))
    # one every 25 frames of the episode the movie holds, its start included
    assert names == [f"Level1-1-movie{f:06d}" for f in range(0, episode["frames"] + 1, 25)]
    # each file holds the emulator exactly as the movie's replay had it at the state's frame
    folder = roms.store_dir() / roms.canonical_game("SuperMarioBros-Nes")
    with movie_env(movie) as (mv, env):
        ram = {0: env.unwrapped.get_ram().copy()}
        for frames in movie_steps(mv, env):
            if frames % 25 == 0:
                ram[frames] = env.unwrapped.get_ram().copy()
        for name in names:
            env.unwrapped.em.set_state(gzip.decompress((folder / f"{name}.state").read_bytes()))
            assert np.array_equal(env.unwrapped.get_ram(), ram[int(name[-6:])]), name
    # and loads by name as the game's own states do, further along the level the later it was cut
    xs = []
    for name in (names[0], names[len(names) // 2], names[-1]):
        with make_env(smb_spec(state=name, frame_stack=1, obs="tiles")) as env:
            env.reset()
            data = env.unwrapped.data
            xs.append(256 * data.lookup_value("xscrollHi") + data.lookup_value("xscrollLo"))
    assert xs[0] == 0 and xs[-1] > xs[1] > 0  # Level1-1's start, then further along
    assert xs[-1] <= episode["progress"]


def test_a_pool_weighted_by_failures_starts_where_the_agent_fails():
    spec = smb_spec(state=["Level1-1", "Level2-1"], pool_weighting="failures", frame_stack=1, obs="tiles")
    with make_env(spec, seed=0) as env:
        weights_now = env.get_wrapper_attr("pool_weights")  # the pool lives in the RetroGame wrapper
        assert weights_now() == {"Level1-1": 0.5, "Level2-1": 0.5}
        note = env.get_wrapper_attr("note_outcome")
        draws = []
        for _ in range(40):
            env.reset()
            state = env.get_wrapper_attr("state_name")
            draws.append(state)
            note(state == "Level1-1")  # the agent always clears 1-1 and always fails 2-1
        weights = weights_now()
        assert weights["Level2-1"] > 0.8
        assert draws[-20:].count("Level2-1") > 14  # and the draws followed
    assert np.isclose(sum(weights.values()), 1.0)
