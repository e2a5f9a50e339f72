"""Numpy-compiled phenotype for neat-python 2.0 genomes.

``CompiledNetwork`` evaluates a genome with the same semantics as
``neat.nn.RecurrentNetwork`` or ``neat.nn.FeedForwardNetwork``, but precompiles
the expressed network into index arrays so that one ``activate`` call costs a
handful of vectorized numpy operations instead of a Python loop over every
connection. With hundreds of pixel inputs this is what makes NEAT evaluation
affordable.

Exactness: sums, means, products, max/min/maxabs/median, the clamps and the
activation formulas are evaluated in the same order and with the same NaN
rules as neat-python's pure-Python code, so on CPython 3.10/3.11 outputs are
normally bit-identical. Exceptions: numpy's ``exp``/``log``/``sin``/``pow``
may differ from libm by an ulp on some CPUs (``tanh`` always would, so it is
computed with ``math.tanh``); from CPython 3.12 the builtin ``sum`` uses
compensated summation, which ``np.bincount`` does not replicate; and where
neat-python raises ``OverflowError`` (``square``/``cube`` of a huge finite
value) this module returns ``inf`` instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from neat import activations as _act
from neat import aggregations as _agg
from neat.graphs import required_for_output

__all__ = ["CompiledNetwork"]


# ---------------------------------------------------------------------------
# Vectorized activation functions (exact replicas of neat/activations.py)
# ---------------------------------------------------------------------------

_SELU_LAMBDA = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717
# neat evaluates ``lam * alpha * (...)`` left to right, so the constant is rounded first.
_SELU_LAMBDA_ALPHA = _SELU_LAMBDA * _SELU_ALPHA


def _py_clamp(z: np.ndarray, lo: float, hi: float) -> np.ndarray:
    # Mirrors ``max(lo, min(hi, z))``: the builtins keep their first argument unless
    # the comparison is true, so NaN becomes ``hi``. fmin/fmax also discard the NaN
    # (np.clip would propagate it). Returns a fresh array, safe to modify in place.
    z = np.fmin(z, hi)
    return np.fmax(z, lo, out=z)


def _libm_pow(z: np.ndarray, exponent: float) -> np.ndarray:
    # A scalar exponent of 2 sends numpy down its x*x fast path, which can differ by one
    # ulp from the libm pow() behind Python's ``z ** 2``; an array exponent does not.
    return np.power(z, np.full(z.shape, exponent))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    t = _py_clamp(5.0 * z, -60.0, 60.0)
    np.negative(t, out=t)
    np.exp(t, out=t)
    t += 1.0
    return np.divide(1.0, t, out=t)


def _tanh(z: np.ndarray) -> np.ndarray:
    z = _py_clamp(2.5 * z, -60.0, 60.0)
    # np.tanh is a SIMD approximation that differs from math.tanh in ~25% of cases;
    # node counts are small, so the exact scalar version costs almost nothing.
    return np.fromiter(map(math.tanh, z.tolist()), dtype=np.float64, count=z.size)


def _sin(z: np.ndarray) -> np.ndarray:
    t = _py_clamp(5.0 * z, -60.0, 60.0)
    return np.sin(t, out=t)


def _gauss(z: np.ndarray) -> np.ndarray:
    t = _libm_pow(_py_clamp(z, -3.4, 3.4), 2.0)
    t *= -5.0
    return np.exp(t, out=t)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0.0, z, 0.0)


def _libm_exp(z: np.ndarray) -> np.ndarray:
    # numpy's SIMD exp (AVX-512 on some CPUs) may differ by an ulp from libm's, and exp(z) - 1 near 0
    # turns that ulp into a relative error of 1e-9: elu and selu take Python's exp, element by element.
    flat = np.ravel(z)
    return np.fromiter(map(math.exp, flat.tolist()), float, count=flat.size).reshape(np.shape(z))


def _elu(z: np.ndarray) -> np.ndarray:
    # exp(z) - 1 rather than expm1 to match neat's rounding; the minimum() only keeps
    # the discarded branch from overflowing.
    return np.where(z > 0.0, z, _libm_exp(np.minimum(z, 0.0)) - 1.0)


def _lelu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0.0, z, 0.005 * z)


def _selu(z: np.ndarray) -> np.ndarray:
    negative = _SELU_LAMBDA_ALPHA * (_libm_exp(np.minimum(z, 0.0)) - 1.0)
    return np.where(z > 0.0, _SELU_LAMBDA * z, negative)


def _softplus(z: np.ndarray) -> np.ndarray:
    t = _py_clamp(5.0 * z, -60.0, 60.0)
    np.exp(t, out=t)
    t += 1.0
    np.log(t, out=t)
    t *= 0.2
    return t


def _identity(z: np.ndarray) -> np.ndarray:
    return z


def _clamped(z: np.ndarray) -> np.ndarray:
    return _py_clamp(z, -1.0, 1.0)


def _inv(z: np.ndarray) -> np.ndarray:
    # neat turns the ZeroDivisionError of 1.0 / 0.0 (either sign) into 0.0.
    return np.where(z == 0.0, 0.0, 1.0 / z)


def _log(z: np.ndarray) -> np.ndarray:
    return np.log(np.where(z > 1e-7, z, 1e-7))


def _exp(z: np.ndarray) -> np.ndarray:
    t = _py_clamp(z, -60.0, 60.0)
    return np.exp(t, out=t)


def _abs(z: np.ndarray) -> np.ndarray:
    return np.abs(z)


def _hat(z: np.ndarray) -> np.ndarray:
    y = 1.0 - np.abs(z)
    return np.where(y > 0.0, y, 0.0)


def _square(z: np.ndarray) -> np.ndarray:
    return _libm_pow(z, 2.0)


def _cube(z: np.ndarray) -> np.ndarray:
    return _libm_pow(z, 3.0)


# Keyed by neat's own function objects, so a user who re-registers a builtin name with
# a different function automatically gets the per-node fallback instead.
_VECTORIZED_ACTIVATIONS: dict[Callable[..., Any], Callable[[np.ndarray], np.ndarray]] = {
    _act.sigmoid_activation: _sigmoid,
    _act.tanh_activation: _tanh,
    _act.sin_activation: _sin,
    _act.gauss_activation: _gauss,
    _act.relu_activation: _relu,
    _act.elu_activation: _elu,
    _act.lelu_activation: _lelu,
    _act.selu_activation: _selu,
    _act.softplus_activation: _softplus,
    _act.identity_activation: _identity,
    _act.clamped_activation: _clamped,
    _act.inv_activation: _inv,
    _act.log_activation: _log,
    _act.exp_activation: _exp,
    _act.abs_activation: _abs,
    _act.hat_activation: _hat,
    _act.square_activation: _square,
    _act.cube_activation: _cube,
}

_AGGREGATION_KINDS: dict[Callable[..., Any], str] = {
    _agg.sum_aggregation: "sum",
    _agg.mean_aggregation: "mean",
    _agg.product_aggregation: "product",
    _agg.max_aggregation: "max",
    _agg.min_aggregation: "min",
    _agg.maxabs_aggregation: "maxabs",
    _agg.median_aggregation: "median",
}

# Value of each builtin aggregation over an empty list (feed-forward "bias neurons").
_EMPTY_AGGREGATE = {"product": 1.0, "max": 0.0, "min": 0.0, "maxabs": 0.0, "median": 0.0, "mean": 0.0}

# Node order inside a stage: grouping by aggregation keeps every group's nodes and
# connections contiguous, so groups are addressed with slices instead of gathers.
_KIND_ORDER = {
    k: i
    for i, k in enumerate(["sum", "mean", "product", "max", "min", "maxabs", "median", "const", "custom"])
}


# ---------------------------------------------------------------------------
# Compiled operations. Plain module-level classes so that networks pickle.
# ---------------------------------------------------------------------------


class _SumOp:
    """Sums (or means) a contiguous block of nodes with np.bincount.

    bincount accumulates in array order starting from 0.0, exactly like the builtin
    ``sum`` on CPython <= 3.11, as long as connections keep neat's link order.
    """

    def __init__(self, n0: int, n1: int, c0: int, c1: int, dst: np.ndarray, counts: np.ndarray | None):
        self.n0, self.n1, self.c0, self.c1 = n0, n1, c0, c1
        self.dst = dst
        self.counts = counts

    def __call__(self, g: np.ndarray, agg: np.ndarray) -> None:
        s = np.bincount(self.dst, weights=g[self.c0 : self.c1], minlength=self.n1 - self.n0)
        agg[self.n0 : self.n1] = s if self.counts is None else s / self.counts


class _ReduceOp:
    """Product, max or min over contiguous per-node connection segments (ufunc.reduceat)."""

    def __init__(
        self, n0: int, n1: int, c0: int, c1: int, offsets: np.ndarray, ufunc: np.ufunc, leading_nan_wins: bool
    ):
        self.n0, self.n1, self.c0, self.c1 = n0, n1, c0, c1
        self.offsets = offsets
        self.ufunc = ufunc
        self.leading_nan_wins = leading_nan_wins

    def __call__(self, g: np.ndarray, agg: np.ndarray) -> None:
        seg = g[self.c0 : self.c1]
        r = self.ufunc.reduceat(seg, self.offsets)
        if self.leading_nan_wins:
            # Python's max()/min() keep a leading NaN (nothing compares greater than
            # it) and skip later ones; fmax/fmin skip all NaNs, so patch the first case.
            first = seg[self.offsets]
            r = np.where(first != first, first, r)
        agg[self.n0 : self.n1] = r


class _MaxAbsOp:
    """``max(x, key=abs)``: first element of largest magnitude, sign preserved.

    Rows are padded with copies of their first element, which can never beat an
    earlier maximum because argmax returns the first occurrence.
    """

    def __init__(self, n0: int, n1: int, index: np.ndarray):
        self.n0, self.n1 = n0, n1
        self.index = index
        self.rows = np.arange(n1 - n0)

    def __call__(self, g: np.ndarray, agg: np.ndarray) -> None:
        values = g[self.index]
        magnitude = np.abs(values)
        # Python's max() skips NaN keys unless the NaN comes first (handled below).
        magnitude[np.isnan(magnitude)] = -1.0
        pick = magnitude.argmax(axis=1)
        pick[np.isnan(values[:, 0])] = 0
        agg[self.n0 : self.n1] = values[self.rows, pick]


class _MedianOp:
    """neat's ``median2``: middle value, or mean of the two middle values if even.

    Rows are padded with a +inf sentinel stored as the last element of ``g``, so
    after sorting the real values come first.
    """

    def __init__(self, n0: int, n1: int, index: np.ndarray, counts: np.ndarray):
        self.n0, self.n1 = n0, n1
        self.index = index
        self.counts = counts
        rows = n1 - n0
        flat_row = np.arange(rows) * index.shape[1]
        # Flat positions of the lower and upper middle element of every sorted row.
        self.middle = np.concatenate([flat_row + (counts - 1) // 2, flat_row + counts // 2])
        self.odd = counts % 2 == 1

    def __call__(self, g: np.ndarray, agg: np.ndarray) -> None:
        values = g[self.index]
        values.sort(axis=1)
        rows = self.n1 - self.n0
        middle = values.take(self.middle)
        lower, upper = middle[:rows], middle[rows:]
        result = (lower + upper) / 2.0
        # Odd rows take the middle element itself: (x + x) / 2 overflows for |x| > max/2.
        np.copyto(result, upper, where=self.odd)
        has_nan = np.isnan(values[:, -1])  # numpy sorts NaN after the inf padding
        if has_nan.any():
            # With NaNs, Python's list.sort yields an order-dependent result that only
            # the reference implementation itself reproduces.
            for row in np.flatnonzero(has_nan):
                row_values = g[self.index[row, : self.counts[row]]].tolist()
                result[row] = _agg.median_aggregation(row_values)
        agg[self.n0 : self.n1] = result


class _ConstOp:
    """Aggregate of nodes without incoming links (feed-forward bias neurons)."""

    def __init__(self, n0: int, n1: int, values: np.ndarray):
        self.n0, self.n1 = n0, n1
        self.values = values

    def __call__(self, g: np.ndarray, agg: np.ndarray) -> None:
        agg[self.n0 : self.n1] = self.values


class _CustomAggOp:
    """User-registered aggregation, called exactly as neat does (one list per node)."""

    def __init__(self, node: int, c0: int, c1: int, function: Callable[..., Any]):
        self.node, self.c0, self.c1 = node, c0, c1
        self.function = function

    def __call__(self, g: np.ndarray, agg: np.ndarray) -> None:
        agg[self.node] = self.function(g[self.c0 : self.c1].tolist())


class _VectorActivationOp:
    """Applies one vectorized builtin activation to a group of nodes in place."""

    def __init__(self, selection: slice | np.ndarray, function: Callable[[np.ndarray], np.ndarray]):
        self.selection = selection
        self.function = function

    def __call__(self, z: np.ndarray) -> None:
        z[self.selection] = self.function(z[self.selection])


class _ScalarActivationOp:
    """Calls a Python activation once per node on a list of Python floats.

    Used for user-registered functions and for builtin groups too small for numpy's
    per-call overhead to pay off (exact by construction: it is neat's own function).
    """

    def __init__(self, nodes: list[int], function: Callable[..., Any]):
        self.nodes = nodes
        self.function = function

    def __call__(self, z: list[float]) -> None:
        f = self.function
        for j in self.nodes:
            z[j] = f(z[j])


class _Stage:
    """A set of nodes computed simultaneously from the current value buffer.

    The recurrent network is a single stage (every node reads the previous step);
    a feed-forward network has one stage per topological layer.
    """

    def __init__(
        self,
        start: int,
        stop: int,
        src: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        response: np.ndarray,
        agg_ops: list[Any],
        vector_ops: list[_VectorActivationOp],
        scalar_ops: list[_ScalarActivationOp],
    ):
        self.start, self.stop = start, stop
        self.src = src
        self.weight = weight
        self.bias = bias
        self.response = response
        self.agg_ops = agg_ops
        self.vector_ops = vector_ops
        self.scalar_ops = scalar_ops

    def run(self, buf: np.ndarray) -> None:
        g = buf[self.src]
        g *= self.weight
        agg = np.empty(self.stop - self.start)
        for op in self.agg_ops:
            op(g, agg)
        z = self.bias + self.response * agg  # same association as neat: bias + (response * s)
        for op in self.vector_ops:
            op(z)
        if self.scalar_ops:
            z = z.tolist()
            for op in self.scalar_ops:
                op(z)
        # Written only after every node of the stage has read ``buf``: this is what gives
        # the recurrent network its two-buffer (previous step) semantics.
        buf[self.start : self.stop] = z


# ---------------------------------------------------------------------------
# Structure extraction (which nodes and links neat-python would evaluate)
# ---------------------------------------------------------------------------


def _recurrent_structure(genome: Any, genome_config: Any) -> tuple[dict[int, list], list[list[int]]]:
    # Same filter as RecurrentNetwork.create. Note that neat passes the whole
    # connections dict, so *disabled* connections also make nodes "required".
    required = required_for_output(genome_config.input_keys, genome_config.output_keys, genome.connections)
    links: dict[int, list[tuple[int, float]]] = {}
    for cg in genome.connections.values():
        if not cg.enabled:
            continue
        i, o = cg.key
        if o not in required and i not in required:
            continue
        links.setdefault(o, []).append((i, cg.weight))

    # neat also evaluates nodes whose values never reach an output; dropping them
    # cannot change any output. Nodes without links keep the value 0.0 forever.
    live = {o for o in genome_config.output_keys if o in links}
    stack = list(live)
    while stack:
        for src, _ in links[stack.pop()]:
            if src in links and src not in live:
                live.add(src)
                stack.append(src)
    return {k: v for k, v in links.items() if k in live}, ([sorted(live)] if live else [])


def _feed_forward_structure(genome: Any, genome_config: Any) -> tuple[dict[int, list], list[list[int]]]:
    enabled = [cg.key for cg in genome.connections.values() if cg.enabled]
    inputs = genome_config.input_keys
    required = required_for_output(inputs, genome_config.output_keys, enabled)
    allowed_sources = required | set(inputs)
    links: dict[int, list[tuple[int, float]]] = {n: [] for n in required}
    for cg in genome.connections.values():
        i, o = cg.key
        if cg.enabled and o in required and i in allowed_sources:
            links[o].append((i, cg.weight))

    # Level-by-level Kahn layering; equivalent to neat.graphs.feed_forward_layers
    # (which is O(layers * nodes * connections)) for the set of evaluated nodes:
    # a node is evaluated iff all its required sources are. Nodes on a cycle (only
    # possible when forcing feed-forward mode on a recurrent genome) and everything
    # downstream of them are never evaluated, and unevaluated outputs read 0.0.
    deps = {n: {s for s, _ in node_links if s in links} for n, node_links in links.items()}
    layers: list[list[int]] = []
    done: set[int] = set()
    remaining = set(links)
    while True:
        ready = sorted(n for n in remaining if deps[n] <= done)
        if not ready:
            break
        layers.append(ready)
        done.update(ready)
        remaining.difference_update(ready)
    return {k: v for k, v in links.items() if k in done}, layers


def _contiguous(indices: list[int]) -> slice | np.ndarray:
    # Slices avoid a fancy-index gather and scatter on every call.
    if indices and indices[-1] - indices[0] + 1 == len(indices):
        return slice(indices[0], indices[-1] + 1)
    return np.asarray(indices, dtype=np.intp)


def _padded(counts: np.ndarray, first: np.ndarray, pad: np.ndarray | int) -> np.ndarray:
    # Row r holds the connection indices of one node, padded with ``pad`` to the widest row.
    cols = np.arange(int(counts.max()))
    index = np.where(
        cols[None, :] < counts[:, None],
        first[:, None] + cols[None, :],
        np.broadcast_to(pad, counts.shape)[:, None],
    )
    return index.astype(np.intp)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

# Groups of at most this many nodes call neat's scalar activation: below it, numpy's
# per-call overhead (~1 us per ufunc) exceeds a Python call per node.
_SCALAR_GROUP_MAX = 8

# neat's scalar square/cube raise OverflowError on huge finite inputs; keep them vectorized.
_ALWAYS_VECTORIZED = {_square, _cube}


class CompiledNetwork:
    """Vectorized phenotype of a neat-python genome.

    Build it with :meth:`create`. In recurrent mode every node is computed from the
    previous step's values (``neat.nn.RecurrentNetwork``); in feed-forward mode nodes
    are computed layer by layer from the current inputs (``neat.nn.FeedForwardNetwork``).
    Only nodes that can influence an output are compiled.

    Attributes:
        feed_forward: True if evaluated as a feed-forward network.
        num_inputs: Number of input values expected by :meth:`activate`.
        num_outputs: Number of values returned by :meth:`activate`.
        num_nodes: Number of evaluated (hidden and output) nodes.
        num_connections: Number of enabled connections evaluated per step.
        node_keys: Genome keys of the evaluated nodes.
        output_keys: Genome keys of the outputs, in output order.
    """

    def __init__(
        self,
        stages: list[_Stage],
        num_inputs: int,
        output_index: np.ndarray,
        feed_forward: bool,
        node_keys: tuple[int, ...],
        output_keys: tuple[int, ...],
        num_connections: int,
    ):
        """Stores precompiled stages; use :meth:`create` instead of calling this directly.

        Args:
            stages: Compiled evaluation stages, run in order.
            num_inputs: Number of network inputs.
            output_index: Buffer position of each output (the constant 0.0 slot if unevaluated).
            feed_forward: Evaluation mode, for reporting.
            node_keys: Genome keys of the evaluated nodes, in buffer order.
            output_keys: Genome keys of the outputs.
            num_connections: Number of evaluated connections.
        """
        self._stages = stages
        self._output_index = output_index
        # Buffer layout: inputs | evaluated nodes | constant 0.0 | constant +inf (median padding).
        self._nodes = slice(num_inputs, num_inputs + len(node_keys))
        self._buffer = np.zeros(num_inputs + len(node_keys) + 2)
        self._buffer[-1] = np.inf
        self.feed_forward = feed_forward
        self.num_inputs = num_inputs
        self.num_outputs = len(output_keys)
        self.node_keys = node_keys
        self.output_keys = output_keys
        self.num_nodes = len(node_keys)
        self.num_connections = num_connections

    @classmethod
    def create(cls, genome: Any, config: Any, feed_forward: bool | None = None) -> CompiledNetwork:
        """Compiles a genome into a network.

        Args:
            genome: A ``neat.DefaultGenome`` (or compatible) instance.
            config: The ``neat.Config`` the genome belongs to.
            feed_forward: Force feed-forward (True) or recurrent (False) semantics;
                None follows ``config.genome_config.feed_forward``.

        Returns:
            The compiled network, in its initial (all-zero) state.
        """
        gc = config.genome_config
        if feed_forward is None:
            feed_forward = bool(gc.feed_forward)
        extract = _feed_forward_structure if feed_forward else _recurrent_structure
        links, layers = extract(genome, gc)

        num_inputs = len(gc.input_keys)
        position = {key: i for i, key in enumerate(gc.input_keys)}
        node_info = {}
        ordered_layers = []
        for layer in layers:
            info = {n: _node_info(genome.nodes[n], gc, len(links[n])) for n in layer}
            ordered = sorted(layer, key=lambda n, info=info: (_KIND_ORDER[info[n][0]], info[n][1], n))
            for n in ordered:
                position[n] = len(position)
            node_info.update(info)
            ordered_layers.append(ordered)
        zero_slot = len(position)  # sources that are never computed (neat leaves them at 0.0)

        stages = []
        start = num_inputs
        for ordered in ordered_layers:
            stages.append(_compile_stage(ordered, start, links, node_info, genome, position, zero_slot))
            start += len(ordered)

        output_index = np.array([position.get(k, zero_slot) for k in gc.output_keys], dtype=np.intp)
        node_keys = tuple(n for ordered in ordered_layers for n in ordered)
        num_connections = sum(len(links[n]) for n in node_keys)
        return cls(
            stages, num_inputs, output_index, feed_forward, node_keys, tuple(gc.output_keys), num_connections
        )

    def reset(self) -> None:
        """Returns the network to its initial state (all node values 0.0)."""
        self._buffer[self._nodes] = 0.0

    def activate(self, inputs: Sequence[float] | np.ndarray) -> np.ndarray:
        """Advances the network one step.

        Args:
            inputs: ``num_inputs`` numbers: a list or a numpy array of any numeric
                dtype (e.g. uint8 pixels). Multi-dimensional arrays are flattened.

        Returns:
            float64 array of output values in ``config.genome_config.output_keys`` order.

        Raises:
            RuntimeError: If the number of inputs is wrong (same error as neat-python).
        """
        x = np.asarray(inputs)
        if x.ndim != 1:
            x = x.reshape(-1)
        if x.shape[0] != self.num_inputs:
            raise RuntimeError(f"Expected {self.num_inputs:n} inputs, got {x.shape[0]:n}")
        buf = self._buffer
        buf[: self.num_inputs] = x
        # neat's pure-Python arithmetic overflows to inf/nan silently; so must we.
        with np.errstate(all="ignore"):
            for stage in self._stages:
                stage.run(buf)
        return buf[self._output_index]

    def __repr__(self) -> str:
        mode = "feed_forward" if self.feed_forward else "recurrent"
        return (
            f"CompiledNetwork({mode}, inputs={self.num_inputs}, outputs={self.num_outputs}, "
            f"nodes={self.num_nodes}, connections={self.num_connections})"
        )


def _node_info(node: Any, genome_config: Any, num_links: int) -> tuple[str, str, Callable, Callable]:
    aggregation = genome_config.aggregation_function_defs.get(node.aggregation)
    activation = genome_config.activation_defs.get(node.activation)
    kind = _AGGREGATION_KINDS.get(aggregation, "custom")
    if num_links == 0 and kind in _EMPTY_AGGREGATE:
        kind = "const"  # reduceat and the padded ops need at least one element
    return kind, node.activation, aggregation, activation


def _compile_stage(
    nodes: list[int],
    start: int,
    links: dict[int, list],
    node_info: dict,
    genome: Any,
    position: dict[int, int],
    zero_slot: int,
) -> _Stage:
    src: list[int] = []
    weight: list[float] = []
    first = np.zeros(len(nodes), dtype=np.intp)
    counts = np.zeros(len(nodes), dtype=np.intp)
    for j, n in enumerate(nodes):
        first[j] = len(src)
        counts[j] = len(links[n])
        for s, w in links[n]:  # neat's link order, which sum/product rounding depends on
            src.append(position.get(s, zero_slot))
            weight.append(w)
    inf_index = len(src)  # one extra gathered element, +inf, used to pad median rows

    agg_ops: list[Any] = []
    needs_inf = False
    j = 0
    while j < len(nodes):
        kind = node_info[nodes[j]][0]
        k = j
        while k < len(nodes) and node_info[nodes[k]][0] == kind:
            k += 1
        c0 = int(first[j])
        c1 = int(first[k - 1] + counts[k - 1])
        group_counts = counts[j:k]
        if kind in ("sum", "mean"):
            dst = np.repeat(np.arange(k - j), group_counts)
            divisor = group_counts.astype(np.float64) if kind == "mean" else None
            agg_ops.append(_SumOp(j, k, c0, c1, dst, divisor))
        elif kind in ("product", "max", "min"):
            ufunc = {"product": np.multiply, "max": np.fmax, "min": np.fmin}[kind]
            agg_ops.append(_ReduceOp(j, k, c0, c1, first[j:k] - c0, ufunc, kind != "product"))
        elif kind == "maxabs":
            agg_ops.append(_MaxAbsOp(j, k, _padded(group_counts, first[j:k], first[j:k])))
        elif kind == "median":
            needs_inf = True
            agg_ops.append(_MedianOp(j, k, _padded(group_counts, first[j:k], inf_index), group_counts.copy()))
        elif kind == "const":
            values = np.array([_EMPTY_AGGREGATE[_AGGREGATION_KINDS[node_info[n][2]]] for n in nodes[j:k]])
            agg_ops.append(_ConstOp(j, k, values))
        else:
            for m in range(j, k):
                c = int(first[m])
                agg_ops.append(_CustomAggOp(m, c, c + int(counts[m]), node_info[nodes[m]][2]))
        j = k
    if needs_inf:
        src.append(zero_slot + 1)
        weight.append(1.0)

    by_activation: dict[str, list[int]] = {}
    for j, n in enumerate(nodes):
        by_activation.setdefault(node_info[n][1], []).append(j)
    vector_ops: list[_VectorActivationOp] = []
    scalar_ops: list[_ScalarActivationOp] = []
    for members in by_activation.values():
        function = node_info[nodes[members[0]]][3]
        vectorized = _VECTORIZED_ACTIVATIONS.get(function)
        if vectorized is _identity:
            continue
        if vectorized is None or (len(members) <= _SCALAR_GROUP_MAX and vectorized not in _ALWAYS_VECTORIZED):
            scalar_ops.append(_ScalarActivationOp(members, function))
        else:
            vector_ops.append(_VectorActivationOp(_contiguous(members), vectorized))

    genes = [genome.nodes[n] for n in nodes]
    return _Stage(
        start=start,
        stop=start + len(nodes),
        src=np.asarray(src, dtype=np.intp),
        weight=np.asarray(weight, dtype=np.float64),
        bias=np.array([ng.bias for ng in genes], dtype=np.float64),
        response=np.array([ng.response for ng in genes], dtype=np.float64),
        agg_ops=agg_ops,
        vector_ops=vector_ops,
        scalar_ops=scalar_ops,
    )
