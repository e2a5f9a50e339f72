"""The file formats of saved agents and checkpoints: data only, never code (see docs/formats.md).

A saved agent or run folder is something users share, so nothing retrodojo loads from one may reach an
unpickler: structure is JSON (``agent.json``, ``model.json``, ``rng.json``, NEAT's ``champion.json`` and
``population.json.gz``) and tensors are safetensors (``policy.safetensors``, ``optimizer.safetensors``), a
JSON header followed by raw little-endian numbers. Every reader checks what it reads (types, ranges,
shapes) and turns any failure into one :class:`AgentError` paragraph.

Folders written by earlier versions hold pickles (``champion.pkl``, ``population.pkl.gz``, ``rng.pkl``,
SB3's ``model.zip``); they are refused with :class:`LegacyPickleError` unless the user passes
``--trust-pickles`` (then :mod:`agents.legacy` reads them), and ``retrodojo convert`` rewrites them.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from agents.errors import AgentError
from wrappers.errors import MAX_TEXT_BYTES, parse_json, read_json_file

#: Version of every format this module writes; a reader refuses a newer one (written by a newer retrodojo).
FORMAT_VERSION = 1
RNG_FILE = "rng.json"
#: Pickled files of earlier versions -> the safe file that replaces each.
LEGACY_FILES = {"champion.pkl": "champion.json", "population.pkl.gz": "population.json.gz",
                "rng.pkl": RNG_FILE, "model.zip": "policy.safetensors"}
#: A NEAT population is a few MB as JSON (100 genomes of the smb config: 1 MB); a gzip bomb stops here.
MAX_JSON_GZ_BYTES = 128 * 1024 * 1024


class LegacyPickleError(AgentError):
    """A folder saved by an earlier retrodojo holds pickles, which are not loaded without --trust-pickles."""


def legacy_files(folder: Path) -> list[str]:
    """The pickled files of an earlier version in ``folder`` that no safe file has replaced; none when its
    agent.json names a format (this version wrote it: pickles beside its files are never read)."""
    folder = Path(folder)
    old = [name for name, new in LEGACY_FILES.items() if (folder / name).is_file() and not (folder / new).is_file()]
    if old:
        try:
            meta = read_json(folder / "agent.json", "saved agent's agent.json")
        except AgentError:
            return old
        if isinstance(meta, dict) and is_int(meta.get("format")):
            return []
    return old


def legacy_refusal(folder: Path, files: Iterable[str]) -> LegacyPickleError:
    """The one paragraph that refuses pickles: why, and how to load them anyway."""
    folder = Path(folder)
    run = folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent \
        if (folder.parent / "meta.json").is_file() else folder
    return LegacyPickleError(
        f"{folder} was saved by an earlier retrodojo as Python pickles ({', '.join(files)}), and retrodojo no "
        "longer loads pickles by default: unpickling runs whatever code the file names, so a crafted file in a "
        "run or agent folder you downloaded would run on your machine the moment you evaluate or resume it. "
        "If you trust where this folder came from (you trained it yourself), add --trust-pickles to this "
        f"command, or convert it once with `retrodojo convert {run} --trust-pickles`; afterwards it is in the "
        "safe formats (JSON and safetensors) and loads without the flag.")


def check_version(data: Any, path: Path, kind: str) -> dict:
    """``data`` is a mapping whose ``format`` is ``kind`` and whose ``version`` this reader knows."""
    if not isinstance(data, dict) or data.get("format") != kind:
        raise AgentError(f"{path} is not a retrodojo {kind} file (its 'format' is not '{kind}').")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise AgentError(f"{path} has no valid format version.")
    if version > FORMAT_VERSION:
        raise AgentError(f"{path} is format version {version}, newer than this retrodojo reads "
                         f"({FORMAT_VERSION}); update retrodojo to load it.")
    return data


# --------------------------------------------------------------------------- JSON


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not data")


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` (NumPy scalars as numbers) as JSON; raises TypeError for anything that is not data."""
    Path(path).write_text(json.dumps(data, indent=indent, default=_jsonable))


def read_json(path: Path, what: str, fix: str = "") -> Any:
    """A JSON file of a saved agent, bounded in size and depth; every failure is an :class:`AgentError`."""
    return read_json_file(path, what, fix, error=AgentError, max_bytes=MAX_TEXT_BYTES)


def write_json_gz(path: Path, data: Any) -> None:
    """Compact JSON, gzip-compressed (level 3: most of the size win for a tenth of level 9's time)."""
    raw = json.dumps(data, separators=(",", ":"), default=_jsonable).encode()
    with gzip.open(path, "wb", compresslevel=3) as f:
        f.write(raw)


def read_json_gz(path: Path, what: str, fix: str = "", limit: int = MAX_JSON_GZ_BYTES) -> Any:
    """A gzip-compressed JSON file, decompressed to at most ``limit`` bytes (a gzip bomb stops there)."""
    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such {what}. {fix}")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise AgentError(f"{path} is not a readable {what} (damaged gzip: {e}). {fix}") from None
    if len(raw) > limit:
        raise AgentError(f"{path} unpacks to more than {limit:,} bytes, too large to be a {what}. {fix}")
    return parse_json(raw, path, what, fix, error=AgentError)


