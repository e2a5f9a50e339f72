"""ROM store: import, register and list the ROMs stable-retro plays.

ROMs are copyrighted and never shipped with retrodojo. A user's dumps live in a store folder outside
site-packages, laid out as stable-retro custom integrations (``<store>/<Game>-<System>-v0/rom.<ext>``).
Only the ROM comes from the store: stable-retro's own ``data.json``, ``scenario.json`` and savestates are
found under its stock integrations, because custom paths are searched first and fall through to them.

The store is ``$RETRODOJO_HOME/roms`` when ``RETRODOJO_HOME`` is set, else ``<user data dir>/retrodojo/roms``.

Example:
    >>> from wrappers import roms
    >>> roms.register()                     # before any env is made
    >>> roms.import_paths(["~/dumps/"])     # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import importlib.util
import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import stable_retro
import stable_retro.data as rdata

from wrappers.errors import UserError, write_atomic

#: Integration types searched for games: the store first, then contrib, experimental and stable.
INTTYPE = rdata.Integrations.ALL

#: Dumps known to play correctly with stable-retro's integration although their hash differs from its
#: ``rom.sha``. Keys are SHA-1 of the ROM body (iNES header removed), values the integration name.
ALTERNATE_DUMPS: dict[str, tuple[str, str]] = {
    # Super Mario Bros. (World) as shipped in gym-super-mario-bros 7.4.0 (_roms/super-mario-bros.nes);
    # plays Level1-1 and the rest identically with the stock data.json and savestates.
    "0c4992fc08d2278697339d3b48066e7b5f943598": ("SuperMarioBros-Nes-v0", "gym-super-mario-bros dump"),
}

#: Other dumps of integrated games, recognised so that importing one says what it is instead of "unknown".
#: They are not imported: stable-retro's savestates and RAM addresses are only known to hold for the dump
#: its rom.sha names. SHA-1s from the No-Intro Mega Drive DAT (libretro/libretro-database,
#: metadat/no-intro/Sega - Mega Drive - Genesis.dat, 2026.10.07).
OTHER_DUMPS: dict[str, tuple[str, str]] = {
    "8e808ed1f7429f65d9e8a11db2ff1b4e4f96df7c": ("StreetFighterIISpecialChampionEdition-Genesis-v0",
                                                 "Street Fighter II' - Special Champion Edition (USA) (Virtual "
                                                 "Console)"),
    "2a406e2e4743de98785c85322f858abfb8221ae0": ("StreetFighterIISpecialChampionEdition-Genesis-v0",
                                                 "Street Fighter II' - Special Champion Edition (Europe)"),
    "379a7af5768d5badc348e626712af8c6ea1bff76": ("StreetFighterIISpecialChampionEdition-Genesis-v0",
                                                 "Street Fighter II' - Special Champion Edition (Europe) (Virtual "
                                                 "Console)"),
    "0d624f1a34014ead022dd8d5df1134a88eca69bb": ("StreetFighterIISpecialChampionEdition-Genesis-v0",
                                                 "Street Fighter II' Plus - Champion Edition (Japan, Korea)"),
    "9d507da08660ef27e45f54a214bea5ae9ee4cd3a": ("StreetFighterIISpecialChampionEdition-Genesis-v0",
                                                 "Street Fighter II' Plus - Champion Edition (Japan) (Virtual "
                                                 "Console)"),
}
#: What the dump stable-retro's rom.sha names is called, where we know it (the same DAT).
EXPECTED_DUMPS: dict[str, str] = {
    "StreetFighterIISpecialChampionEdition-Genesis-v0": "Street Fighter II' - Special Champion Edition (USA), "
                                                        "No-Intro, SHA-1 a5aad1d108046d9388e33247610dafb4c6516e0b",
}

SOURCE_FILE = "source.json"
_WHOLE = "\x00whole"  # marks a zip tried as one ROM (an arcade set) before its members
_MAX_ROM_BYTES = 64 * 1024 * 1024

_registered: str | None = None


class RomError(UserError):
    """A ROM problem a user can fix (missing ROM, unknown game, unreadable or hostile file)."""


def home() -> Path:
    """Return retrodojo's data folder (``$RETRODOJO_HOME`` or the platform's user data dir)."""
    env = os.environ.get("RETRODOJO_HOME")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("retrodojo", appauthor=False))


def store_dir() -> Path:
    """Return the ROM store folder (created on demand)."""
    return home() / "roms"


def register() -> Path:
    """Register the store with stable-retro as a custom integration path; idempotent.

    Must run before any env is made. Re-registering after ``RETRODOJO_HOME`` changed replaces the old path,
    so tests and users switching stores never see a stale one.
    """
    global _registered
    store = store_dir()
    store.mkdir(parents=True, exist_ok=True)
    if _registered != str(store):
        rdata.Integrations._init()
        paths = rdata.Integrations.CUSTOM_PATHS
        if _registered in paths:
            paths.remove(_registered)
        rdata.Integrations.add_custom_path(str(store))
        _registered = str(store)
    return store


def canonical_game(name: str) -> str:
    """Return stable-retro's integration name for ``name`` (``SuperMarioBros-Nes`` -> ``...-Nes-v0``).

    Raises:
        RomError: the game is not integrated in stable-retro; the message suggests the nearest names.
    """
    register()
    games = all_games()
    if name in games:
        return name
    if f"{name}-v0" in games:
        return f"{name}-v0"
    short = sorted({short_name(g) for g in games})
    near = difflib.get_close_matches(short_name(name), short, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    raise RomError(
        f"Unknown game '{name}': stable-retro has no integration of that name.{hint} "
        "Run `retrodojo roms list --all` to see every integrated game."
    )


def short_name(game: str) -> str:
    """The game name without stable-retro 1.0's ``-v0`` folder suffix (``SuperMarioBros-Nes``)."""
    return game[:-3] if game.endswith("-v0") else game


