"""User-facing errors: each says what is wrong and how to fix it, in one paragraph, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input a user can fix (a broken YAML, an unknown game, a missing ROM, a corrupt checkpoint)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception class the CLI reports as a plain message (exit code 2) instead of a traceback."""
    from agents.base import AgentError
    from wrappers.profile import ProfileError
    from wrappers.roms import RomError

    return (UserError, RomError, ProfileError, AgentError)
