"""Is a pixel policy's CNN still looking at the screen? Watched during each evaluation, logged as ``network/*``.

Two Boxing runs lost their CNN without a figure showing it: boxing_a2c_pixram's units all but stopped firing
(0.4% of them ever active over 1,200 screens of its final policy's bouts) and boxing_ppo_lstm_pixram's at lr
1e-3 gave one value whatever the screen (11% of its units ever active, each moving by 0.5% of its size from
screen to screen). The rewards and losses looked like a policy that had not learned yet, because the RAM
values beside the screen still carried a critic and a near-uniform policy. Two figures over the observations
of an evaluation tell them apart (``scripts/policy_health.py`` gives the same for a saved policy):

- ``network/cnn_units_active``: the share of the CNN's output units that fired (> 0) on at least one of them;
  a healthy Nature CNN keeps most (boxing_ppo_pixram's final policy: 96%; boxing_ppo_lstm's: 88%).
- ``network/cnn_spread``: how much a unit's value moves from screen to screen (its standard deviation, averaged
  over the units) against the units' mean size; near 0, the CNN gives one answer for every screen
  (boxing_ppo_pixram: 2.0; boxing_ppo_lstm: 0.89; the collapsed LSTM: 0.005).
"""

from __future__ import annotations

import torch
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN


def find_cnn(policy) -> torch.nn.Module | None:
    """The Nature CNN inside an SB3 model or policy (pixels, or pixels beside RAM), or None (an MLP, NEAT); a
    Nature CNN is its own."""
    net = getattr(policy, "policy", policy)
    extractor = net if isinstance(net, NatureCNN) else getattr(net, "features_extractor", None)
    if isinstance(extractor, NatureCNN):
        return extractor
    if isinstance(extractor, CombinedExtractor):
        return next((m for m in extractor.extractors.values() if isinstance(m, NatureCNN)), None)
    return None


class FeatureWatch:
    """Collects a CNN's output over every forward pass while in a ``with`` block; :meth:`scalars` sums it up.

    A policy with no CNN gives no scalars, so the watch can wrap any evaluation.
    """

    def __init__(self, policy):
        self.cnn = find_cnn(policy)
        self._handle = None
        self._active = self._sum = self._sumsq = None
        self._abs = 0.0
        self._n = 0

    def _hook(self, module, inputs, output) -> None:
        f = output.detach().float().reshape(output.shape[0], -1).cpu()
        if self._active is None:
            self._active = torch.zeros(f.shape[1], dtype=torch.bool)
            self._sum = torch.zeros(f.shape[1], dtype=torch.float64)
            self._sumsq = torch.zeros(f.shape[1], dtype=torch.float64)
        self._active |= (f > 0).any(0)
        self._sum += f.sum(0, dtype=torch.float64)
        self._sumsq += (f.double() ** 2).sum(0)
        self._abs += float(f.abs().sum(dtype=torch.float64))
        self._n += f.shape[0]

    def __enter__(self) -> FeatureWatch:
        if self.cnn is not None:
            self._handle = self.cnn.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def scalars(self) -> dict[str, float]:
        """``network/cnn_units_active`` and ``network/cnn_spread`` over what was watched ({} if nothing)."""
        if self._n < 2:
            return {}
        mean = self._sum / self._n
        std = (self._sumsq / self._n - mean ** 2).clamp_min(0).sqrt()
        size = self._abs / (self._n * len(mean))
        return {"network/cnn_units_active": float(self._active.double().mean()),
                "network/cnn_spread": float(std.mean()) / size if size > 0 else 0.0}


#: Below these a CNN is taken to have stopped reading the screen. The healthy Nature CNNs of this project's
#: runs kept 88-96% of their units and a spread of 0.89-2.0; the failing ones had 0.4-11% of their units, and
#: the collapsed LSTM's a spread of 0.005 (a dead CNN's spread says little: its few live units are tiny).
MIN_UNITS_ACTIVE, MIN_SPREAD = 0.25, 0.02


def cnn_warning(network: dict[str, float], frames: int) -> str | None:
    """A one-paragraph warning when an evaluation's ``network/*`` figures say the CNN is dead (its units stopped
    firing) or collapsed (they fire, but the same for every screen); None when they do not."""
    active, spread = network.get("network/cnn_units_active"), network.get("network/cnn_spread")
    if active is None or (active >= MIN_UNITS_ACTIVE and spread >= MIN_SPREAD):
        return None
    if active < MIN_UNITS_ACTIVE:
        what = (f"only {active:.0%} of the policy's CNN units fired on the evaluation's screens (network/"
                "cnn_units_active): the CNN may have died")
    else:
        what = (f"the policy's CNN units moved by {spread:.3g} of their size from one of the evaluation's screens "
                "to the next (network/cnn_spread): the CNN may give one answer whatever the screen shows")
    return (f"warning: at {frames:,} frames {what}, and what the policy learns from here comes from the rest of "
            "its input. Watch network/* in TensorBoard; a lower learning rate kept boxing_ppo_lstm_pixram's CNN "
            "alive (docs/results.md).")
