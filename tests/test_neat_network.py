"""CompiledNetwork must behave exactly like neat-python's own phenotypes.

Everything here uses real neat-python 2.0 genomes (random, then heavily mutated) and
compares against ``neat.nn.RecurrentNetwork`` / ``neat.nn.FeedForwardNetwork``.
"""

from __future__ import annotations

import math
import pickle
import random
import sys
from pathlib import Path

import neat
import numpy as np
import pytest
from neat.activations import ActivationFunctionSet
from neat.aggregations import AggregationFunctionSet

from agents.neat_network import CompiledNetwork

ALL_ACTIVATIONS = sorted(ActivationFunctionSet().functions)
ALL_AGGREGATIONS = sorted(AggregationFunctionSet().functions)

# The NEAT tutorial's config, plus ``no_fitness_termination`` which neat-python 2.0
# refuses to default.
TUTORIAL_CONFIG = """
[NEAT]
fitness_criterion     = max
fitness_threshold     = 100000
pop_size              = 30
reset_on_extinction   = True
no_fitness_termination = False

[DefaultStagnation]
species_fitness_func = max
max_stagnation       = 50
species_elitism      = 2

[DefaultReproduction]
elitism            = 2
survival_threshold = 0.3
min_species_size   = 2

[DefaultSpeciesSet]
compatibility_threshold = 2.5

[DefaultGenome]
activation_default      = sigmoid
activation_mutate_rate  = 0.05
activation_options      = sigmoid gauss
aggregation_default     = random
aggregation_mutate_rate = 0.05
aggregation_options     = sum product min max mean median maxabs
bias_init_mean          = 0.05
bias_init_stdev         = 1.0
bias_max_value          = 30.0
bias_min_value          = -30.0
bias_mutate_power       = 0.5
bias_mutate_rate        = 0.7
bias_replace_rate       = 0.1
compatibility_disjoint_coefficient = 1.0
compatibility_weight_coefficient   = 0.5
conn_add_prob           = 0.5
conn_delete_prob        = 0.1
enabled_default         = True
enabled_mutate_rate     = 0.2
feed_forward            = False
initial_connection      = partial_nodirect 0.5
node_add_prob           = 0.5
node_delete_prob        = 0.5
num_hidden              = 0
num_inputs              = 840
num_outputs             = 12
response_init_mean      = 1.0
response_init_stdev     = 0.05
response_max_value      = 30.0
response_min_value      = -30.0
response_mutate_power   = 0.1
response_mutate_rate    = 0.75
response_replace_rate   = 0.1
weight_init_mean        = 0.1
weight_init_stdev       = 1.0
weight_max_value        = 30
weight_min_value        = -30
weight_mutate_power     = 0.5
weight_mutate_rate      = 0.8
weight_replace_rate     = 0.1
"""

# Every builtin function, high mutation rates and plenty of structural mutation, so
# that genomes mix all functions, hidden nodes, disabled and recurrent connections.
ALL_FUNCTIONS = {
    "activation_default": "random",
    "activation_options": " ".join(ALL_ACTIVATIONS),
    "activation_mutate_rate": "0.5",
    "aggregation_options": " ".join(ALL_AGGREGATIONS),
    "aggregation_mutate_rate": "0.5",
    "node_add_prob": "0.7",
    "node_delete_prob": "0.2",
    "conn_add_prob": "0.9",
    "enabled_mutate_rate": "0.3",
}


