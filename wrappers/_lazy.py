"""Lazy re-exports for the packages' ``__init__``: the public API importable from the package, each name
imported on first use (so ``retrodojo roms`` does not pay for torch or OpenCV)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], object]]:
    """``(__all__, __getattr__)`` for a package whose names live in the modules ``exports`` maps them to."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(exports), __getattr__
