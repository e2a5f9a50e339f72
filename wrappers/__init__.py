"""The game side of retrodojo: ROM store, env factory, wrappers and game profiles.

The public API, importable from here (each name is imported on first use, so ``retrodojo roms`` does
not pay for OpenCV or the vec env)::

    from wrappers import EnvSpec, make_env
    env = make_env(EnvSpec(game="SuperMarioBros-Nes", state="Level1-1", profile="smb"), seed=0)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EnvSettings": "wrappers.settings", "EnvSpec": "wrappers.settings", "EnvError": "wrappers.settings",
    "env_problems": "wrappers.settings", "make_env": "wrappers.factory", "make_vec_env": "wrappers.factory",
    "env_thunk": "wrappers.factory", "RetroVecEnv": "wrappers.vec_env", "EnvWorkerError": "wrappers.vec_env",
    "Profile": "wrappers.profile", "ProfileError": "wrappers.profile", "load_profile": "wrappers.profile",
    "RomError": "wrappers.roms", "UserError": "wrappers.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wrappers' has no attribute {name!r}")
