"""The base of every settings model, below both the env settings and the game profiles.

It lives on its own so that :mod:`wrappers.profile` and :mod:`wrappers.settings` both build on it without
importing each other: the settings check specs against profiles, so profiles must not need the settings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of every settings model: unknown keys are errors, and defaults are validated like input.

    ``validate_default`` turns defaults written as plain data (a schedule mapping) into typed models too.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)
