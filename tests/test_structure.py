"""The groundwork's contracts: each env setting declared once, one validator reporting every problem, the
typed run contract, hyperparameter models that match the SB3 constructors, and the public API."""

from __future__ import annotations

import ast
import graphlib
import inspect
import typing
from pathlib import Path

import pytest

import agents
import experiments
import wrappers
from agents.base import ALGOS, Agent, RunContext, agent_class
from experiments.spec import ExperimentSpec
from wrappers.settings import EnvSettings, EnvSpec, StrictModel, env_problems


def test_env_settings_are_declared_once():
    # the experiment's env: section *is* the wrappers' settings model, and the env spec extends it
    assert ExperimentSpec.model_fields["env"].annotation is EnvSettings
    assert issubclass(EnvSpec, EnvSettings)
    assert set(EnvSettings.model_fields) <= set(EnvSpec.model_fields)
    for name, field in EnvSettings.model_fields.items():
        assert EnvSpec.model_fields[name].description == field.description, name
        assert field.description, f"EnvSettings.{name} has no description"


def test_one_validator_reports_every_problem_with_its_key():
    problems = env_problems({"game": "SuperMarioBros-Nes", "state": ["Level1-1", "Level9-1", "Levl2-1"],
                             "profile": "smb", "actions": "rigth_only", "rewards": {"deaths": -5}})
    keys = [k for k, _ in problems]
    assert keys == ["state[1]", "state[2]", "actions", "rewards"]
    text = dict(problems)
    assert "Did you mean Level8-1?" in text["state[1]"] and "Did you mean Level2-1?" in text["state[2]"]
    assert "did you mean right_only?" in text["actions"] and "its terms: x" in text["rewards"]
    assert env_problems({"game": "Pong-Atari2600", "profile": "pong", "obs": "tiles"}) == [
        ("obs", "tiles reads Super Mario Bros' RAM and does not work for Pong-Atari2600")]
    # an unknown game stops the checks that depend on it; a wrong type is left to the model
    assert [k for k, _ in env_problems({"game": "Marion", "profile": "smb"})] == ["game"]
    assert env_problems({"game": 3, "profile": "smb"}) == []
    # the experiment loader reports the same problems under their YAML paths
    from experiments.spec import SpecError, validate_spec

    with pytest.raises(SpecError) as e:
        validate_spec({"name": "x", "game": "SuperMarioBros-Nes", "states": ["Level1-1", "Level9-1"],
                       "profile": "smb", "env": {"actions": "rigth_only"}, "agent": {"algo": "ppo"},
                       "budget": {"frames": 1}, "eval": {"states": ["Level0-1"]}}, "x.yaml")
    assert [line.split(":")[0] for line in e.value.errors] == ["states[1]", "env.actions", "eval.states[0]"]


def test_env_spec_check_raises_every_problem_at_once():
    spec = EnvSpec(game="SuperMarioBros-Nes", state="Level9-1", profile="smb", actions="jump")
    with pytest.raises(wrappers.EnvError) as e:
        spec.check()
    assert [k for k, _ in e.value.problems] == ["state", "actions"]
    assert "the env has 2 problems" in str(e.value)


