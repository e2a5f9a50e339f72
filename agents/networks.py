"""Network pieces for SB3 policies."""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import NatureCNN


class ChannelsLastNatureCNN(NatureCNN):
    """SB3's ``NatureCNN`` computing in channels-last (NHWC) memory format.

    Same layers, parameters and ``state_dict`` keys as ``NatureCNN``, the same outputs up to float rounding;
    oneDNN's NHWC convolutions train it ~25-30% faster on a CPU (batch 32 and 256, 4x84x84 frames), and NHWC
    is what GPU tensor cores prefer too.
    """

    def __init__(self, observation_space: gym.Space, features_dim: int = 512, normalized_image: bool = False):
        super().__init__(observation_space, features_dim, normalized_image)
        self._nhwc = False

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Features of a (N, C, H, W) batch."""
        if not self._nhwc:
            # Converted on first use, not in __init__: SB3's orthogonal init views weights as contiguous.
            # The parameters stay the same objects, so an optimizer built on them keeps working.
            self.cnn.to(memory_format=torch.channels_last)
            self._nhwc = True
        return self.linear(self.cnn(observations.contiguous(memory_format=torch.channels_last)))