def all_games() -> list[str]:
    """Return every integrated game name stable-retro knows (with or without a ROM)."""
    return list(_all_games())


@functools.lru_cache(maxsize=1)
def _all_games() -> tuple[str, ...]:
    # The store only adds ROMs to existing integrations, so the set of games never changes: list it once.
    return tuple(rdata.list_games(INTTYPE))


def rom_path(game: str) -> Path | None:
    """Return the ROM file stable-retro will load for ``game``, or None when there is none."""
    return _rom_path(canonical_game(game))


def _rom_path(game: str) -> Path | None:
    register()
    try:
        return Path(rdata.get_romfile_path(game, INTTYPE))
    except FileNotFoundError:
        return None


def require_rom(game: str) -> Path:
    """Return the ROM path for ``game`` or raise a RomError saying how to import it."""
    game = canonical_game(game)
    path = rom_path(game)
    if path is None:
        which = f" ({EXPECTED_DUMPS[game]})" if game in EXPECTED_DUMPS else ""
        raise RomError(
            f"No ROM for {short_name(game)}. ROMs are copyrighted and not shipped with retrodojo: import your own "
            f"dump{which} with `retrodojo roms import PATH` (a file, a folder or a zip; it is matched by SHA-1 "
            f"against stable-retro's rom.sha). Games playable now: `retrodojo roms list`."
        )
    return path


def states(game: str) -> list[str]:
    """Return the savestate names of ``game`` (without ``.state``)."""
    register()
    return rdata.list_states(canonical_game(game), INTTYPE)


def rom_sha1(game: str) -> str | None:
    """Return the SHA-1 of the ROM body stable-retro loads (iNES header removed), or None."""
    path = rom_path(game)
    if path is None:
        return None
    return _candidate_hashes(path.name, path.read_bytes())[0][0]


# --------------------------------------------------------------------------- matching


@dataclass
class Match:
    """A ROM file matched to an integration."""

    game: str
    ext: str
    sha1: str
    data: bytes = field(repr=False)
    note: str = ""


