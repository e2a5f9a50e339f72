"""ROM store: import by SHA-1 (files, folders, zips), alternate dumps, unknown files, hostile zips, listing."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from wrappers import roms


def _smb_dump() -> Path:
    path = roms.bundled_sources()[0][1]
    assert path.name == "super-mario-bros.nes"
    return path


def _ale_rom(name: str) -> Path:
    return next(p for _, p in roms.bundled_sources() if p.name == name)


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """An empty store of its own (the session store stays untouched)."""
    monkeypatch.setenv("RETRODOJO_HOME", str(tmp_path / "home"))
    yield roms.register()
    monkeypatch.undo()
    roms.register()


def test_bundled_games_are_playable():
    games = {r["game"]: r for r in roms.list_games()}
    for game in ("SuperMarioBros-Nes", "Airstriker-Genesis", "Pong-Atari2600", "Boxing-Atari2600"):
        assert games[game]["playable"], game
    assert "Level1-1" in games["SuperMarioBros-Nes"]["states"]
    assert games["SuperMarioBros-Nes"]["source"] == "store: gym-super-mario-bros (bundled)"
    assert games["Airstriker-Genesis"]["source"] == "stable-retro (bundled)"


def test_import_alternate_dump_by_hash_whatever_its_name(store, tmp_path):
    src = tmp_path / "My Mario backup.nes"
    src.write_bytes(_smb_dump().read_bytes())
    report = roms.import_paths([src])
    assert [i["game"] for i in report.imported] == ["SuperMarioBros-Nes"]
    assert report.imported[0]["note"] == "gym-super-mario-bros dump"
    assert (store / "SuperMarioBros-Nes-v0" / "rom.nes").read_bytes() == src.read_bytes()
    # the header is kept in the file, and the hash is of the body, as stable-retro computes it
    assert roms.rom_sha1("SuperMarioBros-Nes") == hashlib.sha1(src.read_bytes()[16:]).hexdigest()


def test_import_folder_matches_rom_sha(store, tmp_path):
    folder = tmp_path / "dumps" / "atari"
    folder.mkdir(parents=True)
    (folder / "pong.bin").write_bytes(_ale_rom("pong.bin").read_bytes())
    report = roms.import_paths([tmp_path / "dumps"])
    assert [i["game"] for i in report.imported] == ["Pong-Atari2600"]
    sha = (Path(roms.rdata.get_file_path("Pong-Atari2600-v0", "rom.sha", roms.INTTYPE))).read_text().split()
    assert hashlib.sha1((store / "Pong-Atari2600-v0" / "rom.a26").read_bytes()).hexdigest() in sha
    assert [r["game"] for r in roms.list_games()] == ["Airstriker-Genesis", "Pong-Atari2600"]


def test_unknown_file_says_system_nearest_game_and_hash(store, tmp_path):
    junk = b"NES\x1a" + bytes(range(256)) * 100
    src = tmp_path / "super_mario_brothers_hack.nes"
    src.write_bytes(junk)
    report = roms.import_paths([src])
    assert report.imported == []
    (msg,) = report.skipped
    assert "Nes (iNES header)" in msg
    assert hashlib.sha1(junk[16:]).hexdigest() in msg
    assert "SuperMarioBros" in msg
    assert not any(store.iterdir())


def test_zip_archive_imports_members(store, tmp_path):
    archive = tmp_path / "roms.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("nes/smb.nes", _smb_dump().read_bytes())
        zf.writestr("readme.txt", "not a rom")
    report = roms.import_paths([archive])
    assert [i["game"] for i in report.imported] == ["SuperMarioBros-Nes"]
    assert any("readme.txt" in s for s in report.skipped)


def test_hostile_zip_members_are_refused_and_nothing_escapes(store, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.nes", _smb_dump().read_bytes())
        zf.writestr("/abs/escaped.nes", _smb_dump().read_bytes())
        zf.writestr("ok/../../escaped2.nes", _smb_dump().read_bytes())
    before = {p for p in tmp_path.rglob("*")}
    report = roms.import_paths([archive])
    assert report.imported == []
    assert len(report.skipped) == 3
    assert all("refused member" in s for s in report.skipped)
    assert {p for p in tmp_path.rglob("*")} - before <= {p for p in store.rglob("*")}
    assert not list(tmp_path.parent.rglob("escaped*.nes"))


def test_smd_interleaved_dump_is_linearised():
    linear = bytes(range(256)) * 128  # 32 KiB: two 16 KiB blocks
    smd = bytearray(512)
    smd[8:10] = b"\xaa\xbb"
    for start in range(0, len(linear), 0x4000):
        block = linear[start : start + 0x4000]
        smd += block[1::2] + block[0::2]  # odd bytes first, then even
    cands = dict((data, sha) for sha, data in roms._candidate_hashes("game.smd", bytes(smd)))
    assert linear in cands
    assert cands[linear] == hashlib.sha1(linear).hexdigest()


def test_missing_rom_and_unknown_game_messages():
    with pytest.raises(roms.RomError, match=r"No ROM for SonicTheHedgehog2-Genesis.*retrodojo roms import"):
        roms.require_rom("SonicTheHedgehog2-Genesis")
    with pytest.raises(roms.RomError, match=r"Unknown game 'SuperMarioBro-Nes'.*Did you mean SuperMarioBros-Nes"):
        roms.canonical_game("SuperMarioBro-Nes")


def test_cli_roms_list_json(capsys):
    from experiments.cli import main

    assert main(["roms", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    smb = next(r for r in rows if r["game"] == "SuperMarioBros-Nes")
    assert {"game", "playable", "states", "source"} <= set(smb)
    assert smb["playable"] is True


def test_bundled_is_idempotent(store):
    first = roms.import_bundled()
    mtime = (store / "SuperMarioBros-Nes-v0" / "rom.nes").stat().st_mtime_ns
    second = roms.import_bundled()
    assert [i["game"] for i in first.imported] == [i["game"] for i in second.imported]
    assert (store / "SuperMarioBros-Nes-v0" / "rom.nes").stat().st_mtime_ns == mtime


def test_a_known_other_dump_is_named_not_imported(store, tmp_path, monkeypatch):
    """A real other dump (say SF2's Europe release) is named with the dump stable-retro expects; the table's
    SHA-1s come from No-Intro, and a stand-in file takes one's place here (no ROM is on this machine)."""
    data = b"\x00" * 1024 + b"stand-in for a European dump"
    sha = hashlib.sha1(data).hexdigest()
    game = "StreetFighterIISpecialChampionEdition-Genesis-v0"
    monkeypatch.setitem(roms.OTHER_DUMPS, sha, (game, "Street Fighter II' - Special Champion Edition (Europe)"))
    (tmp_path / "sf2_eu.md").write_bytes(data)
    report = roms.import_paths([tmp_path / "sf2_eu.md"])
    assert not report.imported
    (msg,) = report.skipped
    assert "this is Street Fighter II' - Special Champion Edition (Europe)" in msg
    assert "(USA), No-Intro, SHA-1 a5aad1d108046d9388e33247610dafb4c6516e0b" in msg and "not imported" in msg
    with pytest.raises(roms.RomError, match=r"dump \(Street Fighter II' - Special Champion Edition \(USA\)"):
        roms.require_rom(game)
