"""User errors, and reading the files users hand over without ever showing them a traceback.

Every error a user can fix (a broken YAML, an unknown game, a missing ROM, a corrupt checkpoint) is a
:class:`UserError`: the CLI prints its message as one paragraph and exits with status 2. The classes of
each layer (``RomError``, ``ProfileError``, ``AgentError``, ``SpecError``) derive from it, so the CLI needs
to know only this one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Text files a user names (experiments, profiles, NEAT configs, run metadata) are small; anything larger
#: is not one of them, and reading it whole would only waste memory.
MAX_TEXT_BYTES = 4 * 1024 * 1024


class UserError(Exception):
    """Bad input a user can fix; the message says what is wrong and how to fix it."""


def read_text_file(path: str | Path, what: str, fix: str, error: Callable[[str], Exception] = UserError,
                   max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Read a UTF-8 text file a user pointed at; every way it can fail becomes ``error(message)``.

    Args:
        path: the file.
        what: what the file should be, for the message ("experiment file", "game profile").
        fix: a sentence saying what to do, appended to every message.
        error: builds the exception to raise from a message (default :class:`UserError`).
        max_bytes: larger files are refused before they are read.

    Example:
        >>> read_text_file("configs/games/smb.yaml", "game profile", "Give a YAML file.")  # doctest: +SKIP
    """
    p = Path(path)
    a_what = f"{'an' if what[:1].lower() in 'aeiou' else 'a'} {what}"
    try:
        if not p.exists():
            raise error(f"{p}: no such {what}. {fix}")
        if p.is_dir():
            raise error(f"{p} is a folder, not {a_what}. {fix}")
        if not p.is_file():  # a FIFO or a device would block or never end
            raise error(f"{p} is not a regular file, so it is not {a_what}. {fix}")
        size = p.stat().st_size
        if size > max_bytes:
            raise error(f"{p} is {size:,} bytes, too large to be {a_what} (at most {max_bytes:,}). {fix}")
        data = p.read_bytes()
    except OSError as e:
        raise error(f"{p}: cannot read this {what} ({e.strerror or e}). {fix}") from None
    if not data.strip():
        raise error(f"{p} is empty; {a_what} was expected. {fix}")
    if b"\x00" in data:
        raise error(f"{p} is a binary file, not {a_what} (it holds NUL bytes). {fix}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{p} is not UTF-8 text (a bad byte at offset {e.start}), so it is not {a_what}. {fix}") from None


def read_json_file(path: str | Path, what: str, fix: str, error: Callable[[str], Exception] = UserError,
                   max_bytes: int = MAX_TEXT_BYTES) -> Any:
    """Read a JSON file a user's run folder holds (meta.json, agent.json); failures become ``error``."""
    text = read_text_file(path, what, fix, error=error, max_bytes=max_bytes)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise error(f"{path} is not valid JSON ({e}), so it is not a readable {what}. {fix}") from None
