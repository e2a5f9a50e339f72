"""RAM without an emulator: stable-retro's variable types decoded and encoded, and RAM traces replayed.

A game without its ROM can still be worked on: a trace (RAM dumps recorded with the ROM, or values written
by a test) replayed through :class:`RamTrace` drives the real :class:`wrappers.tracker.GameTracker` with the
real integration's ``data.json``. The decoding follows stable-retro byte for byte (checked against its own
``Memory.extract`` on real emulators in ``tests/test_fight.py``):

- a type is byte order (``<`` little, ``>`` big, ``=`` native = little, ``|`` one byte), kind and size:
  ``i``/``u`` signed/unsigned, ``d`` BCD (two digits a byte), ``n`` one digit a byte (its low nibble);
  a nibble above 9 counts modulo 10, as stable-retro does (so Boxing's KO byte 0xC0 reads 20 as ``|d1``);
- Genesis RAM is kept in 16-bit words with their two bytes swapped: the byte at address ``a`` is stored at
  ``a ^ 1`` (so a ``>u4`` at an odd address straddles three words);
- an optional ``mask`` is applied to the decoded value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Where each console's work RAM starts in data.json addresses, its size, and whether words are swapped.
SYSTEMS: dict[str, tuple[int, int, bool]] = {
    "Genesis": (0xFF0000, 0x10000, True),
    "Nes": (0x0, 0x800, False),
    "Atari2600": (0x80, 0x80, False),
}


@dataclass(frozen=True)
class VarSpec:
    """One data.json variable: address, type and optional mask."""

    address: int
    type: str
    mask: int | None = None

    @property
    def size(self) -> int:
        """Bytes it spans."""
        return int(self.type[2:])


def _index(offset: int, swap: bool) -> int:
    return offset ^ 1 if swap else offset


def decode(ram: bytes | bytearray | memoryview, offset: int, spec: VarSpec, swap: bool = False) -> int:
    """The value of a variable whose first byte is at ``offset`` in ``ram`` (stable-retro's semantics)."""
    order, kind, size = spec.type[0], spec.type[1], spec.size
    data = [ram[_index(offset + i, swap)] for i in range(size)]
    if order in "<=":
        data.reverse()  # most significant byte first from here on
    if kind in "iu":
        value = int.from_bytes(bytes(data), "big", signed=kind == "i")
    elif kind == "d":
        value = 0
        for b in data:
            value = value * 100 + (b >> 4) % 10 * 10 + (b & 15) % 10
    else:  # "n": one decimal digit per byte
        value = 0
        for b in data:
            value = value * 10 + (b & 15) % 10
    return value & spec.mask if spec.mask is not None else value


def encode(value: int, spec: VarSpec) -> bytes:
    """The bytes of ``value`` in address order (the inverse of :func:`decode` for values in range)."""
    order, kind, size = spec.type[0], spec.type[1], spec.size
    value = int(value)
    if kind in "iu":
        data = value.to_bytes(size, "big", signed=kind == "i")
    elif kind == "d":
        digits = f"{value:0{2 * size}d}"[-2 * size:]
        data = bytes(int(digits[2 * i]) << 4 | int(digits[2 * i + 1]) for i in range(size))
    else:
        digits = f"{value:0{size}d}"[-size:]
        data = bytes(int(c) for c in digits)
    return data[::-1] if order in "<=" else data


class RamImage:
    """A console's work RAM as bytes, read and written by data.json variable name.

    Args:
        system: ``Genesis``, ``Nes`` or ``Atari2600`` (see :data:`SYSTEMS`).
        variables: name -> :class:`VarSpec` (or data.json's ``{"address", "type", "mask"}`` dicts).
        ram: the initial bytes (a recorded dump), or zeros.
    """

    def __init__(self, system: str, variables: Mapping[str, VarSpec | Mapping], ram: bytes | None = None):
        if system not in SYSTEMS:
            raise ValueError(f"RamImage knows {', '.join(SYSTEMS)}, not {system}")
        self.base, size, self.swap = SYSTEMS[system]
        self.ram = bytearray(ram if ram is not None else bytes(size))
        self.variables = {n: v if isinstance(v, VarSpec) else VarSpec(int(v["address"]), v["type"], v.get("mask"))
                          for n, v in variables.items()}

    def read(self, name: str) -> int:
        """The value of a variable (what ``GameData.lookup_value`` returns on a live emulator)."""
        spec = self.variables[name]
        return decode(self.ram, spec.address - self.base, spec, self.swap)

    def write(self, name: str, value: int) -> None:
        """Set a variable (a mask, if any, is not applied: the whole bytes are written)."""
        spec = self.variables[name]
        for i, b in enumerate(encode(value, spec)):
            self.ram[_index(spec.address - self.base + i, self.swap)] = b


def integration_variables(game: str, profile=None) -> dict[str, VarSpec]:
    """The data.json variables of an installed integration, with a profile's extra ones on top."""
    from wrappers import profile as profiles

    info = profiles.integration_variables(game)
    out = {n: VarSpec(int(v["address"]), v["type"], v.get("mask")) for n, v in info.items()}
    if profile is not None:
        out.update({n: VarSpec(v.address, v.type, v.mask) for n, v in profile.variables.items()})
    return out


class RamTrace:
    """Replays per-step variable values through a RAM image, for a :class:`GameTracker` to read.

    Each step's values are written as the game would hold them (encoded per type, Genesis words swapped),
    then read back through the same decoding stable-retro uses, so a trace exercises types and byte order
    too. Variables a step leaves out keep their last value.

    Example:
        >>> trace = RamTrace(profile, [{"health": 176}, {"health": 150}])   # doctest: +SKIP
        >>> tracker = GameTracker(profile, trace.read); tracker.reset()      # doctest: +SKIP
        >>> trace.advance(); tracker.step()                                  # doctest: +SKIP
    """

    def __init__(self, profile, steps: Sequence[Mapping[str, int]]):
        from wrappers import roms

        system = roms.short_name(roms.canonical_game(profile.game)).rsplit("-", 1)[-1]
        self.image = RamImage(system, integration_variables(profile.game, profile))
        self.steps = list(steps)
        self.index = 0
        self._apply(self.steps[0])

    def _apply(self, values: Mapping[str, int]) -> None:
        for name, value in values.items():
            self.image.write(name, value)

    def read(self, name: str) -> int:
        """A variable's value at the current step."""
        return self.image.read(name)

    def advance(self) -> bool:
        """Move to the next step; False when the trace is over."""
        if self.index + 1 >= len(self.steps):
            return False
        self.index += 1
        self._apply(self.steps[self.index])
        return True
