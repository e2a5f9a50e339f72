"""A uniformly random policy on an experiment's evaluation protocol: the floor every learner must beat.

    .venv/bin/python scripts/random_policy.py configs/experiments/boxing_ppo.yaml --episodes 20 [--json]

Plays the experiment's eval env (same states, same env seed, sticky actions included) with actions drawn
uniformly from its action space, and prints the same means `retrodojo evaluate` prints. ``--env-seed N``
plays the fresh episodes that `retrodojo evaluate RUN --seed N` plays.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


class RandomPolicy:
    """Uniform random actions for a batch of observations (the :class:`agents.base.Policy` protocol)."""

    def __init__(self, action_space, seed: int = 0):
        self.space = action_space
        self.space.seed(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        """One random action per observation in the batch."""
        n = len(observation["ram"] if isinstance(observation, dict) else observation)
        return np.array([self.space.sample() for _ in range(n)]), None


def main() -> None:
    """Evaluate the random policy and print (or --json) the means."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="the random actions' seed")
    ap.add_argument("--env-seed", type=int, help="the env's seed, as `retrodojo evaluate --seed`: fresh episodes "
                                                 "(default: the fixed seed of the evaluations in training)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from experiments.evaluate import Evaluator
    from experiments.spec import load_spec

    spec = load_spec(args.experiment)
    ev = Evaluator(spec.env_spec(), args.episodes, spec.eval_states(), local=True, seed=args.env_seed)
    try:
        venv = ev._env()
        result = ev.run(RandomPolicy(venv.action_space, args.seed))
    finally:
        ev.close()
    returns = [e["r"] for e in result["episodes"]]
    # the game and states say which task this is the baseline of (`retrodojo compare --baseline random=FILE`)
    out = {"experiment": spec.name, "game": spec.game, "state": spec.state, "states": spec.states,
           "episodes": args.episodes, "env_seed": args.env_seed, "mean": result["mean"],
           "return_std": float(np.std(returns)), "returns": returns}
    print(json.dumps(out, indent=2) if args.json else
          f"{spec.name}: random policy over {args.episodes} episodes: " +
          ", ".join(f"{k} {v:.3g}" for k, v in result["mean"].items()) + f" (return std {np.std(returns):.3g})")


if __name__ == "__main__":
    main()
