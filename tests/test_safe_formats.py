"""A saved agent or run folder is data, never code.

Crafted pickles in place of every file retrodojo reads are refused or ignored by every command that reads run
folders (no marker file appears, exit 2, no traceback); the new loaders are fuzzed with random JSON over their
real key names and truncated files; NEAT and the four SB3 algorithms save, load and resume exactly on the new
formats; an earlier version's pickled run loads only with --trust-pickles and converts once.
"""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
import pickle
import random
import shutil
import tempfile
import zipfile
from pathlib import Path

import neat
import numpy as np
import pytest
import torch
from conftest import smb_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agents.base as agents
from agents import neat_state, safe_io
from agents.base import AgentError
from agents.neat_agent import NEATAgent, NEATSpec
from agents.neat_config import load_neat_config
from agents.sb3_agents import A2CAgent, A2CLSTMAgent, PPOAgent, PPOLSTMAgent
from experiments.cli import main
from experiments.run import Run
from experiments.spec import validate_spec
from wrappers.errors import UserError
from wrappers.factory import make_vec_env

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
ENV = {"actions": "right_only", "obs": "tiles", "frame_stack": 1, "stuck_frames": 60}
AGENT = {"neat": {"algo": "neat", "pop_size": 6, "workers": 1},
         "ppo": {"algo": "ppo", "policy": "mlp", "n_envs": 1, "device": "cpu",
                 "hyperparams": {"n_steps": 16, "batch_size": 16, "n_epochs": 1}}}


