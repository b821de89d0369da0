"""The Modbus register list: every register the mapping's map serves, as CSV (for tools) and Markdown (for people).

One row per register of every charger listed by id and of every pattern slot (taken or not), after the gateway
block's fields (in the input and the read-only holding registers of every unit). The rows come from the same
`RegisterMap` the server answers from (`gateway.modbus.registers`), so the list is what a client reads.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from decimal import Decimal
from pathlib import Path

from gateway.mapping import GATEWAY_BLOCK_WIDTH, Mapping, ModbusTable, ModbusType
from gateway.modbus.registers import (
    GATEWAY_FIELDS,
    SENTINELS,
    BlockField,
    Register,
    RegisterMap,
    number_ranges,
)
from points import Kind

GATEWAY_LABEL = "gateway"
EVERY_UNIT = "every unit"

COLUMNS: tuple[str, ...] = (
    "charger",
    "unit",
    "table",
    "address",
    "reference",
    "registers",
    "type",
    "word order",
    "scale",
    "engineering unit",
    "access",
    "range",
    "sentinel",
    "point",
    "name",
    "description",
)

# The conventional 1-based reference: its first digit names the table ("4x" holding registers, ...).
REFERENCE_PREFIXES: dict[ModbusTable, int] = {
    ModbusTable.COIL: 0,
    ModbusTable.DISCRETE_INPUT: 1,
    ModbusTable.INPUT: 3,
    ModbusTable.HOLDING: 4,
}

# Configuration keys are typed by name (gateway.sources) but carry no unit; these are the OCPP 1.6 keys' and the
# seed chargers' vendor keys' units.
CONFIG_UNITS: dict[str, str] = {
    "ClockAlignedDataInterval": "s",
    "ConnectionTimeOut": "s",
    "HeartbeatInterval": "s",
    "MeterValueSampleInterval": "s",
    "MinimumStatusDuration": "s",
    "TransactionMessageRetryInterval": "s",
    "WebSocketPingInterval": "s",
    "LightIntensity": "Percent",
    "MaxEnergyOnInvalidId": "Wh",
    "Cst_MaxCurrentRotarySwitchSetting": "A",
    "ConnectorMaximumCurrent": "A",
}
_BLOCK_UNITS = {"uptime": "s"}


@dataclass(frozen=True)
class Row:
    """One line of the register list, each column as the files write it (text)."""

    charger: str
    unit: str
    table: str
    address: str
    reference: str
    registers: str
    type: str
    word_order: str
    scale: str
    engineering_unit: str
    access: str
    range: str
    sentinel: str
    point: str
    name: str
    description: str


assert len(fields(Row)) == len(COLUMNS)


def reference(table: ModbusTable, address: int) -> str:
    """The 1-based 6-digit reference of a 0-based address: holding register 0 is 400001, coil 0 is 000001."""
    return f"{REFERENCE_PREFIXES[table] * 100_000 + address + 1:06d}"


def register_rows(mapping: Mapping) -> list[Row]:
    """The gateway block's fields (input registers, then holding registers), then every charger's and pattern
    slot's registers together, in mapping order, each charger's by table and address."""
    registers = RegisterMap(mapping)
    rows = [
        _block_row(field, table, registers.gateway_start)
        for table in (ModbusTable.INPUT, ModbusTable.HOLDING)
        for field in GATEWAY_FIELDS
    ]
    tables = list(ModbusTable)
    by_charger = sorted(
        registers.registers,
        key=lambda r: (r.placed.entry_index, r.placed.slot, tables.index(r.where.table), r.where.address),
    )
    rows.extend(_register_row(register) for register in by_charger)
    return rows


def write_csv(rows: list[Row], path: Path) -> None:
    """The list as CSV: UTF-8, a header row, the `csv` module's default dialect."""
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(astuple(row) for row in rows)


def read_csv(path: Path) -> list[Row]:
    """The rows of a list `write_csv` wrote."""
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path}: not a Modbus register list (columns {header})")
        return [Row(*cells) for cells in reader]


