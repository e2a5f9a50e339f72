"""User-facing errors: each says what is wrong and how to fix it, in one paragraph, without a traceback.

:class:`UserError` is declared in :mod:`wrappers.errors` (the lowest layer) so that ROM, profile, agent and
experiment errors all derive from it; it is re-exported here for the orchestration code.
"""

from __future__ import annotations

from wrappers.errors import UserError

__all__ = ["UserError", "user_error_types"]


def user_error_types() -> tuple[type[BaseException], ...]:
    """Every exception class the CLI reports as a plain message (exit code 2) instead of a traceback."""
    return (UserError,)
