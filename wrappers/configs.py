"""Where configs are found: the user's own folders first, then the ones shipped with retrodojo.

The shipped ``configs/`` folder is installed as the package ``retrodojo_configs`` (package data), so a
plain ``pip install retrodojo`` finds its profiles, NEAT configs and experiments as an editable checkout
does. Users add folders of their own with ``RETRODOJO_CONFIGS`` (``os.pathsep``-separated, each laid out
as ``configs/``: ``games/``, ``neat/``, ``experiments/``); a name found there wins over a shipped one.
Anything that looks like a path (a suffix, or a folder in it) is used as given.

Example:
    >>> resolve("games", "smb").name
    'smb.yaml'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

ENV_VAR = "RETRODOJO_CONFIGS"
SHIPPED_PACKAGE = "retrodojo_configs"

Kind = Literal["games", "neat", "experiments"]
SUFFIX: dict[str, str] = {"games": ".yaml", "neat": ".cfg", "experiments": ".yaml"}


def shipped_dir() -> Path:
    """The folder of the configs shipped with retrodojo (inside the installed package)."""
    from importlib.resources import files

    return Path(str(files(SHIPPED_PACKAGE)))


def search_dirs(kind: Kind) -> list[Path]:
    """Folders searched for configs of ``kind``, first match wins: ``$RETRODOJO_CONFIGS``, then shipped."""
    user = [Path(p).expanduser() / kind for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    return [*user, shipped_dir() / kind]


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is a path (it has a config suffix or a folder) rather than a config name."""
    p = Path(name)
    return p.suffix.lower() in (".yaml", ".yml", ".cfg", ".ini") or p.parent != Path(".")


def resolve(kind: Kind, name: str) -> Path:
    """The file of config ``name`` of ``kind``: a path as given, else the first folder that has it.

    A name found nowhere resolves to where the shipped one would be, so error messages can say where
    they looked.
    """
    if looks_like_path(name):
        return Path(name).expanduser()
    filename = f"{name}{SUFFIX[kind]}"
    dirs = search_dirs(kind)
    for d in dirs:
        if (d / filename).is_file():
            return d / filename
    return dirs[-1] / filename


def available(kind: Kind) -> list[str]:
    """Names of every config of ``kind`` in the searched folders."""
    names = set()
    for d in search_dirs(kind):
        if d.is_dir():
            names.update(p.stem for p in d.glob(f"*{SUFFIX[kind]}"))
    return sorted(names)