def write_markdown(rows: list[Row], mapping: Mapping, path: Path) -> None:
    """The list as Markdown: how to read it, then one table."""
    registers = RegisterMap(mapping)
    start = registers.gateway_start
    units = number_ranges(registers.units)
    chargers = len({register.label for register in registers.registers})
    lines = [
        "# Modbus register list",
        "",
        f"Layout version {registers.layout_version}, checksum 0x{registers.checksum:08X}. The gateway block (input "
        f"registers {start}-{start + GATEWAY_BLOCK_WIDTH - 1}, also readable as holding registers, in every unit: "
        f"{units}) shows both: a client that finds the same ones reads the map this list describes. "
        f"{len(rows)} registers: the gateway block's, then those of {chargers} chargers and pattern slots.",
        "",
        "Addresses count from 0, as the protocol sends them; the reference is the conventional 1-based number "
        "(coil 000001, discrete input 100001, input register 300001, holding register 400001, plus the "
        "address). A register holds value x scale in the engineering unit shown; 32-bit values take two "
        "registers, high word first unless the word order says little; a string takes two UTF-8 bytes per "
        "register, padded with 0. A multistate point holds its state number (from 1), an on/off point 0 or 1. "
        "A limit (`<connector>/limit`) is in the unit the charger's smart charging uses: A as listed, or W where "
        "it is set to W.",
        "",
        "A value that is offline or unknown (never received) reads as the sentinel of its type (the sentinel "
        "column, the whole value: SunSpec's 'not implemented' values, NaN for float32; with word order little "
        "its low word comes first); a string reads all zeros and a bit 0. "
        "A charger's quality register (point `online`, where its template lists it) tells an offline charger "
        "from a value never received: 1 online, 0 offline (also for a slot no charger holds yet). A pattern "
        "slot is given to a charger when it is first discovered.",
        "",
        "Exception codes: **2** (illegal data address) for an address the list does not have, also within a "
        "longer read, and for a write to a read-only register (access R, the gateway block); **3** (illegal "
        "data value) for a write of part of a 32-bit value or string, of a value outside the range, of the "
        "sentinel, or of anything but 0/1 to an on/off point; **11** (gateway target device failed to respond) "
        "for a unit the list does not use, or a write to a pattern slot no charger holds yet. A write is "
        "acknowledged once checked; the charger's answer comes later, in its Last write register.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines.extend("| " + " | ".join(_cell(text) for text in astuple(row)) + " |" for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def list_paths(path: Path) -> tuple[Path, Path]:
    """Where the CSV and the Markdown list go for `path`: a `.md` path takes the Markdown (the CSV beside it),
    any other the CSV (the Markdown beside it)."""
    if path.suffix == ".md":
        return path.with_suffix(".csv"), path
    return path, path.with_suffix(".md")


def export_modbus(mapping: Mapping, path: Path) -> int:
    """Write the mapping's register list to `path` and beside it (`list_paths`); returns the number of rows."""
    rows = register_rows(mapping)
    csv_path, markdown_path = list_paths(path)
    write_csv(rows, csv_path)
    write_markdown(rows, mapping, markdown_path)
    return len(rows)


# -- rows -------------------------------------------------------------------------------------------------------


def _block_row(field: BlockField, table: ModbusTable, start: int) -> Row:
    address = start + field.offset
    return Row(
        charger=GATEWAY_LABEL,
        unit=EVERY_UNIT,
        table=table.value,
        address=str(address),
        reference=reference(table, address),
        registers=str(field.width),
        type=field.type,
        word_order="big" if ModbusType(field.type).width == 2 else "",
        scale="",
        engineering_unit=_BLOCK_UNITS.get(field.name, ""),
        access="R",
        range="",
        sentinel="",  # the block always has its values
        point="",
        name=field.name,
        description=field.description,
    )


def _register_row(register: Register) -> Row:
    where = register.where
    placed = register.placed
    point = placed.point
    rtype = register.type
    numeric_analog = register.kind is Kind.ANALOG and rtype is not None and rtype is not ModbusType.STRING
    return Row(
        charger=register.label,
        unit=str(where.unit),
        table=where.table.value,
        address=str(where.address),
        reference=reference(where.table, where.address),
        registers=str(where.width),
        type="bit" if rtype is None else rtype.value,
        word_order=register.word_order.value if where.width == 2 and rtype is not ModbusType.STRING else "",
        scale=_number(register.scale) if numeric_analog else "",
        engineering_unit=_engineering_unit(register),
        access="RW" if register.writable else "R",
        range=_range(register),
        sentinel=_sentinel(rtype),
        point=register.source,
        name=point.name or register.source,
        description=point.description or placed.source.field.description,
    )


def _engineering_unit(register: Register) -> str:
    if register.kind is not Kind.ANALOG:
        return ""
    source = register.placed.source
    if source.config_key is not None:
        return CONFIG_UNITS.get(source.config_key, "")
    return source.field.unit or ""


def _range(register: Register) -> str:
    """Analog points a client may write: minimum..maximum; on/off points and states: what each number means."""
    source = register.placed.source
    kind = register.kind
    if kind is Kind.ANALOG:
        if not register.writable:
            return ""
        point = register.placed.point
        low = point.minimum if point.minimum is not None else source.field.minimum
        high = point.maximum if point.maximum is not None else source.field.maximum
        if low is None and high is None:
            return ""
        return f"{'' if low is None else _number(low)}..{'' if high is None else _number(high)}"
    states = source.field.states
    if kind is Kind.BINARY:
        off, on = states if len(states) == 2 else ("inactive", "active")  # as the BACnet object's texts
        return f"0={off}, 1={on}"
    if kind is Kind.MULTISTATE:
        return ", ".join(f"{number}={state}" for number, state in enumerate(states, start=1))
    return ""


def _sentinel(rtype: ModbusType | None) -> str:
    """The value that means 'no value', as one number (32-bit types: the whole value, before word order)."""
    if rtype is None:
        return ""
    if rtype is ModbusType.STRING:
        return "all 0x0000"
    return "0x" + "".join(f"{word:04X}" for word in SENTINELS[rtype])


def _number(value: float) -> str:
    """Decimal, no exponent, no trailing `.0`: 10.0 -> '10', 0.1 -> '0.1'."""
    if float(value).is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _cell(text: str) -> str:
    """A text as one Markdown table cell: pipes escaped, no line breaks."""
    return " ".join(text.replace("|", "\\|").splitlines())