class Evil:
    """Unpickling this creates the file ``path``: proof that a loader ran the file's code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def crafted(marker: Path) -> bytes:
    """A pickle whose loading creates ``marker``."""
    return pickle.dumps(Evil(marker))


def crafted_zip(marker: Path) -> bytes:
    """An SB3 model.zip whose data section and weights are crafted pickles."""
    payload = {":type:": "<class 'x'>", ":serialized:": base64.b64encode(crafted(marker)).decode()}
    data = {k: payload for k in ("policy_class", "observation_space", "action_space", "lr_schedule")}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data", json.dumps(data))
        zf.writestr("policy.pth", crafted(marker))
        zf.writestr("policy.optimizer.pth", crafted(marker))
        zf.writestr("pytorch_variables.pth", crafted(marker))
        zf.writestr("_stable_baselines3_version", "2.9.2")
    return buf.getvalue()


def run_cli(args, capsys) -> tuple[int, str]:
    """Run the CLI; its output as one line, asserting no traceback."""
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text, text
    return rc, " ".join(text.split())


def make_run(tmp_path: Path, algo: str, frames: int = 1024) -> Path:
    """A run folder with a checkpoint and final/ in the safe formats, as `train` leaves it (one generation
    made, no training: the files are what matters)."""
    spec = validate_spec({"name": f"safe_{algo}", "game": "SuperMarioBros-Nes", "state": "Level1-1",
                          "profile": "smb", "env": ENV, "agent": AGENT[algo], "budget": {"frames": frames},
                          "eval": {"episodes": 1}}, "test")
    run = Run.create(spec, 1, tmp_path / "runs")
    agent = agents.create(spec.agent, spec.env_spec(), 1)
    if algo == "neat":
        agent.setup(run.dir)
        agent.population = neat.Population(agent.config, seed=1)
        agent.champion = next(iter(agent.population.population.values()))
        agent.champion.fitness = 1.0
    else:
        venv = make_vec_env(spec.env_spec(), 1, seed=1)
        try:
            agent.model = agent._new_model(venv)
        finally:
            venv.close()
    run.save_checkpoint(0, agent.write_checkpoint)
    run.save_final(agent)
    run.close("interrupted")
    return run.dir


@pytest.fixture(scope="module")
def safe_runs(tmp_path_factory) -> dict[str, Path]:
    """One NEAT and one PPO run folder in the safe formats (made once; tests copy them)."""
    root = tmp_path_factory.mktemp("safe_runs")
    return {algo: make_run(root, algo) for algo in ("neat", "ppo")}


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "runs" / src.parent.name / src.name
    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------------------- crafted files in run folders


SAFE_FILES = {"neat": ["champion.json", "population.json.gz", "rng.json", "neat.cfg"],
              "ppo": ["policy.safetensors", "optimizer.safetensors", "model.json", "rng.json"]}
#: The files each command reads: playing reads the policy, resuming what training needs.
PLAYED = {"champion.json", "neat.cfg", "policy.safetensors", "model.json"}
RESUMED = {"population.json.gz", "rng.json", "policy.safetensors", "optimizer.safetensors", "model.json"}


@pytest.mark.parametrize("algo", ["neat", "ppo"])
def test_crafted_pickles_in_place_of_each_file_are_refused_by_every_command(safe_runs, tmp_path, capsys, algo):
    marker = tmp_path / "PWNED"
    for name in SAFE_FILES[algo]:
        run = copy_run(safe_runs[algo], tmp_path / name)
        ckpt = Run.checkpoints_of(run)[-1]
        for folder in (ckpt, run / "final"):
            if (folder / name).is_file():
                (folder / name).write_bytes(crafted(marker) if not name.endswith(".gz") else
                                            gzip.compress(crafted(marker)))
        commands = [["evaluate", run, "--episodes", "1"], ["evaluate", run, "--checkpoint", "latest"],
                    ["states", "make", run, "--out", tmp_path / "states"]] if name in PLAYED else []
        commands += [["train", "--resume", run]] if name in RESUMED else []
        for args in commands:
            rc, text = run_cli(args, capsys)
            assert rc == 2 and "error:" in text and name in text, (name, args, text)
            assert not marker.exists(), (name, args)
        assert commands and (run / "final" / "agent.json").is_file() and Run.checkpoints_of(run), \
            "a saved run is never lost"


@pytest.mark.parametrize("algo", ["neat", "ppo"])
def test_an_earlier_versions_pickles_are_refused_with_a_paragraph_and_ignored_beside_safe_files(
        safe_runs, tmp_path, capsys, algo):
    marker = tmp_path / "PWNED"
    legacy = {"neat": {"champion.pkl": crafted(marker), "population.pkl.gz": gzip.compress(crafted(marker)),
                       "rng.pkl": crafted(marker)},
              "ppo": {"model.zip": crafted_zip(marker), "rng.pkl": crafted(marker)}}[algo]
    # beside the safe files they are never read: everything works as before
    run = copy_run(safe_runs[algo], tmp_path / "beside")
    for folder in (run / "final", Run.checkpoints_of(run)[-1]):
        for name, data in legacy.items():
            (folder / name).write_bytes(data)
    rc, text = run_cli(["evaluate", run, "--episodes", "1", "--json"], capsys)
    assert rc == 0 and not marker.exists(), text
    rc, text = run_cli(["evaluate", run, "--checkpoint", "latest", "--episodes", "1"], capsys)
    assert rc == 0 and not marker.exists(), text

    # in place of them (a folder as earlier versions wrote it): refused, saying why and how to load it anyway
    run = copy_run(safe_runs[algo], tmp_path / "instead")
    bk2 = tmp_path / "movie.bk2"
    bk2.write_bytes(crafted(marker))
    for folder in (run / "final", Run.checkpoints_of(run)[-1]):
        for name in SAFE_FILES[algo]:
            if name != "neat.cfg":
                (folder / name).unlink(missing_ok=True)
        for name, data in legacy.items():
            (folder / name).write_bytes(data)
        meta = json.loads((folder / "agent.json").read_text())
        del meta["format"]
        (folder / "agent.json").write_text(json.dumps(meta))
    meta_before = (run / "meta.json").read_bytes()
    for args in (["evaluate", run], ["evaluate", run / "final"], ["train", "--resume", run],
                 ["states", "make", run, "--out", tmp_path / "states"], ["convert", run],
                 ["convert", run, "--out", tmp_path / "small"]):
        rc, text = run_cli(args, capsys)
        assert rc == 2 and "as Python pickles" in text and "--trust-pickles" in text, (args, text)
        assert f"retrodojo convert {run} --trust-pickles" in text, text
        assert not marker.exists(), args
    assert (run / "meta.json").read_bytes() == meta_before, "a refused resume writes nothing"
    for args in (["replay", bk2], ["compare", run, "--json"]):  # they read no agent: nothing to unpickle
        rc, text = run_cli(args, capsys)
        assert rc in (0, 2) and not marker.exists(), (args, text)
    assert not (tmp_path / "small").exists()


def test_an_agent_json_naming_other_files_is_not_followed(safe_runs, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model.zip").write_bytes(crafted_zip(marker))
    (elsewhere / "champion.pkl").write_bytes(crafted(marker))
    evil_profile = elsewhere / "profile.yaml"
    evil_profile.write_bytes(crafted(marker))
    movies = tmp_path / "movies"
    for algo in ("neat", "ppo"):
        run = copy_run(safe_runs[algo], tmp_path / algo)
        agent_json = run / "final" / "agent.json"
        meta = json.loads(agent_json.read_text())
        meta.update(model=str(elsewhere / "model.zip"), champion=str(elsewhere / "champion.pkl"),
                    path=str(elsewhere))
        meta["env_spec"]["record_dir"] = str(movies)
        agent_json.write_text(json.dumps(meta))
        rc, text = run_cli(["evaluate", run / "final", "--episodes", "1"], capsys)
        assert rc == 0 and not marker.exists() and not movies.exists(), text
        meta["env_spec"]["profile"] = str(evil_profile)
        agent_json.write_text(json.dumps(meta))
        rc, text = run_cli(["evaluate", run / "final", "--episodes", "1"], capsys)
        assert rc == 2 and "profile" in text and not marker.exists(), text


# --------------------------------------------------------------------------- fuzzing the loaders


def _documents(keys: list[str]):
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**10), st.floats(), st.text(max_size=8),
                        st.sampled_from(keys))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(keys) | st.text(max_size=4), inner, max_size=5), max_leaves=20)


def _mutate(doc, data, values) -> object:
    """``doc`` with one value somewhere inside replaced by a drawn one (or a key dropped)."""
    doc = copy.deepcopy(doc)
    node, path = doc, []
    for _ in range(data.draw(st.integers(0, 6))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) \
            if isinstance(node, list) else []
        children = [(k, v) for k, v in children if isinstance(v, (dict, list)) and v]
        if not children:
            break
        key, node = data.draw(st.sampled_from(children))
        path.append(key)
    keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
    if not keys:
        return data.draw(values)
    key = data.draw(st.sampled_from(keys))
    if isinstance(node, dict) and data.draw(st.booleans()):
        del node[key]
    else:
        node[key] = data.draw(values)
    return doc


def _keys(doc, out=None) -> list[str]:
    out = set() if out is None else out
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(k)
            _keys(v, out)
    elif isinstance(doc, list):
        for v in doc[:5]:
            _keys(v, out)
    return sorted(out)


@pytest.fixture(scope="module")
def saved(safe_runs) -> dict[str, Path]:
    return {"neat": safe_runs["neat"] / "final", "ppo": safe_runs["ppo"] / "final",
            "neat_ckpt": Run.checkpoints_of(safe_runs["neat"])[-1],
            "ppo_ckpt": Run.checkpoints_of(safe_runs["ppo"])[-1]}


def _load_neat_checkpoint(folder: Path):
    agent = NEATAgent(NEATSpec(algo="neat", pop_size=6), smb_spec(**ENV), 1)
    agent.config, _ = load_neat_config("smb", 13 * 16, 5, pop_size=6)
    agent._restore(folder)
    return agent


def _load_ppo_checkpoint(folder: Path):
    agent = agents.load(folder)
    return agent._read_model(folder, None, "cpu", training=True)


LOADERS = {"agent.json": lambda f: agents.load(f), "champion.json": lambda f: agents.load(f),
           "model.json": _load_ppo_checkpoint, "rng.json": lambda f: safe_io.restore_rng(f),
           "population.json.gz": _load_neat_checkpoint}
FILES = [("neat", "agent.json"), ("neat", "champion.json"), ("neat_ckpt", "population.json.gz"),
         ("ppo", "agent.json"), ("ppo_ckpt", "model.json"), ("ppo_ckpt", "rng.json")]


@pytest.mark.parametrize("which,name", FILES)
def test_fuzzed_json_in_any_loader_is_an_agent_error_or_loads(saved, tmp_path, which, name):
    src = saved[which]
    path = src / name
    doc = safe_io.read_json_gz(path, name) if name.endswith(".gz") else json.loads(path.read_text())
    values = _documents(_keys(doc))
    state = (random.getstate(), np.random.get_state(), torch.get_rng_state())

    @FUZZ
    @given(st.data())
    def check(data):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        shutil.rmtree(folder)
        shutil.copytree(src, folder)
        bad = _mutate(doc, data, values) if data.draw(st.booleans()) else data.draw(
            st.dictionaries(st.sampled_from(_keys(doc)), values, max_size=8))
        text = json.dumps(bad)
        if name.endswith(".gz"):
            (folder / name).write_bytes(gzip.compress(text.encode()))
        else:
            (folder / name).write_text(text)
        try:
            LOADERS[name](folder)
        except UserError as e:
            assert str(e) and "Traceback" not in str(e)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    try:
        check()
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])


@pytest.mark.parametrize("which,name", [("ppo", "policy.safetensors"), ("ppo_ckpt", "optimizer.safetensors"),
                                        ("neat_ckpt", "population.json.gz"), ("neat", "champion.json"),
                                        ("ppo_ckpt", "rng.json")])
@FUZZ
@given(cut=st.floats(0.0, 0.999), flip=st.integers(0, 10**6))
def test_truncated_or_flipped_files_are_an_agent_error(saved, which, name, cut, flip):
    src = saved[which]
    folder = Path(tempfile.mkdtemp())
    try:
        shutil.rmtree(folder)
        shutil.copytree(src, folder)
        data = bytearray((folder / name).read_bytes())
        if flip % 2:
            data = data[: int(len(data) * cut)]
        else:
            data[flip % len(data)] ^= 0xFF
        (folder / name).write_bytes(bytes(data))
        loader = {"policy.safetensors": agents.load, "optimizer.safetensors": _load_ppo_checkpoint,
                  "population.json.gz": _load_neat_checkpoint, "champion.json": agents.load,
                  "rng.json": safe_io.restore_rng}[name]
        try:
            loader(folder)
        except UserError as e:
            assert str(e)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_damaged_checkpoint_is_exit_2_naming_the_folder(safe_runs, tmp_path, capsys):
    for algo, name in (("neat", "population.json.gz"), ("ppo", "policy.safetensors")):
        run = copy_run(safe_runs[algo], tmp_path / algo)
        ckpt = Run.checkpoints_of(run)[-1]
        (ckpt / name).write_bytes((ckpt / name).read_bytes()[:100])
        rc, text = run_cli(["train", "--resume", run], capsys)
        assert rc == 2 and f"checkpoint {ckpt} is unreadable" in text and "delete that folder" in text.lower(), text
        assert (run / "final" / "agent.json").is_file()


# --------------------------------------------------------------------------- round trips


def _fitness(genome) -> float:
    """A deterministic fitness of the genome's structure and weights (no emulator: the format is tested)."""
    conns = [c for c in genome.connections.values() if c.enabled]
    return sum(c.weight * ((c.key[0] * 7 + c.key[1]) % 5 - 2) for c in conns) + 0.1 * len(genome.nodes)


