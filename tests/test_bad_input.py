"""Bad input on every path a user hands over: a one-paragraph error naming the file, exit status 2, no
traceback, nothing already saved touched. The loaders are fed random bytes and random YAML documents
(Hypothesis): each gives a valid result or the project's own error, never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.base import load as load_agent
from agents.neat_config import load_neat_config
from experiments.cli import main
from experiments.spec import ExperimentSpec, SpecError, load_spec
from wrappers import roms
from wrappers.configs import resolve
from wrappers.errors import UserError
from wrappers.profile import Profile, load_profile

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words the loaders know, so that random documents reach deep into the validators, not only the top check.
KEYS = ["name", "game", "state", "states", "profile", "env", "agent", "budget", "seeds", "eval", "checkpoint",
        "algo", "frames", "minutes", "generations", "hyperparams", "learning_rate", "schedule", "start", "end",
        "n_steps", "batch_size", "frame_skip", "actions", "rewards", "obs", "config", "every_frames", "episodes",
        "variables", "derived", "progress", "done", "success", "address", "type", "sum", "var", "op", "value",
        "delta", "gain", "event", "weight", "clip", "all", "any", "default_actions", "policy", "n_envs"]
WORDS = ["ppo", "a2c", "neat", "ppo_lstm", "SuperMarioBros-Nes", "Pong-Atari2600", "Level1-1", "smb", "pong",
         "scenario", "right_only", "linear", "constant", "tiles", "pixels", "x", "lives", "eq", "decreased", "|u1",
         ">n6", "buttons", "cnn"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**9), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(WORDS))
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=6), max_leaves=30)
mappings = st.dictionaries(st.sampled_from(KEYS), documents, max_size=12)


def _file(data: bytes, suffix: str) -> Path:
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as f:
        f.write(data)
    return Path(f.name)


# --------------------------------------------------------------------------- property tests of the loaders


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_as_an_experiment_file(data):
    path = _file(data, ".yaml")
    try:
        assert isinstance(load_spec(path), ExperimentSpec)
    except UserError as e:
        assert str(path) in str(e)  # the message names the file it is about
    finally:
        path.unlink()


@FUZZ
@given(st.one_of(mappings, documents))
def test_any_yaml_document_as_an_experiment(doc):
    path = _file(yaml.safe_dump(doc).encode(), ".yaml")
    try:
        assert isinstance(load_spec(path, require_rom=False), ExperimentSpec)
    except UserError as e:
        assert str(path) in str(e)  # the message names the file, and each problem its key
        if isinstance(e, SpecError) and isinstance(doc, dict):
            heads = {"(top level)", *ExperimentSpec.model_fields, *(str(k) for k in doc)}
            assert all(any(line.startswith(h) for h in heads) for line in e.errors), e.errors
    finally:
        path.unlink()


@FUZZ
@given(st.one_of(st.binary(max_size=2000), mappings.map(lambda d: yaml.safe_dump(d).encode())))
def test_any_bytes_or_yaml_as_a_game_profile(data):
    path = _file(data, ".yaml")
    try:
        assert isinstance(load_profile(str(path), game="SuperMarioBros-Nes"), Profile)
    except UserError as e:
        assert str(path) in str(e)
    finally:
        path.unlink()


ini_lines = st.lists(st.one_of(
    st.sampled_from(["[NEAT]", "[DefaultGenome]", "[DefaultReproduction]", "[DefaultSpeciesSet]",
                     "[DefaultStagnation]"]),
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(
        ["pop_size", "fitness_criterion", "fitness_threshold", "num_inputs", "feed_forward", "weight_init_mean",
         "activation_default", "activation_options", "initial_connection", "compatibility_threshold", "elitism",
         "reset_on_extinction", "conn_add_prob", "bias_mutate_rate", "no_fitness_termination"]),
        st.sampled_from(["", "1", "-3", "max", "True", "banana", "0.5", "sigmoid", "full_direct", "1e400"]))),
    max_size=40)


@FUZZ
@given(st.one_of(st.binary(max_size=2000), ini_lines.map(lambda ls: "\n".join(ls).encode())))
def test_any_bytes_or_ini_as_a_neat_config(data):
    path = _file(data, ".cfg")
    try:
        config, _ = load_neat_config(str(path), 4, 2)
        assert config.genome_config.num_inputs == 4
    except UserError as e:
        assert str(path) in str(e)
    finally:
        path.unlink()


@FUZZ
@given(st.one_of(st.binary(max_size=500), st.dictionaries(st.sampled_from(["algo", "spec", "env_spec", "seed"]),
                                                          scalars | st.lists(scalars, max_size=3), max_size=4)
                 .map(lambda d: json.dumps(d).encode()),
                 st.sampled_from([b'{"algo": "ppo"}', b'{"algo": "neat"}', b'{"algo": "ppo", "spec": {}}',
                                  b'{"algo": "neat", "spec": {"algo": "neat"}, "env_spec": {}}'])))
def test_any_bytes_as_a_saved_agent(data):
    folder = Path(tempfile.mkdtemp())
    (folder / "agent.json").write_bytes(data)
    (folder / "model.zip").write_bytes(data)
    (folder / "champion.pkl").write_bytes(data)
    with pytest.raises(UserError):
        load_agent(folder)


@FUZZ
@given(st.binary(max_size=5000), st.sampled_from(["x.nes", "x.md", "x.bin", "x.zip", "x.a26", "x"]))
def test_any_bytes_as_a_rom(data, name):
    folder = Path(tempfile.mkdtemp())
    (folder / name).write_bytes(data)
    report = roms.import_paths([folder / name])
    assert not report.imported and len(report.skipped) <= 1


# --------------------------------------------------------------------------- every CLI path argument


def _bad_files(tmp: Path, suffix: str = ".yaml") -> dict[str, Path]:
    """One file (or folder) per way a path can be wrong."""
    tmp.mkdir(parents=True, exist_ok=True)
    smb = resolve("experiments", "smb_ppo").read_bytes()
    files = {
        "empty": b"", "binary": bytes(range(256)) * 8, "not_utf8": "name: caf\xe9\n".encode("latin-1"),
        "truncated": smb[: len(smb) // 3], "a_list": b"- 1\n- 2\n", "nul_padded": smb + b"\x00" * 16,
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp / f"{name}{suffix}"
        out[name].write_bytes(data)
    out["huge"] = tmp / f"huge{suffix}"
    with open(out["huge"], "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: costs no disk
    out["folder"] = tmp / f"a_folder{suffix}"
    out["folder"].mkdir()
    out["missing"] = tmp / f"missing{suffix}"
    return out


def _run_cli(args, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text, text
    return rc, " ".join(text.split())


def test_every_bad_experiment_file_is_one_paragraph_and_exit_2(tmp_path, capsys):
    runs = tmp_path / "runs"
    for kind, path in _bad_files(tmp_path).items():
        rc, text = _run_cli(["train", path, "--runs-dir", runs], capsys)
        assert rc == 2, kind
        assert "error:" in text and path.name in text, (kind, text)
    assert not runs.exists()


def test_bad_profile_and_neat_config_files_are_caught_before_a_run_folder_exists(tmp_path, capsys):
    runs = tmp_path / "runs"
    profiles, neat_configs = _bad_files(tmp_path / "p"), _bad_files(tmp_path / "n", ".cfg")
    base = {"name": "n", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
            "agent": {"algo": "ppo"}, "budget": {"frames": 100}}
    for kind in profiles:
        exp = tmp_path / f"neat_{kind}.yaml"
        exp.write_text(yaml.safe_dump({**base, "agent": {"algo": "neat", "config": str(neat_configs[kind])}}))
        rc, text = _run_cli(["train", exp, "--runs-dir", runs], capsys)
        assert rc == 2 and "agent.config:" in text and neat_configs[kind].name in text, (kind, text)
        exp.write_text(yaml.safe_dump({**base, "profile": str(profiles[kind])}))
        rc, text = _run_cli(["train", exp, "--runs-dir", runs], capsys)
        assert rc == 2 and "profile:" in text and profiles[kind].name in text, (kind, text)
        rc, text = _run_cli(["play", "SuperMarioBros-Nes", "--profile", profiles[kind], "--frames", "8",
                             "--video", tmp_path / "v.mp4"], capsys)
        assert rc == 2 and profiles[kind].name in text, (kind, text)
    assert not runs.exists()  # nothing was created for any of them


def test_a_folder_given_as_experiment_says_what_it_is(tmp_path, capsys):
    run = tmp_path / "runs" / "x" / "ppo-s1-1"
    run.mkdir(parents=True)
    (run / "meta.json").write_text("{}")
    rc, text = _run_cli(["train", run], capsys)
    assert rc == 2 and "is a folder, not an experiment file" in text and "train --resume" in text
    rc, text = _run_cli(["train", "smb_pppo"], capsys)
    assert rc == 2 and "Did you mean the shipped experiment smb_ppo?" in text


def test_train_without_a_file_is_a_user_error_like_any_other(capsys):
    rc, text = _run_cli(["train"], capsys)
    assert rc == 2 and "error:" in text and "give an experiment FILE" in text and "--resume RUN_DIR" in text


def _fake_run(tmp_path: Path) -> Path:
    """A run folder as `train` leaves it, with one (unreadable) checkpoint: no training needed."""
    from experiments.run import Run
    from experiments.spec import validate_spec

    spec = validate_spec({"name": "fake", "game": "SuperMarioBros-Nes", "state": "Level1-1", "profile": "smb",
                          "env": {"actions": "right_only"}, "agent": {"algo": "ppo", "n_envs": 1},
                          "budget": {"frames": 2048}}, "fake")
    run = Run.create(spec, 1, tmp_path / "runs")
    run.close("interrupted")
    ckpt = run.dir / "checkpoints" / f"{1024:012d}"
    ckpt.mkdir(parents=True)
    (ckpt / "checkpoint.json").write_text(json.dumps({"frames": 1024, "train_seconds": 1.0}))
    return run.dir


def test_corrupt_run_files_are_explained_and_nothing_saved_is_touched(tmp_path, capsys):
    run = _fake_run(tmp_path)
    ckpt = next((run / "checkpoints").iterdir())
    meta_before = (run / "meta.json").read_bytes()
    for name, data in (("checkpoint.json", b"{\"frames\": "), ("checkpoint.json", b"\x00\xff"),
                       ("checkpoint.json", b"[]")):
        (ckpt / name).write_bytes(data)
        rc, text = _run_cli(["train", "--resume", run], capsys)
        assert rc == 2 and "checkpoint" in text and f"Delete the folder {ckpt}" in text, text
        assert (run / "meta.json").read_bytes() == meta_before  # the resume did not start: nothing changed
    (ckpt / "checkpoint.json").write_text(json.dumps({"frames": 1024, "train_seconds": 1.0}))
    for data in (b"", b"{not json", b"\x89PNG\x00", b"[1, 2]", b'{"seed": "x"}'):
        (run / "meta.json").write_bytes(data)
        rc, text = _run_cli(["train", "--resume", run], capsys)
        assert rc == 2 and "meta.json" in text, text
        if data != b'{"seed": "x"}':
            rc, text = _run_cli(["runs", run.parent], capsys)
            assert rc == 0 and "unreadable meta.json" in text, text
    (run / "meta.json").write_bytes(meta_before)
    # a checkpoint folder whose saved agent is garbage
    for data in (b"", b"\x00" * 64, b'{"algo": "ppo"}', b'{"algo": "dqn"}'):
        (ckpt / "agent.json").write_bytes(data)
        (ckpt / "model.zip").write_bytes(b"PK\x03\x04 truncated")
        rc, text = _run_cli(["evaluate", run], capsys)
        assert rc == 2 and str(ckpt) in text, text
    for bad in (run / "config.yaml",):
        bad.write_bytes(b"\xff\xfe garbage")
        for args in (["train", "--resume", run], ["evaluate", run]):
            rc, text = _run_cli(args, capsys)
            assert rc == 2 and "config.yaml" in text, (args, text)
    assert (run / "meta.json").read_bytes() == meta_before


def test_missing_and_wrong_folders_for_every_command(tmp_path, capsys):
    missing = tmp_path / "nope"
    a_file = tmp_path / "file.txt"
    a_file.write_text("hello")
    for args in (["evaluate", missing], ["evaluate", a_file], ["runs", missing], ["compare", missing],
                 ["train", "--resume", missing], ["train", "--resume", a_file], ["train", "--resume", tmp_path]):
        rc, text = _run_cli(args, capsys)
        assert rc == 2 and ("nope" in text or "file.txt" in text or str(tmp_path) in text), (args, text)
    rc, text = _run_cli(["roms", "import", missing, a_file], capsys)
    assert rc == 1 and "no such file" in text and "no integration matches" in text


def test_a_damaged_zip_is_reported_member_by_member(tmp_path):
    import zipfile

    archive = tmp_path / "dumps.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("game.nes", b"NES\x1a" + np.random.default_rng(0).bytes(40_000))
    raw = bytearray(archive.read_bytes())
    raw[1000:1200] = b"\xff" * 200  # inside the member's compressed data, not the directory at the end
    archive.write_bytes(bytes(raw))
    report = roms.import_paths([archive])
    assert not report.imported
    assert any("game.nes: cannot be unpacked" in s and "damaged" in s for s in report.skipped), report.skipped
    # and a file named .zip that is no zip at all is described like any unmatched file
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    assert "no integration matches" in roms.import_paths([tmp_path / "fake.zip"]).skipped[0]


# --------------------------------------------------------------------------- hostile text files


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def test_billion_laughs_fails_fast_for_every_yaml_a_command_reads(tmp_path, capsys):
    import time

    from experiments.spec import load_spec
    from wrappers.profile import load_profile

    assert len(LAUGHS) < 1024
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(LAUGHS + "name: x\ngame: SuperMarioBros-Nes\nprofile: smb\nagent: {algo: ppo}\n"
                    "budget: {frames: 10}\n")
    for load in (lambda: load_spec(bomb), lambda: load_profile(str(bomb))):
        t0 = time.perf_counter()
        with pytest.raises(UserError, match="billion laughs"):
            load()
        assert time.perf_counter() - t0 < 0.5
    runs = tmp_path / "runs"
    rc, text = _run_cli(["train", bomb, "--runs-dir", runs], capsys)
    assert rc == 2 and "billion laughs" in text and not runs.exists(), text
    rc, text = _run_cli(["train", "smb_ppo", "--set", "budget.frames=10", "--set", f"profile={bomb}",
                        "--runs-dir", runs], capsys)
    assert rc == 2 and "billion laughs" in text and not runs.exists(), text
    rc, text = _run_cli(["tune", bomb, "--trials", "1", "--runs-dir", runs], capsys)
    assert rc == 2 and "billion laughs" in text and not runs.exists(), text
    # a shared run whose config.yaml (or agent.json) is hostile
    run = _fake_run(tmp_path / "r")
    (run / "config.yaml").write_text(LAUGHS)
    for args in (["train", "--resume", run], ["evaluate", run], ["states", "make", run]):
        rc, text = _run_cli(args, capsys)
        assert rc == 2 and "billion laughs" in text and "config.yaml" in text, (args, text)
    rc, text = _run_cli(["compare", run, "--json"], capsys)  # reads the config for labels only: ignored
    assert rc in (0, 2) and "Traceback" not in text
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "agent.json").write_text("[" * 100 + "]" * 100)
    rc, text = _run_cli(["evaluate", agent], capsys)
    assert rc == 2 and "nests more than" in text, text


def test_a_recursive_alias_is_refused():
    from experiments.spec import SpecError, parse_yaml

    for doc in ("a: &x [1, *x]\n", "a: &x\n  b: *x\n"):
        with pytest.raises(SpecError, match="endless"):
            parse_yaml(doc, "test")
    assert parse_yaml("a: &x {k: 1}\nb: *x\nc: 1e-4\n", "test") == {"a": {"k": 1}, "b": {"k": 1}, "c": 1e-4}


@pytest.mark.parametrize("setting", ["agent.hyperparams.learning_rate=.nan", "agent.hyperparams.gamma=.nan",
                                     "agent.hyperparams.learning_rate={schedule: linear, start: .inf}",
                                     "env.reward_scale=.inf", "env.rewards={death: -.inf}",
                                     "agent.hyperparams.policy_kwargs={ortho_init: true, log_std_init: .nan}",
                                     "budget.minutes=.nan", "env.sticky_prob=.nan"])
def test_nan_and_infinities_are_refused_before_a_run_folder_exists(tmp_path, capsys, setting):
    runs = tmp_path / "runs"
    rc, text = _run_cli(["train", "smb_ppo", "--set", setting, "--runs-dir", runs], capsys)
    assert rc == 2 and setting.split("=")[0] in text and ("finite" in text), text
    assert not runs.exists()
