"""The Modbus register map: where each mapped point sits (unit, table, address), how its value is laid into
16-bit registers and read back from them (type, scale, word order, sentinels), and the gateway block.

Values (register = value x scale, rounded for integer types; 32-bit types take two registers, high word first
unless the mapping says `word_order: little`):

| point kind | in a coil / discrete input | in registers |
|---|---|---|
| analog | - | int16, uint16, int32, uint32, float32 |
| binary | the bit | 0 or 1 |
| multistate | - | the state number, from 1 |
| string | - | UTF-8, two bytes per register (first byte high), padded with 0 |

A value that is offline or unknown (never received) reads as its type's sentinel, as SunSpec's "not
implemented" values: int16 0x8000 (-32768), uint16 0xFFFF, int32 0x80000000, uint32 0xFFFFFFFF, float32 NaN
(0x7FC00000), a string all zeros; a bit reads 0 (the charger's quality register tells). A number the type cannot
hold (negative in a uint, beyond the range) reads as the sentinel too. A stale value (its last update could not
be used) reads as the value it had.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from gateway.layout import ModbusAddress, PlacedPoint, expand
from gateway.mapping import GATEWAY_BLOCK_WIDTH, Mapping, ModbusTable, ModbusType, WordOrder
from points import Kind, Quality, Value

Words = list[int]
Bits = list[bool]

SENTINELS: dict[ModbusType, tuple[int, ...]] = {
    ModbusType.INT16: (0x8000,),
    ModbusType.UINT16: (0xFFFF,),
    ModbusType.INT32: (0x8000, 0x0000),
    ModbusType.UINT32: (0xFFFF, 0xFFFF),
    ModbusType.FLOAT32: (0x7FC0, 0x0000),
}
_INT_RANGES: dict[ModbusType, tuple[int, int]] = {
    ModbusType.INT16: (-0x8000, 0x7FFF),
    ModbusType.UINT16: (0, 0xFFFF),
    ModbusType.INT32: (-0x8000_0000, 0x7FFF_FFFF),
    ModbusType.UINT32: (0, 0xFFFF_FFFF),
}
_SHOWN = frozenset({Quality.GOOD, Quality.STALE})
_FLOAT32_SMALLEST_NORMAL = 1.1754943508222875e-38


class BadValue(ValueError):
    """Registers written to a point that do not make one of its values (Modbus exception 3)."""


@dataclass(frozen=True)
class Register:
    """One mapped point of one charger (or pattern slot) on Modbus."""

    placed: PlacedPoint
    where: ModbusAddress
    pattern: str | None  # the entry's pattern for a slot (the charger holding it is found at run time)

    @property
    def type(self) -> ModbusType | None:
        """The register type; None for a coil or discrete input."""
        register = self.placed.point.modbus
        assert register is not None
        return None if self.where.table.holds_bits else register.type

    @property
    def scale(self) -> float:
        register = self.placed.point.modbus
        return register.scale if register is not None and register.scale is not None else 1.0

    @property
    def word_order(self) -> WordOrder:
        register = self.placed.point.modbus
        given = register.word_order if register is not None else None
        return given or WordOrder.BIG

    @property
    def kind(self) -> Kind:
        return self.placed.kind

    @property
    def source(self) -> str:
        return self.placed.source.text

    @property
    def writable(self) -> bool:
        """A Modbus client may write it: a writable point in a holding register or coil."""
        return self.placed.point.writable and self.where.table.writable

    @property
    def label(self) -> str:
        """The charger as the register list names it: its id, or `<pattern> slot <n>`."""
        if self.pattern is not None:
            return f"{self.pattern} slot {self.placed.slot}"
        return self.placed.charger or ""

    def encode(self, value: Value, quality: Quality) -> Words | Bits:
        """The registers (or the bit) that show `value`; the sentinel where it is not shown."""
        known = value is not None and quality in _SHOWN
        rtype = self.type
        if rtype is None:
            return [bool(value) if known else False]
        if not known:
            return self._sentinel()
        if rtype is ModbusType.STRING:
            return _string_words(str(value), self.where.width)
        if isinstance(value, bool):
            number: float = 1.0 if value else 0.0
        elif isinstance(value, int | float):
            number = float(value) * (self.scale if self.kind is Kind.ANALOG else 1.0)
        else:
            return self._sentinel()
        if rtype is ModbusType.FLOAT32:
            try:
                raw = struct.unpack(">HH", struct.pack(">f", number))
            except OverflowError:
                return self._sentinel()
            return self._ordered(raw)
        whole = round(number) if math.isfinite(number) else None
        low, high = _INT_RANGES[rtype]
        if whole is None or not low <= whole <= high:
            return self._sentinel()
        if rtype.width == 1:
            return [whole & 0xFFFF]
        whole &= 0xFFFF_FFFF
        return self._ordered((whole >> 16, whole & 0xFFFF))

    def decode(self, written: Sequence[int] | Sequence[bool]) -> Value:
        """The point value that written registers (all of the point's, in order) or a bit make; BadValue
        otherwise."""
        rtype = self.type
        if rtype is None:
            return bool(written[0])
        words = [int(word) for word in written]
        if rtype is ModbusType.STRING:
            data = b"".join(word.to_bytes(2, "big") for word in words).rstrip(b"\0")
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise BadValue("the registers are not UTF-8 text") from None
        if len(words) == 2 and self.word_order is WordOrder.LITTLE:
            words.reverse()  # high word first from here on
        if tuple(words) == SENTINELS[rtype]:
            raise BadValue("the sentinel means 'no value': it cannot be written")
        raw = (words[0] << 16) | words[1] if len(words) == 2 else words[0]
        number: float
        if rtype is ModbusType.FLOAT32:
            number = float(struct.unpack(">f", raw.to_bytes(4, "big"))[0])
            if not math.isfinite(number):
                raise BadValue("not a finite number")
            if number != 0 and abs(number) < _FLOAT32_SMALLEST_NORMAL:
                # what a float in the other word order looks like (12.5 reads as 2.3e-41): refused, not taken as 0
                raise BadValue(
                    f"{number:g} is a denormal float: are its two registers in the point's word order?"
                )
        elif rtype in (ModbusType.INT16, ModbusType.INT32):
            bits = 16 * len(words)
            number = raw - (1 << bits) if raw >> (bits - 1) else raw
        else:
            number = raw
        if self.kind is Kind.ANALOG:
            return number / self.scale
        if self.kind is Kind.BINARY:
            if number not in (0, 1):
                raise BadValue(f"{number} is not 0 or 1")
            return number == 1
        return int(number)

    def _sentinel(self) -> Words:
        rtype = self.type
        if rtype is ModbusType.STRING or rtype is None:
            return [0] * self.where.width
        words = SENTINELS[rtype]
        return self._ordered((words[0], words[1])) if len(words) == 2 else list(words)

    def _ordered(self, words: tuple[int, int]) -> Words:
        high, low = words
        return [high, low] if self.word_order is WordOrder.BIG else [low, high]


def _string_words(text: str, width: int) -> Words:
    data = text.encode("utf-8")[: 2 * width]
    data = data.decode("utf-8", errors="ignore").encode("utf-8")  # never half a character at the cut
    data = data.ljust(2 * width, b"\0")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * width, 2)]


def number_ranges(numbers: Sequence[int]) -> str:
    """Sorted numbers as people list them: [1, 2, 10, 11, 12] -> '1, 2, 10-12' (runs of three or more)."""
    parts: list[str] = []
    start = 0
    for index in range(1, len(numbers) + 1):
        if index == len(numbers) or numbers[index] != numbers[index - 1] + 1:
            run = numbers[start:index]
            parts.extend([f"{run[0]}-{run[-1]}"] if len(run) > 2 else [str(n) for n in run])
            start = index
    return ", ".join(parts)


# -- the gateway block ------------------------------------------------------------------------------------------

GATEWAY_MAGIC = "OCGW"
GATEWAY_BLOCK_VERSION = 1


@dataclass(frozen=True)
class BlockField:
    """One value of the gateway block."""

    offset: int
    width: int
    type: str
    name: str
    description: str


GATEWAY_FIELDS: tuple[BlockField, ...] = (
    BlockField(0, 2, "string", "identification", f"'{GATEWAY_MAGIC}': this is the OCPP gateway's block"),
    BlockField(2, 1, "uint16", "block version", f"Layout of this block ({GATEWAY_BLOCK_VERSION})"),
    BlockField(3, 1, "uint16", "layout version", "The mapping's modbus.layout_version"),
    BlockField(4, 2, "uint32", "layout checksum", "CRC-32 of the register list (changes with any register)"),
    BlockField(6, 1, "uint16", "gateway version major", "Gateway software version"),
    BlockField(7, 1, "uint16", "gateway version minor", "Gateway software version"),
    BlockField(8, 1, "uint16", "gateway version patch", "Gateway software version"),
    BlockField(9, 1, "uint16", "chargers", "Chargers the map holds (listed ones and taken pattern slots)"),
    BlockField(10, 1, "uint16", "chargers online", "Of those, connected now"),
    BlockField(11, 2, "uint32", "uptime", "Seconds since the gateway started (a watchdog for the BMS)"),
    BlockField(13, 1, "uint16", "writes pending", "BMS writes on their way to chargers"),
)
assert sum(f.width for f in GATEWAY_FIELDS) == GATEWAY_BLOCK_WIDTH


def version_numbers(version: str) -> tuple[int, int, int]:
    """'1.2.3' (or '0.1.0.dev4') as (1, 2, 3); parts that are not numbers read 0."""
    parts = [*version.split(".")[:3], "0", "0", "0"][:3]
    return tuple(int(part) if part.isdigit() else 0 for part in parts)  # type: ignore[return-value]


def gateway_block(
    *,
    layout_version: int,
    checksum: int,
    version: str,
    chargers: int,
    online: int,
    uptime: float,
    pending: int,
) -> Words:
    """The gateway block's registers."""
    major, minor, patch = version_numbers(version)
    seconds = min(int(uptime), 0xFFFF_FFFF)
    words = [
        *_string_words(GATEWAY_MAGIC, 2),
        GATEWAY_BLOCK_VERSION,
        layout_version,
        checksum >> 16,
        checksum & 0xFFFF,
        major,
        minor,
        patch,
        min(chargers, 0xFFFF),
        min(online, 0xFFFF),
        seconds >> 16,
        seconds & 0xFFFF,
        min(pending, 0xFFFF),
    ]
    assert len(words) == GATEWAY_BLOCK_WIDTH
    return words


# -- the map ----------------------------------------------------------------------------------------------------

Cell = tuple[Register, int]  # a register and which of its words an address is


class RegisterMap:
    """Every mapped point's registers by unit and table, from the mapping alone (no charger need be connected):
    a pattern's slots are all there, each read as unknown until a charger takes it."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        registers = []
        for placed in expand(mapping).modbus_points:
            assert placed.modbus is not None
            entry = mapping.chargers[placed.entry_index]
            registers.append(Register(placed, placed.modbus, entry.pattern))
        registers.sort(key=lambda r: (r.where.unit, r.where.table.value, r.where.address))
        self.registers: tuple[Register, ...] = tuple(registers)
        self._cells: dict[tuple[int, ModbusTable], dict[int, Cell]] = {}
        for register in registers:
            cells = self._cells.setdefault((register.where.unit, register.where.table), {})
            for word in range(register.where.width):
                cells[register.where.address + word] = (register, word)
        self.units: tuple[int, ...] = tuple(sorted({r.where.unit for r in registers} | {1}))
        # each charger's block once: (pattern, slot) for a pattern's slot, (None, charger id) for a listed one
        self.blocks: tuple[tuple[str | None, int | str], ...] = tuple(
            dict.fromkeys(
                (r.pattern, r.placed.slot) if r.pattern is not None else (None, r.placed.charger or "")
                for r in registers
            )
        )
        self.gateway_start = mapping.modbus.gateway_block
        self.layout_version = mapping.modbus.layout_version

    def cell(self, unit: int, table: ModbusTable, address: int) -> Cell | None:
        """The register at an address, or None where the map has none."""
        cells = self._cells.get((unit, table))
        return None if cells is None else cells.get(address)

    def in_gateway_block(self, address: int) -> bool:
        return self.gateway_start <= address < self.gateway_start + GATEWAY_BLOCK_WIDTH

    @cached_property
    def checksum(self) -> int:
        """CRC-32 of everything that decides how a client reads the map: a changed register changes it."""
        lines = [f"gateway block {self.gateway_start}"]
        for r in self.registers:
            register = r.placed.point.modbus
            assert register is not None
            lines.append(
                f"{r.where.unit} {r.where.table.value} {r.where.address} {r.where.width} {r.type} {r.scale} "
                f"{r.word_order.value} {r.label} {r.source} {r.writable} {r.kind.value} "
                f"{len(r.placed.source.field.states)}"
            )
        return zlib.crc32("\n".join(lines).encode("utf-8"))
