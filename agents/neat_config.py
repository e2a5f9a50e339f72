"""neat-python configs: old ones accepted, sizes taken from the env, unknown keys refused.

neat-python 2.0 refuses configs written for 0.92 (the original tutorial's fails with "Missing required
configuration item in [NEAT] section: 'no_fitness_termination'"), and silently changes one behaviour:
without ``single_structural_mutation`` it stores the default as the *string* 'false', which is truthy, so
every child gets at most one structural mutation. Both are filled with 0.92's values, named in one
warning. ``num_inputs`` and ``num_outputs`` always come from the wrapped env: a config may leave them out
(the shipped ones do, so one config serves tiles, pixels and RAM), and one that states other sizes gets a
warning. neat-python ignores unknown keys in ``[DefaultGenome]`` (a typo silently falls back to a default):
they are errors here.
"""

from __future__ import annotations

import configparser
import difflib
import os
import tempfile
from pathlib import Path

import neat

from agents.errors import AgentError
from wrappers import configs
from wrappers.errors import read_text_file

#: Keys neat-python 2.0 requires (or mis-defaults) that 0.92-era configs lack, with 0.92's behaviour.
COMPAT_DEFAULTS: dict[tuple[str, str], str] = {
    ("NEAT", "no_fitness_termination"): "False",
    ("DefaultGenome", "single_structural_mutation"): "False",
    ("DefaultGenome", "activation_options"): "sigmoid",
    ("DefaultGenome", "aggregation_options"): "sum",
}


def config_path(name: str) -> Path:
    """Resolve a config name (``smb``) or path to its file (see :mod:`wrappers.configs`)."""
    return configs.resolve("neat", name)


def _build(parser: configparser.ConfigParser) -> neat.Config:
    fd, tmp = tempfile.mkstemp(suffix=".cfg")
    try:
        with os.fdopen(fd, "w") as f:
            parser.write(f)
        return neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                           neat.DefaultStagnation, tmp)
    finally:
        os.remove(tmp)


def _known_genome_keys() -> set[str]:
    """Every key neat-python's DefaultGenome understands (read off a fully resolved config)."""
    parser = configparser.ConfigParser()
    parser.read_string(_MINIMAL)
    cfg = _build(parser)
    fd, tmp = tempfile.mkstemp(suffix=".cfg")
    os.close(fd)
    try:
        cfg.save(tmp)
        saved = configparser.ConfigParser()
        saved.read(tmp)
        return set(saved["DefaultGenome"])
    finally:
        os.remove(tmp)


def load_neat_config(name: str, num_inputs: int, num_outputs: int,
                     pop_size: int | None = None) -> tuple[neat.Config, list[str]]:
    """Load a neat-python config for an env with ``num_inputs`` inputs and ``num_outputs`` outputs.

    ``pop_size`` overrides the file's (the experiment's ``agent.pop_size``).

    Returns:
        (config, warnings): one warning naming every key filled for neat-python 2.0, one naming the sizes
        taken from the env if the file states others.

    Raises:
        AgentError: a missing file, an unknown key (with a did-you-mean) or a value neat-python rejects.
    """
    path = config_path(name)
    if not path.exists() and not configs.looks_like_path(name):
        raise AgentError(f"NEAT config '{name}' not found (looked for {path}); configs: "
                         f"{', '.join(configs.available('neat'))}, or a path to a .cfg file.")
    text = read_text_file(path, "NEAT config", "A NEAT config is an INI file like configs/neat/smb.cfg.",
                          error=AgentError)
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as e:
        raise AgentError(f"{path}: not a valid INI file: {e}".replace("\n", " ")) from None
    for section in ("NEAT", "DefaultGenome", "DefaultReproduction", "DefaultSpeciesSet", "DefaultStagnation"):
        if not parser.has_section(section):
            parser.add_section(section)
    warnings = []
    filled = []
    for (section, key), value in COMPAT_DEFAULTS.items():
        if not parser.has_option(section, key):
            parser.set(section, key, value)
            filled.append(f"[{section}] {key} = {value}")
    if filled:
        warnings.append(f"{path}: filled keys neat-python 2.0 requires, with neat-python 0.92's behaviour: "
                        + "; ".join(filled))
    known = _known_genome_keys()
    unknown = [k for k in parser["DefaultGenome"] if k not in known]
    if unknown:
        hints = [f"{k} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(k, known, n=1)) else k
                 for k in unknown]
        raise AgentError(f"{path}: [DefaultGenome] unknown keys: {', '.join(hints)}. neat-python would ignore "
                         "them silently; fix or remove them.")
    old = (parser["DefaultGenome"].get("num_inputs"), parser["DefaultGenome"].get("num_outputs"))
    if pop_size is not None:
        parser.set("NEAT", "pop_size", str(pop_size))
    parser.set("DefaultGenome", "num_inputs", str(num_inputs))
    parser.set("DefaultGenome", "num_outputs", str(num_outputs))
    # a size the file leaves out is the env's to give; only one it states otherwise is worth a word
    if any(given is not None and given != str(want) for given, want in zip(old, (num_inputs, num_outputs))):
        warnings.append(f"{path}: num_inputs/num_outputs {old[0] or '-'}/{old[1] or '-'} replaced by "
                        f"{num_inputs}/{num_outputs} from the wrapped env's observation and action spaces")
    try:
        config = _build(parser)
    except Exception as e:  # neat raises bare Exception, RuntimeError, NameError subclasses, ValueError
        raise AgentError(f"{path}: neat-python rejects this config: {e}".replace("\n", " ")) from None
    return config, warnings


_MINIMAL = """
[NEAT]
fitness_criterion = max
fitness_threshold = 1
pop_size = 2
reset_on_extinction = False
no_fitness_termination = False
[DefaultGenome]
num_inputs = 1
num_outputs = 1
num_hidden = 0
feed_forward = True
compatibility_disjoint_coefficient = 1
compatibility_weight_coefficient = 1
conn_add_prob = 0
conn_delete_prob = 0
node_add_prob = 0
node_delete_prob = 0
activation_default = sigmoid
activation_options = sigmoid
activation_mutate_rate = 0
aggregation_default = sum
aggregation_options = sum
aggregation_mutate_rate = 0
bias_init_mean = 0
bias_init_stdev = 1
bias_replace_rate = 0
bias_mutate_rate = 0
bias_mutate_power = 0
bias_max_value = 1
bias_min_value = -1
response_init_mean = 1
response_init_stdev = 0
response_replace_rate = 0
response_mutate_rate = 0
response_mutate_power = 0
response_max_value = 1
response_min_value = 1
weight_init_mean = 0
weight_init_stdev = 1
weight_replace_rate = 0
weight_mutate_rate = 0
weight_mutate_power = 0
weight_max_value = 1
weight_min_value = -1
enabled_default = True
enabled_mutate_rate = 0
single_structural_mutation = False
[DefaultSpeciesSet]
compatibility_threshold = 1
[DefaultStagnation]
[DefaultReproduction]
"""
