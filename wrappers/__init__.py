"""The game side of retrodojo: ROM store, env factory, wrappers and game profiles.

The public API, importable from here (each name is imported on first use, so ``retrodojo roms`` does
not pay for OpenCV or the vec env)::

    from wrappers import EnvSpec, make_env
    env = make_env(EnvSpec(game="SuperMarioBros-Nes", state="Level1-1", profile="smb"), seed=0)
"""

from __future__ import annotations

from wrappers._lazy import lazy_exports

_EXPORTS = {
    "EnvSettings": "wrappers.settings", "EnvSpec": "wrappers.settings", "EnvError": "wrappers.settings",
    "env_problems": "wrappers.settings", "make_env": "wrappers.factory", "make_vec_env": "wrappers.factory",
    "env_thunk": "wrappers.factory", "RetroVecEnv": "wrappers.vec_env", "EnvWorkerError": "wrappers.vec_env",
    "Profile": "wrappers.profile", "ProfileError": "wrappers.profile", "load_profile": "wrappers.profile",
    "RomError": "wrappers.roms", "UserError": "wrappers.errors",
}
__all__, __getattr__ = lazy_exports("wrappers", _EXPORTS)
