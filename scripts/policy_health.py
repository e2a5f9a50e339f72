"""Is a saved pixel policy's CNN still reading the screen, and are its LSTMs saturated? Plays real episodes with
it and prints what its network does on them.

The CNN's figures are the ones training logs at each evaluation (``network/cnn_units_active`` and
``network/cnn_spread``, agents/feature_watch.py): few units ever firing, or units that give the same value
for every screen, mean a dead or collapsed CNN. For a recurrent policy it also reports the LSTMs' gates: a
gate pre-activation beyond +-5 is a sigmoid at 0.007 or 0.993 (a tanh at +-0.9999), and an LSTM whose gates
mostly sit there gives one output whatever it sees (explained variance ~0 in TensorBoard). Usage (the
experiment names the env the policy was trained on):

    .venv/bin/python scripts/policy_health.py RUN/final boxing_ppo_lstm_pixram [--steps 300] [--envs 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def health_report(path: str, experiment: str, steps: int = 300, n_envs: int = 4) -> dict:
    """Play ``steps`` decisions in ``n_envs`` envs with the policy at ``path`` (sampled actions) and return
    its CNN's ``network/*`` figures, its features' largest and mean value and, per LSTM, the share of gate
    pre-activations beyond +-5, their mean size, the largest cell state and how much the LSTM's output moves
    over time."""
    import numpy as np
    import torch

    from agents.base import load
    from agents.feature_watch import FeatureWatch
    from experiments.spec import load_spec
    from wrappers.factory import make_vec_env

    torch.set_num_threads(1)
    model = load(path, device="cpu").policy()
    policy = getattr(model, "policy", None)
    watch = FeatureWatch(model)
    recurrent = getattr(policy, "lstm_actor", None) is not None
    if watch.cnn is None and not recurrent:
        raise SystemExit(f"{path} holds neither a CNN nor an LSTM (an MLP or a NEAT genome): nothing to look at.")
    venv = make_vec_env(load_spec(experiment).env_spec(), n_envs, seed=7)
    try:
        obs, state, starts, feats = venv.reset(), None, np.ones(n_envs, dtype=bool), []
        with watch, torch.no_grad():
            for _ in range(steps):
                # each screen passes the CNN twice here: the figures are the same for a sample seen twice
                feats.append(policy.extract_features(policy.obs_to_tensor(obs)[0], policy.pi_features_extractor))
                if recurrent:
                    action, state = model.predict(obs, state=state, episode_start=starts, deterministic=False)
                else:
                    action, _ = model.predict(obs, deterministic=False)
                obs, _, starts, _ = venv.step(action)
    finally:
        venv.close()
    features = torch.cat(feats)
    out = {**watch.scalars(), "features_max": features.max().item(), "features_mean": features.mean().item()}
    seq = features.view(steps, n_envs, -1)
    with torch.no_grad():
        for name in ("lstm_actor", "lstm_critic"):
            lstm = getattr(policy, name, None)
            if lstm is None:
                continue
            # over the whole sequence without resets: what the gates do, not what the policy played; a gate's
            # pre-activation at t reads the input and the LSTM's own output at t-1 (its first layer)
            output, (_, cell) = lstm(seq)
            before = torch.cat([torch.zeros_like(output[:1]), output[:-1]])
            gates = seq @ lstm.weight_ih_l0.T + before @ lstm.weight_hh_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0
            out[name] = {"saturated": (gates.abs() > 5).float().mean().item(),
                         "gate_absmean": gates.abs().mean().item(), "cell_absmax": cell.abs().max().item(),
                         "output_std_over_time": output.std(0).mean().item()}
    return out


def main() -> None:
    """Command line: print the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policy", help="a saved policy folder (RUN/final, RUN/best or a checkpoint)")
    ap.add_argument("experiment", help="the experiment it was trained with (its env)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--envs", type=int, default=4)
    a = ap.parse_args()
    from agents.errors import AgentError
    from experiments.errors import UserError

    try:
        r = health_report(a.policy, a.experiment, a.steps, a.envs)
    except (AgentError, UserError) as e:
        raise SystemExit(f"error: {e}") from None
    except (ValueError, RuntimeError, AssertionError) as e:  # the env's observations do not fit the policy
        raise SystemExit(f"error: {a.policy} cannot play {a.experiment}'s env ({type(e).__name__}: {e}). Give "
                         "the experiment the policy was trained with (its run's config.yaml names it).") from None
    line = f"{a.policy}: features max {r['features_max']:.3g}, mean {r['features_mean']:.3g}"
    if "network/cnn_units_active" in r:
        line += (f"; CNN units ever active {r['network/cnn_units_active']:.1%}, their spread over screens "
                 f"{r['network/cnn_spread']:.3g}")
    print(line)
    for name in ("lstm_actor", "lstm_critic"):
        if name in r:
            g = r[name]
            print(f"  {name}: gates beyond +-5 {g['saturated']:.1%}, |pre-activation| mean {g['gate_absmean']:.3g}, "
                  f"cell |max| {g['cell_absmax']:.3g}, output's std over time {g['output_std_over_time']:.3g}")


if __name__ == "__main__":
    main()