def _config_text(overrides: dict[str, str]) -> str:
    lines = []
    for line in TUTORIAL_CONFIG.splitlines():
        key = line.split("=")[0].strip()
        lines.append(f"{key} = {overrides[key]}" if "=" in line and key in overrides else line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def make_config(tmp_path):
    """Writes a tutorial-derived config with the given overrides and loads it."""

    def _make(**overrides: object) -> neat.Config:
        path = tmp_path / f"neat_{len(list(tmp_path.iterdir()))}.cfg"
        path.write_text(_config_text({k: str(v) for k, v in overrides.items()}))
        config = neat.Config(
            neat.DefaultGenome,
            neat.DefaultReproduction,
            neat.DefaultSpeciesSet,
            neat.DefaultStagnation,
            str(path),
        )
        # Normally set by DefaultReproduction; genomes cannot be created or mutated without it.
        config.genome_config.innovation_tracker = neat.InnovationTracker()
        return config

    return _make


def _evolve(config: neat.Config, key: int, mutations: int) -> neat.DefaultGenome:
    # neat draws from the global ``random`` module: seed it for reproducible genomes,
    # then restore it so other tests are unaffected.
    state = random.getstate()
    random.seed(key)
    try:
        genome = config.genome_type(key)
        genome.configure_new(config.genome_config)
        for _ in range(mutations):
            genome.mutate(config.genome_config)
    finally:
        random.setstate(state)
    return genome


def _inputs(kind: str, num_inputs: int, steps: int = 5, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "pixels":
        return [rng.integers(0, 256, num_inputs, dtype=np.uint8) for _ in range(steps)]
    return [rng.uniform(-1.0, 1.0, num_inputs) for _ in range(steps)]


def _reference(genome, config, feed_forward: bool):
    network_type = neat.nn.FeedForwardNetwork if feed_forward else neat.nn.RecurrentNetwork
    return network_type.create(genome, config)


def _assert_matches(genome, config, inputs, feed_forward: bool | None = None) -> int:
    """Runs both networks on ``inputs``; returns how many steps were compared."""
    if feed_forward is None:
        feed_forward = config.genome_config.feed_forward
    reference = _reference(genome, config, feed_forward)
    compiled = CompiledNetwork.create(genome, config, feed_forward=feed_forward)
    for step, x in enumerate(inputs):
        try:
            expected = reference.activate(x.tolist())
        except OverflowError:
            # neat's scalar ``z ** 2`` / ``z ** 3`` raise on huge values; numpy gives inf.
            return step
        got = compiled.activate(x)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=f"step {step}")
    return len(inputs)


def _has_recurrent_link(genome) -> bool:
    enabled = [k for k, cg in genome.connections.items() if cg.enabled]
    successors: dict[int, set[int]] = {}
    for a, b in enabled:
        successors.setdefault(a, set()).add(b)
    for a, b in enabled:  # (a, b) is recurrent if b reaches a
        seen, stack = {b}, [b]
        while stack:
            node = stack.pop()
            if node == a:
                return True
            for nxt in successors.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    return False


def test_recurrent_matches_neat_on_tutorial_config(make_config):
    config = make_config()
    for key in range(3):
        genome = _evolve(config, key, mutations=8)
        for kind in ("pixels", "floats"):
            assert _assert_matches(genome, config, _inputs(kind, 840, seed=key)) == 5


@pytest.mark.parametrize("num_inputs", [840, 5])
def test_recurrent_matches_neat_with_all_functions(make_config, num_inputs):
    config = make_config(**ALL_FUNCTIONS, num_inputs=num_inputs, initial_connection="partial_nodirect 0.05")
    activations, aggregations, compared = set(), set(), 0
    hidden = disabled = recurrent = False
    for key in range(12):
        genome = _evolve(config, key, mutations=30)
        for kind in ("pixels", "floats"):
            compared += _assert_matches(genome, config, _inputs(kind, num_inputs, seed=key))
        net = CompiledNetwork.create(genome, config)
        activations.update(genome.nodes[n].activation for n in net.node_keys)
        aggregations.update(genome.nodes[n].aggregation for n in net.node_keys)
        hidden |= any(n >= 12 for n in net.node_keys)
        disabled |= any(not cg.enabled for cg in genome.connections.values())
        recurrent |= _has_recurrent_link(genome)
    # The comparison is only meaningful if the genomes really exercised everything.
    assert compared >= 100
    assert activations == set(ALL_ACTIVATIONS)
    assert aggregations == set(ALL_AGGREGATIONS)
    assert hidden and disabled and recurrent


@pytest.mark.parametrize("num_inputs", [840, 5])
def test_feed_forward_matches_neat_with_all_functions(make_config, num_inputs):
    config = make_config(
        **ALL_FUNCTIONS, feed_forward=True, num_inputs=num_inputs, initial_connection="partial_nodirect 0.05"
    )
    activations, depth, compared = set(), 0, 0
    for key in range(12):
        genome = _evolve(config, key, mutations=30)
        for kind in ("pixels", "floats"):
            compared += _assert_matches(genome, config, _inputs(kind, num_inputs, seed=key))
        net = CompiledNetwork.create(genome, config)
        assert net.feed_forward
        activations.update(genome.nodes[n].activation for n in net.node_keys)
        depth = max(depth, len(net._stages))
        # Without recurrence there is nothing to prune: exactly neat's nodes and links.
        reference = neat.nn.FeedForwardNetwork.create(genome, config)
        assert net.num_nodes == len(reference.node_evals)
        assert net.num_connections == sum(len(ev[-1]) for ev in reference.node_evals)
    assert compared >= 100
    assert activations == set(ALL_ACTIVATIONS)
    assert depth >= (2 if num_inputs == 840 else 4)


def test_mode_can_be_forced_either_way(make_config):
    recurrent_config = make_config(**ALL_FUNCTIONS, num_inputs=5)
    ff_config = make_config(**ALL_FUNCTIONS, num_inputs=5, feed_forward=True)
    for key in range(8):
        genome = _evolve(recurrent_config, key, mutations=30)
        # Cycles are simply never evaluated in feed-forward mode (neat does the same).
        assert _assert_matches(genome, recurrent_config, _inputs("floats", 5), feed_forward=True) == 5
        assert CompiledNetwork.create(genome, recurrent_config, feed_forward=True).feed_forward
        genome = _evolve(ff_config, key, mutations=30)
        assert _assert_matches(genome, ff_config, _inputs("floats", 5), feed_forward=False) == 5
        assert not CompiledNetwork.create(genome, ff_config, feed_forward=False).feed_forward


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="builtin sum() uses compensated summation")
def test_sum_aggregation_is_bit_identical(make_config):
    # No transcendental functions: pure IEEE arithmetic must agree to the last bit.
    config = make_config(
        **{
            **ALL_FUNCTIONS,
            "activation_options": "identity relu clamped lelu abs hat",
            "aggregation_options": "sum",
        },
        initial_connection="partial_nodirect 0.5",
    )
    for key in range(3):
        genome = _evolve(config, key, mutations=15)
        reference = neat.nn.RecurrentNetwork.create(genome, config)
        compiled = CompiledNetwork.create(genome, config)
        for x in _inputs("pixels", 840, seed=key):
            np.testing.assert_array_equal(compiled.activate(x), reference.activate(x.tolist()))