def known_hashes() -> dict[str, tuple[str, str]]:
    """Map ROM SHA-1 -> (integration name, canonical extension) over every integration, plus alternates."""
    table = {sha: (game, ext) for sha, (game, ext, _path) in rdata.get_known_hashes().items()}
    for sha, (game, _note) in ALTERNATE_DUMPS.items():
        table[sha] = (game, _ext_for(game))
    return table


def _ext_for(game: str) -> str:
    system = short_name(game).rsplit("-", 1)[-1]
    return "." + rdata.EMU_INFO[system]["ext"][0]


def _deinterleave_smd(body: bytes) -> bytes:
    """Turn a Super Magic Drive dump (16 KiB blocks, odd bytes first) into a linear Genesis ROM."""
    out = bytearray(len(body))
    for start in range(0, len(body), 0x4000):
        block = body[start : start + 0x4000]
        half = len(block) // 2
        out[start + 1 : start + len(block) : 2] = block[:half]
        out[start : start + len(block) : 2] = block[half:]
    return bytes(out)


def _candidate_hashes(name: str, raw: bytes) -> list[tuple[str, bytes]]:
    """Return (sha1, bytes to store) for each way stable-retro could have hashed this dump.

    stable-retro hashes iNES ROMs without their 16-byte header but stores the whole file, and expects
    Genesis ROMs linear (not SMD-interleaved) and SNES ROMs without a 512-byte copier header.
    """
    out = []
    if raw[:4] == b"NES\x1a":
        out.append((hashlib.sha1(raw[16:]).hexdigest(), raw))
    if name.lower().endswith(".smd") or (len(raw) % 0x4000 == 512 and raw[8:10] == b"\xaa\xbb"):
        linear = _deinterleave_smd(raw[512:])
        out.append((hashlib.sha1(linear).hexdigest(), linear))
    if len(raw) % 1024 == 512 and name.lower().endswith((".smc", ".sfc")):
        out.append((hashlib.sha1(raw[512:]).hexdigest(), raw[512:]))
    out.append((hashlib.sha1(raw).hexdigest(), raw))
    return out


def match_bytes(name: str, raw: bytes, table: dict[str, tuple[str, str]] | None = None) -> Match | None:
    """Match one ROM's bytes against the known hashes; None when nothing matches."""
    table = known_hashes() if table is None else table
    for sha, data in _candidate_hashes(name, raw):
        if sha in table:
            game, ext = table[sha]
            note = ALTERNATE_DUMPS.get(sha, ("", ""))[1]
            return Match(game=game, ext=ext, sha1=sha, data=data, note=note)
    return None


def guess_system(name: str, raw: bytes) -> str:
    """Say which console a file looks like, from its header and extension (for error messages)."""
    if raw[:4] == b"NES\x1a":
        return "Nes (iNES header)"
    if raw[0x100:0x104] == b"SEGA" or raw[0x100:0x108] == b" SEGA ME":
        return "Genesis (SEGA header at 0x100)"
    if len(raw) % 0x4000 == 512 and raw[8:10] == b"\xaa\xbb":
        return "Genesis (SMD interleaved)"
    if len(raw) in (2048, 4096, 8192, 16384) and name.lower().endswith((".a26", ".bin")):
        return "Atari2600 (size)"
    ext = os.path.splitext(name)[1].lower()
    system = rdata.EMU_EXTENSIONS.get(ext)
    return f"{system} (extension {ext})" if system else "unknown"


