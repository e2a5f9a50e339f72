"""User errors, and reading the files users hand over without ever showing them a traceback.

Every error a user can fix (a broken YAML, an unknown game, a missing ROM, a corrupt checkpoint) is a
:class:`UserError`: the CLI prints its message as one paragraph and exits with status 2. The classes of
each layer (``RomError``, ``ProfileError``, ``AgentError``, ``SpecError``) derive from it, so the CLI needs
to know only this one.

Text files are data from anywhere (a shared run folder, a downloaded experiment), so every YAML and JSON
document is bounded before anything walks it: :func:`load_yaml` refuses a document whose aliases would
expand past :data:`MAX_NODES` values or :data:`MAX_DEPTH` levels (the "billion laughs" pattern: 1 KB of
nested aliases is gigabytes once expanded), and :func:`read_json_file` bounds the depth too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

#: Text files a user names (experiments, profiles, NEAT configs, run metadata) are small; anything larger
#: is not one of them, and reading it whole would only waste memory.
MAX_TEXT_BYTES = 4 * 1024 * 1024
#: YAML files (experiments, profiles, a run's config.yaml) are a few KB; parsing 256 KB takes ~0.2 s.
MAX_YAML_BYTES = 256 * 1024
#: Values in one document once its aliases are expanded, and its nesting depth: far above any real file.
MAX_NODES = 100_000
MAX_DEPTH = 64

#: libyaml's parser when the wheel has it: 4x faster, and it bounds nesting itself instead of recursing.
_BaseYamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UserError(Exception):
    """Bad input a user can fix; the message says what is wrong and how to fix it."""


class HostileDocumentError(ValueError):
    """A YAML or JSON document too large, too deep or too alias-heavy to be one of retrodojo's files."""


class YamlLoader(_BaseYamlLoader):
    """Safe YAML loader (no Python objects) that also reads YAML 1.2 floats such as ``1e6`` and ``3e-4``."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def expanded_size(root) -> tuple[int, int]:
    """(values, depth) of a composed YAML node graph once every alias is expanded; linear in the graph.

    Raises:
        HostileDocumentError: an alias refers to its own ancestor (an infinite document).
    """
    memo: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = [memo[id(c)] for c in _children(node)]
            # capped: the sizes of a hostile graph grow exponentially, the caps keep them small ints
            memo[key] = (min(1 + sum(k[0] for k in kids), 10 * MAX_NODES),
                         min(1 + max((k[1] for k in kids), default=0), 10 * MAX_DEPTH))
            open_.discard(key)
            continue
        if key in memo:
            continue
        if key in open_:  # pushed after its ancestor opened: the alias points back up the tree
            raise HostileDocumentError("an alias refers to a value that contains it (an endless document)")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in memo)
    return memo[id(root)]


def load_yaml(text: str, loader: type = YamlLoader) -> Any:
    """Parse YAML safely and within bounds; what would expand past the bounds is refused before it is built.

    Raises:
        HostileDocumentError: larger than :data:`MAX_YAML_BYTES`, or more than :data:`MAX_NODES` values or
            :data:`MAX_DEPTH` levels once aliases are expanded.
        yaml.YAMLError, ValueError, RecursionError: as ``yaml.load`` (a syntax error, a bad date).
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_YAML_BYTES:
        raise HostileDocumentError(f"{size:,} bytes is too large for a YAML settings file (at most "
                                   f"{MAX_YAML_BYTES:,})")
    parser = loader(text)
    try:
        node = parser.get_single_node()
        if node is None:
            return None
        values, depth = expanded_size(node)
        if values > MAX_NODES:
            raise HostileDocumentError(f"its aliases expand to more than {MAX_NODES:,} values (the 'billion "
                                       "laughs' pattern); write the values out instead of nesting aliases")
        if depth > MAX_DEPTH:
            raise HostileDocumentError(f"it nests more than {MAX_DEPTH} levels deep")
        return parser.construct_document(node)
    finally:
        parser.dispose()


def json_depth_problem(data: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """Why a parsed JSON document is too deep to be one of retrodojo's files, or None."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"it nests more than {max_depth} levels deep"
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


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
    return parse_json(text, path, what, fix, error)


def parse_json(text: str | bytes, path: str | Path, what: str, fix: str,
               error: Callable[[str], Exception] = UserError) -> Any:
    """Parse JSON text read from ``path``, bounded in depth; failures become ``error``."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise error(f"{path} is not valid JSON ({e}), so it is not a readable {what}. {fix}") from None
    problem = json_depth_problem(data)
    if problem:
        raise error(f"{path} is not a readable {what}: {problem}. {fix}")
    return data


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write a file by renaming a complete temporary file beside it into place: a reader (another process, or
    this one after a kill) sees the old file or the new one, never half of one."""
    import os
    import threading

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(), not mkstemp: the umask's mode, not 0600; a name of its own for each process and thread
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