def _shape(function) -> list[tuple]:
    """A callable's parameters as (name, kind, default): what a caller relies on, annotations aside."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _protocol_methods(protocol: type) -> list[str]:
    return [n for n, v in protocol.__dict__.items()
            if not n.startswith("_") and (callable(v) or isinstance(v, classmethod))]


def test_run_implements_the_run_contract(tmp_path):
    from experiments.run import Run

    spec = ExperimentSpec.model_validate({"name": "x", "game": "SuperMarioBros-Nes", "state": "Level1-1",
                                          "profile": "smb", "agent": {"algo": "ppo"}, "budget": {"frames": 10}})
    run = Run.create(spec, 1, tmp_path)
    # every method an agent may call takes what the contract says: same parameters, order and defaults
    methods = _protocol_methods(RunContext)
    assert {"begin", "tick", "finish", "checkpoint", "record_bk2"} <= set(methods)
    for name in methods:
        assert _shape(getattr(Run, name)) == _shape(getattr(RunContext, name)), f"Run.{name}"
    # and every attribute holds a value of the declared type
    for name, tp in typing.get_type_hints(RunContext).items():
        if tp is not typing.Any:
            assert isinstance(getattr(run, name), tp), f"Run.{name} is {getattr(run, name)!r}, not {tp.__name__}"
    assert (run.dir, run.seed, run.resumes, run.start_frames) == (tmp_path / "x" / run.dir.name, 1, 0, 0)
    run.close("finished")


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_agents_declare_the_agent_protocol(algo):
    cls = agent_class(algo)
    assert cls.algo == algo and issubclass(cls.Spec, StrictModel)
    # each method takes what the Agent protocol says (the runner and evaluator call them by it)
    for name in _protocol_methods(Agent):
        assert _shape(getattr(cls, name)) == _shape(getattr(Agent, name)), f"{cls.__name__}.{name}"
    assert isinstance(inspect.getattr_static(cls, "load"), classmethod)  # load builds an agent from a folder
    assert typing.get_args(cls.Spec.model_fields["algo"].annotation) == (algo,)
    problems = getattr(cls, "problems", None)
    if problems is not None:
        assert [p[0] for p in _shape(problems)] == ["spec", "env"], f"{cls.__name__}.problems"


def _sb3_class(algo: str):
    if algo == "ppo":
        from stable_baselines3 import PPO
        return PPO
    if algo == "a2c":
        from stable_baselines3 import A2C
        return A2C
    if algo == "ppo_lstm":
        from sb3_contrib import RecurrentPPO
        return RecurrentPPO
    from agents.recurrent_a2c import RecurrentA2C
    return RecurrentA2C


@pytest.mark.parametrize("algo", ["ppo", "a2c", "ppo_lstm", "a2c_lstm"])
def test_hyperparameter_models_match_the_sb3_constructors(algo):
    params = inspect.signature(_sb3_class(algo).__init__).parameters
    hyper = agent_class(algo).Spec.model_fields["hyperparams"].annotation
    translated = getattr(hyper, "TRANSLATED", {})
    unknown = [name for name in hyper.model_fields if name not in params and name not in translated]
    assert not unknown, f"{algo}: {unknown} are not arguments of {_sb3_class(algo).__name__} any more"
    # and every one of them really reaches the constructor, a translated one inside the argument it names
    kwargs = hyper().to_sb3()
    assert set(kwargs) == set(hyper.model_fields) - set(translated)
    for name, target in translated.items():
        assert target in params and hyper(**{name: True}).to_sb3()[target] != kwargs[target], name


def test_public_api_is_reexported():
    for package in (wrappers, agents, experiments):
        assert package.__all__, package.__name__
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
    assert wrappers.make_env is wrappers.factory.make_env and wrappers.EnvSpec is EnvSpec
    assert agents.load is agents.base.load and experiments.load_spec is experiments.spec.load_spec
    with pytest.raises(AttributeError):
        _ = wrappers.no_such_name


def _imports_of(path, package: str) -> set[str]:
    """The modules of ``package`` a file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == package else [node.module]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == package)
    return found


def test_the_wrappers_layer_imports_one_way():
    # a lazy import inside a function is a circle all the same: the two modules cannot be understood,
    # tested or split apart one without the other
    root = Path(wrappers.__file__).parent
    modules = {f"wrappers.{p.stem}": p for p in root.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports_of(path, "wrappers") & set(modules) for name, path in modules.items()}
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        pytest.fail(f"wrappers modules import each other: {' -> '.join(e.args[1])}")


def _project_imports(path) -> set[str]:
    """The project modules a file imports, at any depth (imports inside functions count: they still make a
    circle that breaks when either module is imported first in a fresh process)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_the_agents_package_has_no_import_circle():
    from pathlib import Path

    root = Path(agents.__file__).parent
    modules = {f"agents.{p.stem}": p for p in root.glob("*.py") if p.stem != "__init__"}
    graph = {name: (_project_imports(path) & modules.keys()) - {name} for name, path in modules.items()}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(nxt == target or reaches(nxt, target, seen | {nxt}) for nxt in graph[start] - seen)

    circles = sorted(name for name in graph if reaches(name, name, set()))
    assert circles == [], f"modules importing themselves through others: {circles}"