def _wired_genome(config, activation: str, aggregation: str, fan_in: int):
    """Every output = activation(aggregation(first ``fan_in`` inputs)), via neat's own API."""
    genome = config.genome_type(0)
    genome.configure_new(config.genome_config)  # 'unconnected': just the output nodes
    for key, node in genome.nodes.items():
        node.bias, node.response = 0.0, 1.0
        node.activation, node.aggregation = activation, aggregation
        for i in range(fan_in):
            genome.add_connection(config.genome_config, -i - 1, key, 1.0, True)
    return genome


EDGE_VALUES = [
    0.0,
    -0.0,
    1e-7,
    -1e-7,
    1e-8,
    0.2,
    -0.2,
    1.0,
    -1.0,
    3.4,
    -3.5,
    12.0,
    -12.0,
    60.0,
    -61.0,
    700.0,
    -750.0,
    1e154,
    1e200,
    -1e200,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
]


# Small groups of nodes take a scalar path, large ones the vectorized path: test both.
@pytest.mark.parametrize("num_outputs", [1, 12])
@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_activation_edge_cases(make_config, activation, num_outputs):
    config = make_config(num_inputs=1, num_outputs=num_outputs, initial_connection="unconnected")
    genome = _wired_genome(config, activation, "sum", fan_in=1)
    reference = neat.nn.RecurrentNetwork.create(genome, config)
    compiled = CompiledNetwork.create(genome, config)
    function = config.genome_config.activation_defs.get(activation)
    for value in EDGE_VALUES:
        got = compiled.activate([value])
        try:
            expected = reference.activate([value])
        except OverflowError:
            # neat's scalar ``z ** 2`` / ``z ** 3`` overflow; we return the IEEE result.
            assert (got == (math.copysign(math.inf, value) if activation == "cube" else math.inf)).all()
            continue
        assert expected[0] == function(value) or math.isnan(expected[0])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, err_msg=f"{activation}({value})")


AGGREGATION_ROWS = [
    [-3.0, 3.0, 1.0, -1.0, 2.0, 0.5],
    [3.0, -3.0, -1.0, 1.0, -2.0, 7.0],
    [math.nan, 1.0, 2.0, -5.0, 0.0, 1.0],
    [1.0, math.nan, 5.0, -7.0, math.nan, 2.0],
    [math.inf, -math.inf, 1.0, 2.0, 3.0, 4.0],
    [-math.inf, -math.inf, -math.inf, 2.0, -math.inf, 1.0],
    [0.0, -0.0, 0.0, -0.0, 0.0, -0.0],
    [1e308, 1e308, -1e308, 1e308, 1e308, 1e308],
    [2.0, 2.0, 2.0, -2.0, -2.0, 2.0],
    [1e-300, 1e-300, 1e-300, 1e10, 1e10, 1e10],
]


@pytest.mark.parametrize("aggregation", ALL_AGGREGATIONS)
@pytest.mark.parametrize("fan_in", [1, 2, 3, 4, 6])
def test_aggregation_edge_cases(make_config, aggregation, fan_in):
    config = make_config(num_inputs=6, num_outputs=2, initial_connection="unconnected")
    genome = _wired_genome(config, "identity", aggregation, fan_in)
    reference = neat.nn.RecurrentNetwork.create(genome, config)
    compiled = CompiledNetwork.create(genome, config)
    for row in AGGREGATION_ROWS:
        expected = reference.activate(row)
        np.testing.assert_array_equal(compiled.activate(row), expected, err_msg=f"{aggregation}({row})")


