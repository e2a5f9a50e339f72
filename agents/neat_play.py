"""A genome playing an env: the part of NEAT that both the agent (its champion's policy) and the workers
(every genome's fitness) need, kept here so that neither has to import the other."""

from __future__ import annotations

from collections.abc import Sequence

import neat
import numpy as np

from agents.neat_network import CompiledNetwork


class Actor:
    """A genome's network playing one env: observation in, action out.

    Discrete action spaces take the argmax of the outputs; button spaces press each button whose output
    exceeds 0.5 (neat-python's usual sigmoid outputs). With ``last_action`` the previous action is appended
    to the inputs (one-hot, or the buttons pressed), zeros at an episode's start. Why: SMB jumps on a press
    of A, not while it is held; a feed-forward network facing a still picture (Mario against a step) gives
    the same output every step, so it can never release A and press it again.
    """

    def __init__(self, genome, config: neat.Config, discrete: bool, scale: float, last_action: bool = False):
        self.net = CompiledNetwork.create(genome, config)
        self.discrete = discrete
        self.scale = scale
        self.last = np.zeros(config.genome_config.num_outputs) if last_action else None

    def reset(self, last=None) -> None:
        """Start an episode: clear the network's state and the remembered action, or remember ``last`` (the
        action taken just before a state cut mid-episode: starting there, the network sees what it saw)."""
        self.net.reset()
        if self.last is not None:
            self.last[:] = 0.0
            if last is not None and self.discrete:
                self.last[int(last)] = 1.0
            elif last is not None:
                self.last[:] = np.asarray(last, float).ravel()[: len(self.last)] > 0.5

    def __call__(self, obs: np.ndarray):
        """The action for one observation."""
        x = np.asarray(obs, np.float64).ravel() * self.scale
        if self.last is not None:
            x = np.concatenate([x, self.last])
        out = self.net.activate(x)
        if self.discrete:
            action = int(np.argmax(out))
            if self.last is not None:
                self.last[:] = 0.0
                self.last[action] = 1.0
            return action
        pressed = (out > 0.5).astype(np.float32)
        if self.last is not None:
            self.last[:] = pressed
        return pressed


def play_genome(genome, env, config, discrete: bool, scale: float, last_action: bool = False,
                episodes: int | Sequence[int] = 1,
                starts: tuple[dict[str, bytes], dict[str, float], dict[str, float]] | None = None
                ) -> tuple[float, list[dict]]:
    """Play ``episodes`` episodes; returns (mean shaped return, the ``info["episode"]`` dicts).

    ``episodes`` may instead be env seeds, one episode reset with each (``agent.episode_seeds``): every genome
    then meets the same sticky-action and no-op draws, as long as it plays the same actions.

    With ``starts`` (extra states by name, weights by name, offsets by name, and the action taken just before
    each state was cut), the genome plays ``episodes`` from every weighted start instead, and its fitness is
    the weighted mean over the starts of its mean return from each plus that start's offset (what the source
    episode had earned up to it, so every start scores on the scale of a whole episode): every genome of a
    generation meets the same starts, so its fitness is a fact about it, not about a draw.
    """
    if starts is None:
        env.get_wrapper_attr("set_pool")(None)  # a worker's env keeps no states of an earlier pool
        return _play(genome, env, config, discrete, scale, last_action, episodes, None)
    extra, weights, offsets, actions = starts
    env.get_wrapper_attr("set_pool")(extra, None)
    total, eps = 0.0, []
    for name, weight in weights.items():
        fitness, some = _play(genome, env, config, discrete, scale, last_action, episodes, name, actions.get(name))
        total += weight * (fitness + offsets.get(name, 0.0))
        eps += some
    return total / sum(weights.values()), eps


def _play(genome, env, config, discrete, scale, last_action, episodes, state, first=None
          ) -> tuple[float, list[dict]]:
    actor = Actor(genome, config, discrete, scale, last_action)
    eps = []
    for seed in [None] * episodes if isinstance(episodes, int) else episodes:
        obs, _ = env.reset(seed=seed, options={"state": state} if state else None)
        actor.reset(first)
        while True:
            obs, _r, terminated, truncated, info = env.step(actor(obs))
            if terminated or truncated:
                eps.append(info["episode"])
                break
    return float(np.mean([e["r"] for e in eps])), eps