class Fields:
    """Typed access to one parsed JSON mapping; a wrong or missing value is an :class:`AgentError` naming the
    file and the key (``Fields(data, path).int("frames", lo=0)``)."""

    def __init__(self, data: Any, path: Path, where: str = ""):
        self.path, self.where = path, where
        if not isinstance(data, dict):
            self.fail("", "is not a mapping")
        self.data = data

    def fail(self, key: str, problem: str):
        """Raise the error for ``key``."""
        name = ".".join(p for p in (self.where, key) if p) or "the top level"
        raise AgentError(f"{self.path} is damaged: {name} {problem}.")

    def get(self, key: str, check: Callable[[Any], bool], expected: str, optional: bool = False) -> Any:
        """``data[key]`` if ``check`` accepts it (None too when ``optional``)."""
        if key not in self.data:
            if optional:
                return None
            self.fail(key, "is missing")
        value = self.data[key]
        if (value is None and optional) or check(value):
            return value
        self.fail(key, f"is not {expected} (got {str(value)[:40]!r})")

    def int(self, key: str, lo: int | None = None, optional: bool = False) -> int | None:
        """An integer (not a bool), at least ``lo``."""
        return self.get(key, lambda v: is_int(v) and (lo is None or v >= lo),
                        "an integer" + (f" >= {lo}" if lo is not None else ""), optional)

    def float(self, key: str, finite: bool = True, optional: bool = False) -> float | None:
        """A number (finite unless told otherwise), as a float."""
        value = self.get(key, lambda v: is_number(v) and (not finite or math.isfinite(v)),
                         "a finite number" if finite else "a number", optional)
        return None if value is None else float(value)

    def bool(self, key: str) -> bool:
        """true or false."""
        return self.get(key, lambda v: isinstance(v, bool), "true or false")

    def str(self, key: str, optional: bool = False) -> str | None:
        """A string."""
        return self.get(key, lambda v: isinstance(v, str), "a string", optional)

    def list(self, key: str, max_len: int | None = None) -> list:
        """A list, at most ``max_len`` long."""
        return self.get(key, lambda v: isinstance(v, list) and (max_len is None or len(v) <= max_len),
                        "a list" + (f" of at most {max_len:,} items" if max_len else ""))

    def sub(self, key: str) -> Fields:
        """The mapping under ``key``."""
        return Fields(self.get(key, lambda v: isinstance(v, dict), "a mapping"), self.path,
                      ".".join(p for p in (self.where, key) if p))


def is_int(v: Any) -> bool:
    """An int, bools excluded (JSON true is no count)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """An int or float, bools excluded."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --------------------------------------------------------------------------- tensors


def save_tensors(path: Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Write named torch tensors as safetensors (contiguous copies; shared storage must be removed first)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)


def load_tensors(path: Path, what: str) -> dict:
    """Named torch tensors from a safetensors file; a missing, truncated or foreign file is an AgentError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such {what}.")
    try:
        out = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                out[key] = f.get_tensor(key)
        return out
    except Exception as e:  # the reader raises SafetensorError, OSError or ValueError for damaged files
        raise AgentError(f"{path} is not a readable {what} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else 'damaged'}).") from None


# --------------------------------------------------------------------------- random number generators


def rng_state() -> dict:
    """Python's, NumPy's and torch's global generator states as JSON data."""
    import torch

    version, internal, gauss_next = random.getstate()
    name, key, pos, has_gauss, cached = np.random.get_state()
    state = {"format": "retrodojo-rng", "version": FORMAT_VERSION,
             "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
             "numpy": {"bit_generator": name, "key": key.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                       "cached_gaussian": float(cached)},
             "torch": torch.get_rng_state().numpy().tobytes().hex()}
    if torch.cuda.is_available():
        state["cuda"] = [s.numpy().tobytes().hex() for s in torch.cuda.get_rng_state_all()]
    return state


def save_rng(folder: Path) -> None:
    """Write :func:`rng_state` into ``folder/rng.json``."""
    write_json(Path(folder) / RNG_FILE, rng_state(), indent=None)


def _words(values: Any, n: int) -> bool:
    return isinstance(values, list) and len(values) == n and all(is_int(v) and 0 <= v < 2**32 for v in values)


def restore_rng(folder: Path) -> bool:
    """Set the global generators from ``folder/rng.json``; False when the folder has none (older runs).

    Every field is checked before any generator is touched, so a damaged file changes nothing.
    """
    import torch

    path = Path(folder) / RNG_FILE
    if not path.is_file():
        return False
    data = check_version(read_json(path, "random-generator state"), path, "retrodojo-rng")
    top = Fields(data, path)
    py, npy = top.sub("python"), top.sub("numpy")
    internal = py.get("internal", lambda v: _words(v, 625) and v[-1] <= 624, "625 state words")
    gauss = py.float("gauss_next", optional=True)
    key = npy.get("key", lambda v: _words(v, 624), "624 state words")
    if npy.str("bit_generator") != "MT19937":
        npy.fail("bit_generator", "is not MT19937")
    pos, has_gauss = npy.int("pos", lo=0), npy.int("has_gauss", lo=0)
    cached = npy.float("cached_gaussian")
    py_version = py.int("version")
    hex_state = top.str("torch")
    try:
        torch_state = torch.frombuffer(bytearray.fromhex(hex_state), dtype=torch.uint8)
        cuda = [torch.frombuffer(bytearray.fromhex(s), dtype=torch.uint8) for s in data.get("cuda") or []]
        np_state = ("MT19937", np.array(key, dtype=np.uint32), pos, has_gauss, cached)
        before = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            random.setstate((py_version, tuple(internal), gauss))
            np.random.set_state(np_state)
            torch.set_rng_state(torch_state)
        except BaseException:
            random.setstate(before[0])
            np.random.set_state(before[1])
            torch.set_rng_state(before[2])
            raise
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    except (ValueError, TypeError, RuntimeError) as e:
        raise AgentError(f"{path} is damaged: not a generator state ({type(e).__name__}: {e}).") from None
    return True


def replace_folder(tmp: Path, target: Path) -> None:
    """Put the folder ``tmp`` where ``target`` is, the old one removed only once the new one is in place."""
    import shutil

    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