def _evolve(agent: NEATAgent, generations: int, log: list) -> None:
    def evaluate(genomes, config):
        for _, g in genomes:
            g.fitness = _fitness(g)

    for _ in range(generations):
        agent.population.run(evaluate, 1)
        agent.champion = agent.population.best_genome
        # what target_species does: the threshold moves during the run and must survive a resume
        agent.config.species_set_config.compatibility_threshold *= 1.03
        log.append((agent.population.generation, agent.champion.key, agent.champion.fitness,
                    sorted(agent.population.population), len(agent.population.species.species)))


def _neat_agent(pop_size: int = 20) -> NEATAgent:
    agent = NEATAgent(NEATSpec(algo="neat", pop_size=pop_size), smb_spec(**ENV), 5)
    agent.config, _ = load_neat_config("smb", 12, 4, pop_size=pop_size)
    return agent


def test_neat_resumes_exactly_on_the_new_format(tmp_path):
    straight, resumed = [], []
    a = _neat_agent()
    a.population = neat.Population(a.config, seed=5)
    _evolve(a, 6, straight)
    final_straight = neat_state.population_document(
        a.population, a.champion, a.config, next_genome_key=0, next_node_key=0, next_species_key=0, frames=0,
        solved=False)

    b = _neat_agent()
    b.population = neat.Population(b.config, seed=5)
    _evolve(b, 3, resumed)
    (tmp_path / "ckpt").mkdir()
    b.write_checkpoint(tmp_path / "ckpt")
    random.seed(999)  # anything the process did in between is forgotten on resume
    np.random.seed(999)
    c = _neat_agent()
    c._restore(tmp_path / "ckpt")
    assert c.config.species_set_config.compatibility_threshold == b.config.species_set_config.compatibility_threshold
    _evolve(c, 3, resumed)
    assert resumed == straight  # the same champions, populations and species, generation by generation
    final_resumed = neat_state.population_document(
        c.population, c.champion, c.config, next_genome_key=0, next_node_key=0, next_species_key=0, frames=0,
        solved=False)
    assert final_resumed == final_straight

    # the checkpoint holds no pickle, and the champion loads as a saved agent
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["agent.json", "champion.json", "neat.cfg",
                                                                      "population.json.gz", "rng.json"]
    d = agents.load(tmp_path / "ckpt")
    assert neat_state.GenomeCodec(d.config).encode(d.champion) == neat_state.GenomeCodec(b.config).encode(b.champion)