@pytest.mark.parametrize("aggregation", ALL_AGGREGATIONS)
def test_outputs_without_links(make_config, aggregation):
    # Recurrent: outputs without links stay 0.0. Feed-forward: they are "bias neurons"
    # computing activation(bias + response * aggregation([])).
    for feed_forward in (False, True):
        config = make_config(
            num_outputs=3,
            initial_connection="unconnected",
            feed_forward=feed_forward,
            aggregation_default=aggregation,
            activation_default="random",
            activation_options=" ".join(ALL_ACTIVATIONS),
        )
        genome = _evolve(config, 1, mutations=0)
        x = _inputs("pixels", 840)[0]
        expected = _reference(genome, config, feed_forward).activate(x.tolist())
        got = CompiledNetwork.create(genome, config).activate(x)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
        if not feed_forward:
            assert not got.any()


def test_reset_restores_initial_state(make_config):
    config = make_config()
    genome = _evolve(config, 7, mutations=8)
    net = CompiledNetwork.create(genome, config)
    sequence = _inputs("pixels", 840)
    first_run = [net.activate(x) for x in sequence]
    assert not all(np.array_equal(first_run[0], out) for out in first_run[1:])  # state matters
    net.reset()
    for x, out in zip(sequence, first_run, strict=True):
        np.testing.assert_array_equal(net.activate(x), out)


def test_pickle_round_trip_preserves_outputs_and_state(make_config):
    config = make_config(**ALL_FUNCTIONS, initial_connection="partial_nodirect 0.2")
    genome = _evolve(config, 3, mutations=30)
    net = CompiledNetwork.create(genome, config)
    sequence = _inputs("pixels", 840, steps=6)
    fresh_copy = pickle.loads(pickle.dumps(net))
    net.activate(sequence[0])
    net.activate(sequence[1])
    mid_copy = pickle.loads(pickle.dumps(net))  # carries the recurrent state along
    for x in sequence[2:]:
        np.testing.assert_array_equal(mid_copy.activate(x), net.activate(x))
    net.reset()
    for x in sequence:
        np.testing.assert_array_equal(fresh_copy.activate(x), net.activate(x))


def test_accepts_lists_arrays_of_any_dtype_and_images(make_config):
    config = make_config()
    genome = _evolve(config, 5, mutations=5)
    frame = _inputs("pixels", 840)[0]
    outputs = []
    for form in (
        frame,
        frame.tolist(),
        frame.astype(np.float32),
        frame.astype(np.int64),
        frame.reshape(28, 30),
        [float(v) for v in frame],
    ):
        net = CompiledNetwork.create(genome, config)
        outputs.append(net.activate(form))
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])
    assert outputs[0].shape == (12,)
    with pytest.raises(RuntimeError, match="Expected 840 inputs, got 839"):
        CompiledNetwork.create(genome, config).activate(frame[:-1])


def _custom_activation(z):
    return math.atan(z)


def _custom_aggregation(values):
    return sum(values) / (1.0 + len(values))


def test_custom_functions_fall_back_to_python(make_config):
    config = make_config(
        **{**ALL_FUNCTIONS, "activation_options": "my_act sigmoid", "aggregation_options": "my_agg max"},
        num_inputs=5,
        feed_forward=True,
    )
    config.genome_config.add_activation("my_act", _custom_activation)
    config.genome_config.add_aggregation("my_agg", _custom_aggregation)
    # A builtin name re-bound to another function must not use the builtin's fast path.
    config.genome_config.add_activation("sigmoid", _custom_activation)
    for key in range(5):
        genome = _evolve(config, key, mutations=20)
        for feed_forward in (False, True):
            assert _assert_matches(genome, config, _inputs("floats", 5), feed_forward=feed_forward) == 5
        net = CompiledNetwork.create(genome, config)
        copy = pickle.loads(pickle.dumps(net))
        x = _inputs("floats", 5)[0]
        np.testing.assert_array_equal(copy.activate(x), net.activate(x))


def test_reporting_attributes_and_benchmark(make_config):
    config = make_config()
    genome = _evolve(config, 2, mutations=4)
    net = CompiledNetwork.create(genome, config)
    enabled = sum(cg.enabled for cg in genome.connections.values())
    assert (net.num_inputs, net.num_outputs) == (840, 12)
    assert 12 <= net.num_nodes <= len(genome.nodes)
    assert 0 < net.num_connections <= enabled
    assert "recurrent" in repr(net)
    # the activation benchmark (benchmarks/neat_generation.py) runs on such a genome
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from neat_generation import benchmark_activation

    stats = benchmark_activation(genome, config, n=20)
    assert stats["compiled_per_s"] > 0 and stats["neat_per_s"] > 0
    assert stats["num_connections"] == net.num_connections
