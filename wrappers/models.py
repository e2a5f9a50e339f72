"""The base of every settings model, below both the env settings and the game profiles.

It lives on its own so that :mod:`wrappers.profile` and :mod:`wrappers.settings` both build on it without
importing each other: the settings check specs against profiles, so profiles must not need the settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def non_finite_path(value: Any, path: str = "") -> str | None:
    """Where free-form data (lists, mappings) holds a NaN or an infinity: ``''`` for the value itself, a
    dotted path below it, or None when every number is finite."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where
        if isinstance(item, Mapping):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
    return None


class StrictModel(BaseModel):
    """Base of every settings model: unknown keys are errors, defaults are validated like input, and no
    number is NaN or infinite.

    ``validate_default`` turns defaults written as plain data (a schedule mapping) into typed models too.
    ``allow_inf_nan=False`` refuses ``.nan`` and ``.inf`` in float fields when the file is read, before a run
    folder exists (a NaN learning rate otherwise passes and ends in a torch error mid-run); free-form fields
    (``policy_kwargs``) are searched by the validator below.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, (Mapping, list, tuple)):
            where = non_finite_path(value)
            if where is not None:
                raise ValueError(f"{where + ': ' if where else ''}NaN and infinities are not settings; give a "
                                 "finite number")
        return value