SB3 = {"ppo": (PPOAgent, {"n_steps": 16, "batch_size": 8, "n_epochs": 2}),
       "a2c": (A2CAgent, {"n_steps": 8}),
       "a2c_tf_rmsprop": (A2CAgent, {"n_steps": 8, "rms_prop_tf_like": True}),
       "ppo_lstm": (PPOLSTMAgent, {"n_steps": 16, "batch_size": 16, "n_epochs": 1,
                                   "policy_kwargs": {"lstm_hidden_size": 16}}),
       "a2c_lstm": (A2CLSTMAgent, {"n_steps": 8, "policy_kwargs": {"lstm_hidden_size": 16}})}


@pytest.mark.slow
@pytest.mark.parametrize("algo", list(SB3))
def test_sb3_saves_loads_and_resumes_exactly_as_sb3s_own_format(tmp_path, algo):
    cls, hyper = SB3[algo]
    env_spec = smb_spec(obs="pixels", frame_stack=1 if "lstm" in algo else 2, stuck_frames=60,
                        resize=(42, 42))
    spec = cls.Spec(algo=cls.algo, n_envs=1, device="cpu", hyperparams=hyper)
    agent = cls(spec, env_spec, 3)
    venvs = [make_vec_env(env_spec, 1, seed=11, local=False) for _ in range(3)]
    try:
        agent.model = agent._new_model(venvs[0])
        agent.model.learn(2 * hyper["n_steps"])
        agent.write_checkpoint(tmp_path / "ckpt")
        agent.model.save(tmp_path / "sb3.zip")  # SB3's own format, the reference for what resume restores
        assert not list((tmp_path / "ckpt").glob("*.zip")) and not list((tmp_path / "ckpt").glob("*.pkl"))

        ours = agent._load_model(tmp_path / "ckpt", venvs[1])
        theirs = cls.model_class().load(tmp_path / "sb3.zip", env=venvs[2], device="cpu")
        want = "RMSpropTFLike" if hyper.get("rms_prop_tf_like") else "RMSprop" if "a2c" in algo else "Adam"
        assert type(ours.policy.optimizer).__name__ == type(agent.model.policy.optimizer).__name__ == want
        for key in ("num_timesteps", "_n_updates", "_episode_num", "_current_progress_remaining", "n_envs"):
            assert getattr(ours, key) == getattr(theirs, key), key
        assert [e["r"] for e in ours.ep_info_buffer] == [e["r"] for e in theirs.ep_info_buffer]
        _assert_same_state(ours, theirs)
        rng = safe_io.rng_state()
        for model in (ours, theirs):  # both continue from the same generator states on the same env
            safe_io.write_json(tmp_path / "rng.json", rng)
            safe_io.restore_rng(tmp_path)
            model.learn(2 * hyper["n_steps"], reset_num_timesteps=False)
        _assert_same_state(ours, theirs)
        assert ours.num_timesteps == theirs.num_timesteps > agent.model.num_timesteps

        # a final policy: weights only, float32 or float16, loadable for playing
        agent.save(tmp_path / "final")
        agent.save(tmp_path / "half", half=True)
        assert not (tmp_path / "final" / "optimizer.safetensors").exists()
        full, half = (agents.load(tmp_path / name, device="cpu") for name in ("final", "half"))
        assert (tmp_path / "half" / "policy.safetensors").stat().st_size < \
            0.6 * (tmp_path / "final" / "policy.safetensors").stat().st_size
        obs = venvs[1].reset()
        for loaded in (full, half):
            assert loaded.model.predict(obs, deterministic=True)[0].shape == (1,)
        _assert_same_policy(full.model, agent.model)
    finally:
        for v in venvs:
            v.close()