def describe_unmatched(name: str, raw: bytes) -> str:
    """One paragraph on a file that matched no integration: what it is if it is a known other dump, else a
    system guess, the nearest game and its hash."""
    for sha, _ in _candidate_hashes(name, raw):
        if sha in OTHER_DUMPS:
            game, what = OTHER_DUMPS[sha]
            expected = EXPECTED_DUMPS.get(game, "the dump its rom.sha names")
            return (f"{name}: this is {what} (SHA-1 {sha}), a dump of {short_name(game)}, but not the one "
                    f"stable-retro's integration was made for ({expected}); its savestates and RAM addresses "
                    "are not known to hold for this one, so it was not imported. Import that dump instead.")
    sha = _candidate_hashes(name, raw)[0][0]
    stem = Path(name).stem.replace("_", " ").replace(".", " ")
    keys = {short_name(g).rsplit("-", 1)[0].lower(): short_name(g) for g in all_games()}
    squashed = stem.lower().replace(" ", "").replace("-", "")
    near = difflib.get_close_matches(squashed, list(keys), n=1, cutoff=0.3)
    nearest = keys[near[0]] if near else "none"
    return (
        f"{name}: no integration matches this file (SHA-1 {sha}). It looks like {guess_system(name, raw)}; "
        f"the nearest integration by name is {nearest}. stable-retro only plays dumps whose SHA-1 is in the "
        f"integration's rom.sha: find the matching dump (No-Intro sets usually match) and import that."
    )


# --------------------------------------------------------------------------- import


