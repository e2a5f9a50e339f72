"""agents.feature_watch: the figures that tell a CNN still reading the screen from a dead or collapsed one."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import NatureCNN

from agents.feature_watch import FeatureWatch, cnn_warning, find_cnn

SCREEN = spaces.Box(0, 255, (1, 84, 84), np.uint8)


def _screens(n: int, same: bool = False, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((1 if same else n, 1, 84, 84), generator=g)
    return x.expand(n, -1, -1, -1) if same else x


def _watch(cnn: torch.nn.Module, batches) -> dict:
    with FeatureWatch(cnn) as w, torch.no_grad():
        for b in batches:
            cnn(b)
    return w.scalars()


def test_a_fresh_cnn_reads_the_screens_a_dead_one_and_a_collapsed_one_do_not():
    torch.manual_seed(0)
    cnn = NatureCNN(SCREEN, features_dim=64)
    fresh = _watch(cnn, [_screens(8), _screens(8, seed=1)])
    assert fresh["network/cnn_units_active"] > 0.3 and fresh["network/cnn_spread"] > 0.05
    # one answer for every screen: the units that fire are the same and none moves
    same = _watch(cnn, [_screens(8, same=True)] * 2)
    assert same["network/cnn_spread"] == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():  # every output unit pushed below zero: nothing fires (boxing_a2c_pixram's CNN)
        cnn.linear[0].bias.fill_(-1e3)
    dead = _watch(cnn, [_screens(8)])
    assert dead == {"network/cnn_units_active": 0.0, "network/cnn_spread": 0.0}
    assert cnn_warning(fresh, 500_000) is None and cnn_warning({}, 500_000) is None
    assert "at 500,000 frames only 0% of the policy's CNN units fired" in cnn_warning(dead, 500_000)
    assert "one answer whatever the screen" in cnn_warning({**fresh, "network/cnn_spread": 0.005}, 1)


def test_the_watch_finds_the_cnn_in_pixel_and_multi_input_policies_and_lets_go_after():
    lr = lambda _: 1e-3  # noqa: E731
    cnn_policy = ActorCriticCnnPolicy(SCREEN, spaces.Discrete(4), lr)
    multi = MultiInputActorCriticPolicy(spaces.Dict({"pixels": SCREEN, "ram": spaces.Box(0, 1, (9,))}),
                                        spaces.Discrete(4), lr)
    mlp = ActorCriticPolicy(spaces.Box(0, 1, (9,)), spaces.Discrete(4), lr)
    assert find_cnn(cnn_policy) is cnn_policy.features_extractor
    assert find_cnn(multi) is multi.features_extractor.extractors["pixels"]
    assert find_cnn(mlp) is None and find_cnn(object()) is None
    with FeatureWatch(mlp) as w, torch.no_grad():
        mlp.predict(np.random.default_rng(0).random((4, 9), dtype=np.float32))
    assert w.cnn is None and w.scalars() == {}  # nothing to watch: no figures, not zeros
    obs = {"pixels": torch.randint(0, 255, (4, 1, 84, 84)).float(), "ram": torch.rand(4, 9)}
    with FeatureWatch(multi) as w, torch.no_grad():
        multi.extract_features(obs, multi.features_extractor)
    assert w._n == 4
    with torch.no_grad():
        multi.extract_features(obs, multi.features_extractor)
    assert w._n == 4  # the hook is gone once the block ends