def _assert_same_policy(a, b) -> None:
    sa, sb = a.policy.state_dict(), b.policy.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _assert_same_state(a, b) -> None:
    _assert_same_policy(a, b)
    oa, ob = a.policy.optimizer.state_dict(), b.policy.optimizer.state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    assert oa["state"].keys() == ob["state"].keys()
    for i in oa["state"]:
        for k, v in oa["state"][i].items():
            assert torch.equal(v, ob["state"][i][k]) if torch.is_tensor(v) else v == ob["state"][i][k], (i, k)


# --------------------------------------------------------------------------- an earlier version's runs


def _write_legacy_neat(agent: NEATAgent, folder: Path) -> None:
    """What earlier versions wrote for a NEAT checkpoint: the pickles, and agent.json without a format."""
    from itertools import count

    p, gc = agent.population, agent.config.genome_config
    next_gid = next(p.reproduction.genome_indexer)
    p.reproduction.genome_indexer = count(next_gid)
    next_nid = None
    if gc.node_indexer is not None:
        next_nid = next(gc.node_indexer)
        gc.node_indexer = count(next_nid)
    next_sid = next(p.species.indexer)
    p.species.indexer = count(next_sid)
    reporters, p.species.reporters = p.species.reporters, None
    state = {"generation": p.generation, "config": agent.config, "population": p.population, "species": p.species,
             "python_random": random.getstate(), "numpy_random": np.random.get_state(), "best_genome": p.best_genome,
             "champion": agent.champion, "ancestors": p.reproduction.ancestors,
             "innovation_tracker": p.reproduction.innovation_tracker, "next_genome_key": next_gid,
             "next_node_key": next_nid, "next_species_key": next_sid, "frames": agent.frames, "solved": False}
    with gzip.open(folder / "population.pkl.gz", "wb") as f:
        pickle.dump(state, f)
    p.species.reporters = reporters
    p.species.indexer = count(next_sid)
    if next_nid is not None:
        gc.node_indexer = count(next_nid)
    _legacy_agent_files(agent, folder)


