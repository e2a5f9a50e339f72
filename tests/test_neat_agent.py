"""NEAT: two small generations on SMB with 2 workers, checkpoint, resume, champion evaluation;
the tutorial's config; extinction keeps the run."""

from __future__ import annotations

import json
from pathlib import Path

import neat
import numpy as np
import pytest
import yaml
from conftest import meta, one_run, tb_scalars

import agents.base as agents
from agents.base import AgentError
from agents.neat_agent import Actor
from agents.neat_config import config_path, load_neat_config
from experiments.cli import main


def write_experiment(tmp_path: Path, generations: int, config: str = "smb", **agent) -> Path:
    data = {
        "name": "tiny_neat", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
        "env": {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 120},
        "agent": {"algo": "neat", "config": config, "pop_size": 6, "workers": 2, **agent},
        "budget": {"frames": 10_000_000, "generations": generations}, "seeds": [3],
        "eval": {"every_frames": 1, "episodes": 1},
    }
    path = tmp_path / "neat.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_two_generations_checkpoint_resume_and_evaluate(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", str(write_experiment(tmp_path, 2, last_action=True)), "--runs-dir", str(runs)]) == 0
    run = one_run(runs)
    first = meta(run)
    assert first["status"] == "finished" and first["frames"] > 0
    assert [v for _, v in tb_scalars(run, "neat/generation")] == [0.0, 1.0]
    gen_frames = [s for s, _ in tb_scalars(run, "neat/generation")]
    assert (run / "neat.cfg").is_file() and (run / "final" / "champion.json").is_file()
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    assert (ckpt / "population.json.gz").is_file()
    assert json.loads((ckpt / "checkpoint.json").read_text())["frames"] == first["frames"]
    resolved = neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                           neat.DefaultStagnation, str(run / "neat.cfg"))
    assert resolved.pop_size == 6 and resolved.genome_config.num_inputs == 13 * 16 + 5  # + the last action
    assert resolved.genome_config.num_outputs == 5

    assert main(["train", "--resume", str(run), "--set", "budget.generations=4"]) == 0
    second = meta(run)
    assert second["status"] == "finished" and second["resumes"] == 1 and second["frames"] > first["frames"]
    gens = tb_scalars(run, "neat/generation")
    assert [v for _, v in gens] == [0.0, 1.0, 2.0, 3.0]  # the generation counter continues
    steps = [s for s, _ in gens]
    assert steps[:2] == gen_frames and steps == sorted(steps)  # and the frames axis does too
    for tag in ("neat/best_fitness", "neat/species", "neat/champion_connections", "train/episode_progress"):
        assert tb_scalars(run, tag), tag
    # best_progress is the furthest episode of each generation, on the generation's frames step
    best = tb_scalars(run, "neat/best_progress")
    assert [s for s, _ in best] == steps
    episodes = tb_scalars(run, "train/episode_progress")
    assert max(v for _, v in best) == max(v for _, v in episodes) > 0
    evals = [s for s, _ in tb_scalars(run, "eval/progress")]
    assert evals[0] == 0 and evals == sorted(set(evals)) and evals[-1] == second["frames"]
    capsys.readouterr()

    # the champion is served through the common interface, like any SB3 model
    agent = agents.load(run / "final")
    assert agent.algo == "neat" and agent.champion.fitness is not None
    assert main(["evaluate", str(run), "--episodes", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["algo"] == "neat" and len(report["episodes"]) == 1
    # deterministic env and network: evaluation replays the champion's training episode
    assert report["episodes"][0]["return"] == pytest.approx(agent.champion.fitness)


@pytest.mark.slow
def test_a_resumed_run_evolves_the_same_champions_as_an_uninterrupted_one(tmp_path):
    """The checkpoint (population.json.gz, rng.json) holds the whole evolutionary state: stopping after two
    generations and resuming to four gives, generation by generation, what four generations in one go give."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    for runs, generations in ((straight, 4), (split, 2)):
        exp = write_experiment(tmp_path, generations, target_species=2)
        data = yaml.safe_load(exp.read_text())
        data["eval"] = {"every_frames": 10_000_000, "episodes": 1}
        exp.write_text(yaml.safe_dump(data))
        assert main(["train", str(exp), "--runs-dir", str(runs)]) == 0
    assert main(["train", "--resume", str(one_run(split)), "--set", "budget.generations=4"]) == 0
    for tag in ("neat/best_fitness", "neat/mean_fitness", "neat/species", "neat/champion_connections",
                "neat/compatibility_threshold"):
        a, b = tb_scalars(one_run(straight), tag), tb_scalars(one_run(split), tag)
        assert len(a) == 4 and a == b, tag
    champions = [json.loads((one_run(r) / "final" / "champion.json").read_text()) for r in (straight, split)]
    assert champions[0] == champions[1]


def _cycling_genome(config, cycle: dict[int, int], extra: dict[tuple[int, int], float] | None = None,
                    biases: dict[int, float] | None = None):
    """A genome whose only links go from last-action input ``a`` to output ``cycle[a]`` (weight 5), plus
    ``extra`` links {(last-action input, output): weight} and output ``biases``."""
    gc = config.genome_config
    gc.innovation_tracker = neat.InnovationTracker()
    genome = neat.DefaultGenome(0)
    genome.configure_new(gc)
    genome.connections.clear()
    for node in genome.nodes.values():
        node.bias, node.response = 0.0, 1.0
    n_obs = gc.num_inputs - gc.num_outputs
    links = {(a, out): 5.0 for a, out in cycle.items()} | (extra or {})
    for (a, out), weight in links.items():
        key = (gc.input_keys[n_obs + a], gc.output_keys[out])
        genome.connections[key] = gc.connection_gene_type(key, innovation=len(genome.connections))
        genome.connections[key].weight, genome.connections[key].enabled = weight, True
    for out, bias in (biases or {}).items():
        genome.nodes[gc.output_keys[out]].bias = bias
    return genome


def test_last_action_inputs_let_a_network_alternate_on_a_still_picture():
    config, _ = load_neat_config("smb", 2 + 3, 3)
    genome = _cycling_genome(config, {0: 1, 1: 2, 2: 0})
    still = np.zeros(2)
    actor = Actor(genome, config, discrete=True, scale=1.0, last_action=True)
    assert [actor(still) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    actor.reset()  # a new episode forgets the last action
    assert actor(still) == 0
    # the same genome without the feedback sees only the picture, and repeats itself
    blind = Actor(genome, load_neat_config("smb", 2 + 3, 3)[0], discrete=True, scale=1.0, last_action=False)
    assert [blind(np.zeros(5)) for _ in range(4)] == [0, 0, 0, 0]
    # buttons: the pressed buttons are fed back. Button 0 is pressed by its bias and released by its own
    # feedback; pressing 0 presses 1 next, pressing 1 presses 2 (tanh outputs; pressed above 0.5).
    genome = _cycling_genome(config, {0: 1, 1: 2}, extra={(0, 0): -5.0}, biases={0: 1.0})
    buttons = Actor(genome, config, discrete=False, scale=1.0, last_action=True)
    seq = [tuple(int(b) for b in buttons(still)) for _ in range(5)]
    assert seq == [(1, 0, 0), (0, 1, 0), (1, 0, 1), (0, 1, 0), (1, 0, 1)]
    buttons.reset()
    assert tuple(buttons(still)) == (1, 0, 0)
    # without the feedback the same genome holds button 0 for ever
    blind = Actor(genome, load_neat_config("smb", 2 + 3, 3)[0], discrete=False, scale=1.0, last_action=False)
    assert [tuple(int(b) for b in blind(np.zeros(5))) for _ in range(3)] == [(1, 0, 0)] * 3


def test_tutorial_config_loads_with_one_warning():
    raw = config_path("tutorial")
    with pytest.raises(RuntimeError, match="no_fitness_termination"):
        neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet, neat.DefaultStagnation,
                    str(raw))
    config, warnings = load_neat_config("tutorial", 840, 9)
    filled = [w for w in warnings if "filled keys" in w]
    assert len(filled) == 1
    assert "[NEAT] no_fitness_termination = False" in filled[0]
    assert "[DefaultGenome] single_structural_mutation = False" in filled[0]
    assert config.genome_config.single_structural_mutation is False  # not the truthy string 'false'
    assert (config.pop_size, config.genome_config.num_inputs, config.genome_config.num_outputs) == (30, 840, 9)
    assert any("1120/12 replaced by 840/9" in w for w in warnings)


def test_shipped_neat_experiments_load_their_configs_without_a_warning():
    from experiments.spec import load_spec
    from wrappers import configs, roms

    warned, checked = {}, []
    for name in configs.available("experiments"):
        spec = load_spec(name, require_rom=False)
        if spec.agent.algo != "neat":
            continue
        if roms.rom_path(spec.game):
            agent = agents.create(spec.agent, spec.env_spec(), 1)
            agent.setup()  # the sizes of the env the experiment makes
            warnings = agent.warnings
        else:  # no ROM here to size the env: a config that leaves the sizes to the env agrees with any
            warnings = load_neat_config(spec.agent.config, 7, 3, pop_size=spec.agent.pop_size)[1]
        checked.append(name)
        if warnings:
            warned[name] = warnings
    assert {"smb_neat", "smb_neat_pixels", "airstriker_neat", "sf2_neat", "sonic2_neat"} <= set(checked)
    assert not warned


def test_unknown_genome_key_is_an_error_not_silence(tmp_path):
    cfg = tmp_path / "typo.cfg"
    cfg.write_text(config_path("smb").read_text().replace("conn_add_prob", "conn_add_prb"))
    with pytest.raises(AgentError, match=r"unknown keys: conn_add_prb \(did you mean conn_add_prob\?\)"):
        load_neat_config(str(cfg), 10, 3)
    with pytest.raises(AgentError, match="NEAT config 'nope' not found"):
        load_neat_config("nope", 10, 3)


@pytest.mark.slow
def test_extinction_without_reset_keeps_checkpoint_and_champion(tmp_path):
    cfg = tmp_path / "extinct.cfg"
    text = config_path("smb").read_text()
    for old, new in (("reset_on_extinction   = True", "reset_on_extinction   = False"),
                     ("max_stagnation       = 15", "max_stagnation       = 1"),
                     ("species_elitism      = 2", "species_elitism      = 0")):
        assert old in text
        text = text.replace(old, new)
    cfg.write_text(text)
    runs = tmp_path / "runs"
    assert main(["train", str(write_experiment(tmp_path, 12, config=str(cfg))), "--runs-dir", str(runs)]) == 0
    run = one_run(runs)
    m = meta(run)
    assert m["status"] == "extinct" and "every species went extinct" in m["end_message"]
    assert (run / "final" / "champion.json").is_file()
    assert sorted((run / "checkpoints").iterdir())
    assert agents.load(run / "final").champion.fitness is not None


@pytest.mark.slow
def test_champion_movies_play_one_episode_whatever_eval_episodes_says(tmp_path):
    runs = tmp_path / "runs"
    path = write_experiment(tmp_path, 1, record_champions=True)
    assert main(["train", str(path), "--runs-dir", str(runs), "--set", "eval.episodes=2"]) == 0
    run = one_run(runs)
    assert meta(run)["status"] == "finished"
    (movie,) = (run / "eval" / "bk2").glob("champion-gen*.bk2")
    assert movie.stat().st_size > 0 and not (run / "eval" / "bk2" / "tmp").exists()
    # the evaluations themselves still play the protocol's two episodes
    from experiments.run import read_history

    assert [len(h["episodes"]) for h in read_history(run)] == [2, 2]


@pytest.mark.slow
def test_time_budget_ends_the_run_with_its_champion(tmp_path):
    runs = tmp_path / "runs"
    path = write_experiment(tmp_path, 10_000)
    assert main(["train", str(path), "--runs-dir", str(runs), "--set", "budget.minutes=0.15"]) == 0
    run = one_run(runs)
    m = meta(run)
    assert m["status"] == "finished" and m["end_message"] == "time budget of 0.15 min reached"
    assert 9 <= m["train_seconds"] < 120 and m["frames"] > 0
    gens = tb_scalars(run, "neat/generation")
    assert 1 <= len(gens) < 10_000 and (run / "final" / "champion.json").is_file()


@pytest.mark.slow
def test_demo_trains_then_films_the_champion(tmp_path, capsys):
    runs = tmp_path / "runs"
    config = write_experiment(tmp_path, 10_000, last_action=True)
    assert main(["demo", "--minutes", "0.1", "--config", str(config), "--runs-dir", str(runs)]) == 0
    run = one_run(runs)
    out = capsys.readouterr().out
    assert f"runfolder:{run}" in "".join(out.split()) and "tensorboard --logdir" in out  # rich wraps lines
    m = meta(run)
    assert m["status"] == "finished" and m["end_message"] == "time budget of 0.1 min reached"
    videos = sorted((run / "eval").glob("*.mp4"), key=lambda v: v.name == "shipped_champion.mp4")
    # its own champion first, then the shipped one that clears 1-1 (models/smb_neat_1-1) to the flag
    assert len(videos) == 2 and videos[1].name == "shipped_champion.mp4", videos
    assert all(v.stat().st_size > 10_000 for v in videos)
    assert "shipped champion that clears 1-1" in " ".join(out.split())


def test_the_shipped_champion_reaches_the_flag_of_1_1(tmp_path, capsys):
    import shutil

    shipped = Path(__file__).resolve().parent.parent / "models" / "smb_neat_1-1"
    agent = shutil.copytree(shipped, tmp_path / "smb_neat_1-1")  # evaluate writes beside the agent
    assert main(["evaluate", str(agent), "--episodes", "1", "--json"]) == 0
    (episode,) = json.loads(capsys.readouterr().out)["episodes"]
    assert episode["success"] and episode["reason"] == "success" and episode["progress"] >= 3000


def test_the_recorded_ppo_policy_reaches_the_flag_of_1_1(tmp_path, capsys):
    import shutil

    # over the 2 MiB a file may weigh outside results/, the PPO policy that clears 1-1 ships as its run in the record
    run = Path(__file__).resolve().parent.parent / "results/smb_ppo_curriculum/ppo-s1-20261203-011936"
    agent = shutil.copytree(run, tmp_path / "run")  # evaluate writes into the folder: keep the record as it is
    assert main(["evaluate", str(agent), "--episodes", "1", "--json"]) == 0
    (episode,) = json.loads(capsys.readouterr().out)["episodes"]
    assert episode["success"] and episode["reason"] == "success" and episode["progress"] >= 3000
