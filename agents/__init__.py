"""Learners behind one interface: NEAT, PPO, A2C and their LSTM variants.

The public API, importable from here (each name is imported on first use: torch only when an SB3 agent
is)::

    from agents import create, load
    agent = load("runs/smb_ppo/ppo-s1-.../final")
    actions, state = agent.policy().predict(obs)
"""

from __future__ import annotations

from wrappers._lazy import lazy_exports

_EXPORTS = {
    "Agent": "agents.base", "Policy": "agents.base", "RunContext": "agents.base", "AgentError": "agents.base",
    "ALGOS": "agents.base", "create": "agents.base", "load": "agents.base", "agent_class": "agents.base",
    "Schedule": "agents.base",
}
__all__, __getattr__ = lazy_exports("agents", _EXPORTS)