def _legacy_agent_files(agent, folder: Path) -> None:
    if agent.algo == "neat":
        (folder / "champion.pkl").write_bytes(pickle.dumps(agent.champion))
        agent.config.save(str(folder / "neat.cfg"))
        extra = {"discrete": agent.discrete, "input_scale": agent.input_scale, "frames": agent.frames}
    else:
        agent.model.save(folder / "model.zip")
        extra = {}
        (folder / "rng.pkl").write_bytes(pickle.dumps({"python": random.getstate(), "numpy": np.random.get_state(),
                                                       "torch": torch.get_rng_state()}))
    agents.write_agent_file(folder, agent.algo, seed=agent.seed, spec=agent.spec.model_dump(mode="json"),
                            env_spec=agent.env_spec.model_dump(mode="json"), **extra)


def _legacy_run(safe_run: Path, tmp_path: Path) -> Path:
    """A copy of ``safe_run`` with every saved agent rewritten as earlier versions wrote it."""
    run = copy_run(safe_run, tmp_path)
    for folder in (run / "final", *Run.checkpoints_of(run)):
        agent = agents.load(folder)
        if agent.algo == "neat" and (folder / "population.json.gz").is_file():
            agent._restore(folder)
        for name in (*SAFE_FILES[agent.algo], "agent.json"):
            if name != "neat.cfg":
                (folder / name).unlink(missing_ok=True)
        if agent.algo == "neat" and agent.population is not None:
            _write_legacy_neat(agent, folder)
        else:
            _legacy_agent_files(agent, folder)
    return run


