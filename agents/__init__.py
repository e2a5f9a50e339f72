"""Learners behind one interface: NEAT, PPO, A2C and their LSTM variants.

The public API, importable from here (each name is imported on first use: torch only when an SB3 agent
is)::

    from agents import create, load
    agent = load("runs/smb_ppo/ppo-s1-.../final")
    actions, state = agent.policy().predict(obs)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Agent": "agents.base", "Policy": "agents.base", "RunContext": "agents.base", "AgentError": "agents.base",
    "ALGOS": "agents.base", "create": "agents.base", "load": "agents.base", "agent_class": "agents.base",
    "Schedule": "agents.base",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
