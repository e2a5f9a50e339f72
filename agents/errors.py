"""The agents' own error, below every agents module (so :mod:`agents.base` and the file formats it loads
with share it without importing each other)."""

from __future__ import annotations

from wrappers.errors import UserError


class AgentError(UserError):
    """A saved agent cannot be loaded (missing or corrupt files); the message says what to do."""