@dataclass
class ImportReport:
    """What an import did: one entry per imported ROM and one message per file that was not."""

    imported: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the report as plain data (for ``--json``)."""
        return asdict(self)


def _iter_sources(paths: Iterable[str | os.PathLike]) -> Iterator[tuple[str, bytes | None, str]]:
    """Yield (display name, bytes or None, error) for each file, folder member and zip member."""
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file())
        elif path.is_file():
            files = [path]
        elif path.exists():
            yield str(path), None, f"{path}: not a regular file or folder."
            continue
        else:
            yield str(path), None, f"{path}: no such file or folder."
            continue
        for f in files:
            try:
                if zipfile.is_zipfile(f):
                    yield from _iter_zip(f)
                elif f.stat().st_size > _MAX_ROM_BYTES:
                    yield str(f), None, f"{f}: larger than {_MAX_ROM_BYTES >> 20} MiB, not a supported ROM."
                else:
                    yield str(f), f.read_bytes(), ""
            except OSError as e:
                yield str(f), None, f"{f}: cannot read it ({e.strerror or e})."


def _iter_zip(path: Path) -> Iterator[tuple[str, bytes | None, str]]:
    """Yield zip members in memory; members with absolute paths or '..' are refused, never extracted."""
    if path.stat().st_size > _MAX_ROM_BYTES:
        yield str(path), None, f"{path}: a zip larger than {_MAX_ROM_BYTES >> 20} MiB; unpack the ROMs you need."
        return
    raw_zip = path.read_bytes()
    # An arcade (FBNeo) ROM set is itself a zip: try the archive as a whole first (its members follow, so
    # an archive that matches nothing as a whole is not reported).
    yield f"{path}{_WHOLE}", raw_zip, ""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                member = info.filename
                parts = Path(member.replace("\\", "/")).parts
                if member.startswith(("/", "\\")) or (len(member) > 1 and member[1] == ":") or ".." in parts:
                    yield f"{path}:{member}", None, (
                        f"{path}: refused member '{member}' (absolute path or '..'); nothing from it was written."
                    )
                    continue
                if info.file_size > _MAX_ROM_BYTES:
                    yield f"{path}:{member}", None, f"{path}:{member}: larger than {_MAX_ROM_BYTES >> 20} MiB."
                    continue
                try:
                    data = zf.read(info)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
                    yield f"{path}:{member}", None, f"{path}:{member}: cannot be unpacked ({e}); the zip is damaged."
                    continue
                yield f"{path}:{member}", data, ""
    except (zipfile.BadZipFile, EOFError) as e:
        yield str(path), None, f"{path}: a damaged zip ({e}); nothing from it was imported."


def install(match: Match, source: str) -> Path:
    """Write a matched ROM into the store (atomically) with a note of where it came from."""
    store = register()
    folder = store / match.game
    for old in folder.glob("rom.*"):
        if old.name != f"rom{match.ext}":
            old.unlink()
    target = folder / f"rom{match.ext}"
    if not (target.exists() and target.read_bytes() == match.data):
        write_atomic(target, match.data)
    meta = {"source": source, "sha1": match.sha1, "note": match.note}
    write_atomic(folder / SOURCE_FILE, json.dumps(meta, indent=2).encode())
    return target


def import_paths(paths: Iterable[str | os.PathLike], source: str | None = None) -> ImportReport:
    """Import ROMs from files, folders and zip archives into the store.

    Args:
        paths: files, folders (searched recursively) and zip archives.
        source: provenance written beside the ROM; defaults to the file's path.

    Returns:
        An ImportReport; files that match nothing are described in ``skipped``, never written.
    """
    table = known_hashes()
    report = ImportReport()
    pending: dict[str, str] = {}
    for name, raw, error in _iter_sources(paths):
        if raw is None:
            report.skipped.append(error)
            continue
        whole = name.endswith(_WHOLE)
        name = name.removesuffix(_WHOLE)
        match = match_bytes(name, raw, table)
        if match is None:
            if not whole:
                pending[name] = describe_unmatched(name, raw)
            continue
        target = install(match, source or name)
        report.imported.append({"game": short_name(match.game), "path": str(target), "source": source or name,
                                "sha1": match.sha1, "note": match.note})
    report.skipped.extend(pending.values())
    return report


def bundled_sources() -> list[tuple[str, Path]]:
    """Return (provenance, path) of ROM files shipped inside installed packages, without importing them."""
    found: list[tuple[str, Path]] = []
    spec = importlib.util.find_spec("gym_super_mario_bros")
    if spec and spec.submodule_search_locations:
        smb = Path(next(iter(spec.submodule_search_locations))) / "_roms" / "super-mario-bros.nes"
        if smb.is_file():
            found.append(("gym-super-mario-bros (bundled)", smb))
    spec = importlib.util.find_spec("ale_py")
    if spec and spec.submodule_search_locations:
        roms_dir = Path(next(iter(spec.submodule_search_locations))) / "roms"
        found.extend(("ale-py (bundled)", p) for p in sorted(roms_dir.glob("*.bin")))
    return found


def import_bundled() -> ImportReport:
    """Register every ROM installed packages ship that matches an integration (SMB, ale-py's Atari ROMs).

    Files that match no integration are silently left alone: most of ale-py's ROMs have no retro
    integration. Airstriker-Genesis needs nothing: it ships inside stable-retro.
    """
    table = known_hashes()
    report = ImportReport()
    for source, path in bundled_sources():
        raw = path.read_bytes()
        match = match_bytes(path.name, raw, table)
        if match is None:
            continue
        target = install(match, source)
        report.imported.append({"game": short_name(match.game), "path": str(target), "source": source,
                                "sha1": match.sha1, "note": match.note})
    return report


# --------------------------------------------------------------------------- listing


def describe_source(game: str, path: Path) -> str:
    """Say where a game's ROM comes from (the store and its provenance, or stable-retro itself)."""
    meta_file = path.parent / SOURCE_FILE
    if meta_file.is_file():
        try:
            return "store: " + json.loads(meta_file.read_text())["source"]
        except (ValueError, KeyError):
            return "store"
    if Path(stable_retro.__file__).parent in path.parents:
        return "stable-retro (bundled)"
    return str(path.parent)


def list_games(include_missing: bool = False) -> list[dict]:
    """Return one record per game with a ROM available (all integrations when ``include_missing``).

    Each record has ``game``, ``playable``, ``states``, ``source`` and ``rom``.
    """
    register()
    rows = []
    for game in all_games():
        path = _rom_path(game)
        if path is None and not include_missing:
            continue
        rows.append({
            "game": short_name(game),
            "playable": path is not None,
            "states": rdata.list_states(game, INTTYPE) if path else [],
            "source": describe_source(game, path) if path else None,
            "rom": str(path) if path else None,
        })
    return rows