@pytest.mark.parametrize("algo", ["neat", "ppo"])
def test_an_earlier_versions_run_loads_with_trust_pickles_and_converts_once(safe_runs, tmp_path, capsys, algo):
    run = _legacy_run(safe_runs[algo], tmp_path)
    ckpt = Run.checkpoints_of(run)[-1]
    assert safe_io.legacy_files(run / "final") and safe_io.legacy_files(ckpt)
    with pytest.raises(safe_io.LegacyPickleError):
        agents.load(run / "final")
    rc, text = run_cli(["evaluate", run, "--episodes", "1", "--trust-pickles", "--json"], capsys)
    assert rc == 0, text
    # resuming it with the flag goes on training; what it writes from then on is in the safe formats
    resumed = copy_run(run, tmp_path / "resumed")
    rc, text = run_cli(["train", "--resume", resumed, "--trust-pickles"], capsys)
    assert rc == 0, text
    newest = Run.checkpoints_of(resumed)[-1]
    assert int(newest.name) >= 1024 and not safe_io.legacy_files(newest) and not list(newest.glob("*.pkl*"))
    agents.load(resumed / "final")
    before = agents.load(run / "final", trust_pickles=True)
    old = _load_neat_checkpoint_legacy(ckpt) if algo == "neat" else agents.load(ckpt, trust_pickles=True).model

    rc, text = run_cli(["convert", run], capsys)  # never without the user's word
    assert rc == 2 and "--trust-pickles" in text
    rc, text = run_cli(["convert", run, "--trust-pickles"], capsys)
    assert rc == 0 and text.count("converted:") == 2, text
    for folder in (run / "final", ckpt):
        assert not safe_io.legacy_files(folder) and not list(folder.glob("*.pkl*")) and \
            not (folder / "model.zip").exists(), sorted(p.name for p in folder.iterdir())
    assert (ckpt / "checkpoint.json").is_file()
    after = agents.load(run / "final")
    if algo == "neat":
        assert neat_state.GenomeCodec(after.config).encode(after.champion) == \
            neat_state.GenomeCodec(before.config).encode(before.champion)
        new = _load_neat_checkpoint(ckpt)
        assert _state_of(new) == _state_of(old)  # the whole evolutionary state came across
    else:
        _assert_same_policy(after.model, before.model)
        _assert_same_state(_load_ppo_checkpoint(ckpt), old)
    rc, text = run_cli(["convert", run], capsys)
    assert rc == 0 and text.count("already safe:") == 2, text
    rc, text = run_cli(["evaluate", run, "--episodes", "1"], capsys)
    assert rc == 0, text

    # a small copy of the final policy for a results record: weights only, loadable by evaluate
    rc, text = run_cli(["convert", run, "--out", tmp_path / "models" / algo, "--half"], capsys)
    assert rc == 0 and "written:" in text, text
    assert not (tmp_path / "models" / algo / "optimizer.safetensors").exists()
    rc, text = run_cli(["evaluate", tmp_path / "models" / algo, "--episodes", "1"], capsys)
    assert rc == 0, text
    rc, text = run_cli(["convert", run, "--out", tmp_path / "models" / algo], capsys)
    assert rc == 2 and "already exists" in text


def _load_neat_checkpoint_legacy(folder: Path):
    agent = NEATAgent(NEATSpec(algo="neat", pop_size=6), smb_spec(**ENV), 1)
    agent.config, _ = load_neat_config("smb", 13 * 16, 5, pop_size=6)
    agent._restore(folder, trust_pickles=True)
    return agent


def _state_of(agent: NEATAgent) -> tuple:
    doc = neat_state.population_document(agent.population, agent.champion, agent.config, next_genome_key=0,
                                         next_node_key=0, next_species_key=0, frames=agent.frames, solved=agent.solved)
    return doc, random.getstate(), np.random.get_state()[1].tolist()


def test_a_model_json_describing_a_huge_input_is_refused_before_a_network_is_built(safe_runs, tmp_path):
    import time

    folder = tmp_path / "final"
    shutil.copytree(safe_runs["ppo"] / "final", folder)
    doc = json.loads((folder / "model.json").read_text())
    for shape, problem in (([4_000_000], "the most an MLP policy reads"), ([100_000, 100_000], "more than")):
        doc["observation_space"].update(shape=shape, low=0, high=1)
        (folder / "model.json").write_text(json.dumps(doc))
        t0 = time.perf_counter()
        with pytest.raises(AgentError, match=problem):
            agents.load(folder)
        assert time.perf_counter() - t0 < 1.0


def test_the_repository_ships_no_pickles():
    """models/ and the results record are loaded by users as they are: only the safe formats may be committed."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(["git", "-C", str(root), "ls-files"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    files = out.stdout.splitlines()
    assert files
    pickled = [f for f in files if Path(f).name in safe_io.LEGACY_FILES or f.endswith((".pkl", ".pkl.gz", ".pt",
                                                                                        ".pth", ".pickle"))]
    assert not pickled, f"pickled files in the repository: {pickled}"
