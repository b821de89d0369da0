"""The Modbus register map on its own: how each type lays a value into registers and reads a write back, the
sentinels, the gateway block, and the map's lookups, checksum and the mapping check of the block's place."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from gateway.mapping import Mapping, ModbusTable, load_mapping
from gateway.modbus.registers import (
    GATEWAY_FIELDS,
    BadValue,
    Register,
    RegisterMap,
    gateway_block,
    version_numbers,
)
from gateway.yamlsource import SourceError
from points import Quality, Value

TEMPLATE: dict[str, Any] = {
    "points": [
        {"source": "online", "modbus": {"table": "input", "offset": 0, "type": "uint16"}},
        {"source": "1/status", "modbus": {"table": "input", "offset": 1, "type": "uint16"}},
        {"source": "1/transaction_active", "modbus": {"table": "discrete-input", "offset": 2}},
        {"source": "1/meter/Current.Import/L1", "modbus": {"table": "input", "offset": 3, "type": "int16",
                                                           "scale": 10}},
        {"source": "1/session_energy", "modbus": {"table": "input", "offset": 4, "type": "uint32"}},
        {"source": "1/meter/Energy.Active.Import.Register", "modbus": {"table": "input", "offset": 6,
                                                                       "type": "uint32", "word_order": "little"}},
        {"source": "1/meter/Power.Active.Import", "modbus": {"table": "input", "offset": 8, "type": "float32"}},
        {"source": "1/meter/Temperature", "modbus": {"table": "input", "offset": 10, "type": "int32"}},
        {"source": "1/id_tag", "modbus": {"table": "input", "offset": 12, "type": "string", "length": 3}},
        {"source": "1/limit", "writable": True, "minimum": 0, "maximum": 32,
         "modbus": {"table": "holding", "offset": 20, "type": "float32"}},
        {"source": "1/smart_charging", "writable": True, "modbus": {"table": "coil", "offset": 22}},
        {"source": "config/HeartbeatInterval", "writable": True,
         "modbus": {"table": "holding", "offset": 23, "type": "uint16"}},
        {"source": "1/transaction_id", "modbus": {"table": "holding", "offset": 24, "type": "uint16"}},
    ]
}  # fmt: skip
MAPPING: dict[str, Any] = {
    "templates": {"t": TEMPLATE},
    "chargers": [
        {"id": "CP1", "template": "t", "modbus": {"unit": 1, "base_address": 100}},
        {"pattern": "C1-*", "template": "t", "slots": 3, "modbus": {"unit": 10, "base_address": 0,
                                                                     "unit_per_slot": True}},
    ],
    "modbus": {"layout_version": 7, "gateway_block": 9000},
}  # fmt: skip


@pytest.fixture(scope="module")
def registers() -> RegisterMap:
    return RegisterMap(Mapping.model_validate(MAPPING))


def cp1(registers: RegisterMap, source: str) -> Register:
    return next(r for r in registers.registers if r.placed.charger == "CP1" and r.source == source)


GOOD = Quality.GOOD


# -- laying values into registers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value", "words"),
    [
        ("online", True, [1]),
        ("online", False, [0]),
        ("1/status", 3, [3]),
        ("1/transaction_active", True, [True]),
        ("1/meter/Current.Import/L1", 15.97, [160]),  # x10, rounded
        ("1/meter/Current.Import/L1", -1.5, [0xFFF1]),  # -15 in two's complement
        ("1/session_energy", 70_000.0, [0x0001, 0x1170]),  # high word first
        ("1/meter/Energy.Active.Import.Register", 70_000.0, [0x1170, 0x0001]),  # word_order: little
        ("1/meter/Power.Active.Import", 7200.5, list(struct.unpack(">HH", struct.pack(">f", 7200.5)))),
        ("1/meter/Temperature", -40.0, [0xFFFF, 0xFFD8]),
        ("1/id_tag", "AB", [0x4142, 0, 0]),
        ("1/id_tag", "ABCDEFGH", [0x4142, 0x4344, 0x4546]),  # cut to 3 registers
        ("1/id_tag", "ABCDEé", [0x4142, 0x4344, 0x4500]),  # never half a UTF-8 character
        ("1/limit", 16.0, [0x4180, 0x0000]),
    ],
)
def test_values_in_registers(registers: RegisterMap, source: str, value: Any, words: list[Any]) -> None:
    assert cp1(registers, source).encode(value, GOOD) == words


@pytest.mark.parametrize(
    ("source", "sentinel"),
    [
        ("1/status", [0xFFFF]),
        ("1/meter/Current.Import/L1", [0x8000]),
        ("1/session_energy", [0xFFFF, 0xFFFF]),
        ("1/meter/Temperature", [0x8000, 0x0000]),
        ("1/meter/Energy.Active.Import.Register", [0xFFFF, 0xFFFF]),
        ("1/meter/Power.Active.Import", [0x7FC0, 0x0000]),
        ("1/id_tag", [0, 0, 0]),
        ("1/transaction_active", [False]),
    ],
)
def test_offline_and_unknown_values_read_as_the_sentinel(
    registers: RegisterMap, source: str, sentinel: list[Any]
) -> None:
    register = cp1(registers, source)
    known: Value = "X" if source == "1/id_tag" else True if source == "1/transaction_active" else 1.0
    assert register.encode(known, Quality.OFFLINE) == sentinel
    assert register.encode(None, Quality.UNKNOWN) == sentinel
    assert register.encode(known, Quality.STALE) != sentinel  # a stale value is still shown


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1/session_energy", -5.0),  # negative in a uint
        ("1/session_energy", 5e9),  # beyond 32 bits
        ("1/meter/Current.Import/L1", 4000.0),  # 40000 beyond int16
        ("1/meter/Power.Active.Import", 1e39),  # beyond float32
        ("1/meter/Current.Import/L1", math.inf),
    ],
)
def test_a_number_the_type_cannot_hold_reads_as_the_sentinel(
    registers: RegisterMap, source: str, value: float
) -> None:
    register = cp1(registers, source)
    assert register.encode(value, GOOD) == register.encode(None, Quality.UNKNOWN)


def test_little_endian_sentinels_are_in_the_points_word_order() -> None:
    points = [
        {"source": "1/meter/Temperature", "modbus": {"table": "input", "offset": 0, "type": "int32",
                                                     "word_order": "little"}},
        {"source": "1/limit", "writable": True, "modbus": {"table": "holding", "offset": 4, "type": "float32",
                                                           "word_order": "little"}},
    ]  # fmt: skip
    mapping = Mapping.model_validate(
        {
            "templates": {"t": {"points": points}},
            "chargers": [{"id": "CP1", "template": "t", "modbus": {"base_address": 0}}],
        }
    )
    temperature, limit = RegisterMap(mapping).registers[1], RegisterMap(mapping).registers[0]
    assert (temperature.source, limit.source) == ("1/meter/Temperature", "1/limit")
    assert temperature.encode(None, Quality.UNKNOWN) == [0x0000, 0x8000]
    assert temperature.encode(32768.0, GOOD) == [0x8000, 0x0000]  # a value, not the sentinel
    assert limit.encode(None, Quality.OFFLINE) == [0x0000, 0x7FC0]
    with pytest.raises(BadValue, match="sentinel"):
        limit.decode([0x0000, 0x7FC0])
    assert limit.decode(limit.encode(16.0, GOOD)) == 16.0


# -- reading writes back ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("1/limit", 16.0),
        ("1/limit", 6.5),
        ("config/HeartbeatInterval", 300.0),
        ("1/smart_charging", True),
        ("1/meter/Current.Import/L1", -1.5),
        ("1/meter/Temperature", -40.0),
        ("1/meter/Energy.Active.Import.Register", 70_000.0),
        ("1/id_tag", "ABC"),
    ],
)
def test_what_is_written_reads_back(registers: RegisterMap, source: str, value: Any) -> None:
    register = cp1(registers, source)
    assert register.decode(register.encode(value, GOOD)) == value


@pytest.mark.parametrize(
    ("source", "words", "reason"),
    [
        ("1/limit", [0x7FC0, 0x0000], "sentinel"),
        ("1/limit", [0x7F80, 0x0000], "finite"),  # +inf
        ("1/limit", [0x0000, 0x4148], "word order"),  # 12.5 with its words swapped: 2.3e-41
        ("config/HeartbeatInterval", [0xFFFF], "sentinel"),
        ("online", [2], "not 0 or 1"),
        ("1/id_tag", [0xC328, 0, 0], "UTF-8"),
    ],
)
def test_registers_that_make_no_value_are_refused(
    registers: RegisterMap, source: str, words: list[int], reason: str
) -> None:
    with pytest.raises(BadValue, match=reason):
        cp1(registers, source).decode(words)


# -- the map ------------------------------------------------------------------------------------------------------


def test_cells_by_unit_table_and_address(registers: RegisterMap) -> None:
    cell = registers.cell(1, ModbusTable.INPUT, 105)
    assert cell is not None and (cell[0].source, cell[1]) == ("1/session_energy", 1)
    assert registers.cell(1, ModbusTable.INPUT, 115) is None  # after the 3-register id tag
    assert registers.cell(1, ModbusTable.HOLDING, 104) is None  # another table
    slot = registers.cell(12, ModbusTable.HOLDING, 20)
    assert slot is not None and (slot[0].label, slot[0].pattern) == ("C1-* slot 2", "C1-*")
    assert registers.units == (1, 10, 11, 12)
    assert registers.in_gateway_block(9013) and not registers.in_gateway_block(9014)
    assert cp1(registers, "1/limit").writable and not cp1(registers, "1/transaction_id").writable


def test_the_checksum_follows_every_register_change() -> None:
    base = RegisterMap(Mapping.model_validate(MAPPING)).checksum
    assert RegisterMap(Mapping.model_validate(MAPPING)).checksum == base
    moved = {**MAPPING, "chargers": [{**MAPPING["chargers"][0], "modbus": {"unit": 1, "base_address": 200}},
                                     MAPPING["chargers"][1]]}  # fmt: skip
    assert RegisterMap(Mapping.model_validate(moved)).checksum != base
    points = [dict(p) for p in TEMPLATE["points"]]
    points[4] = {**points[4], "modbus": {**points[4]["modbus"], "word_order": "little"}}
    reordered = {**MAPPING, "templates": {"t": {"points": points}}}
    assert RegisterMap(Mapping.model_validate(reordered)).checksum != base


def test_gateway_block() -> None:
    words = gateway_block(
        layout_version=7,
        checksum=0x12345678,
        version="1.2.3",
        chargers=4,
        online=3,
        uptime=70_000.9,
        pending=2,
    )
    assert words == [0x4F43, 0x4757, 1, 7, 0x1234, 0x5678, 1, 2, 3, 4, 3, 0x0001, 0x1170, 2]
    assert [f.offset for f in GATEWAY_FIELDS] == [0, 2, 3, 4, 6, 7, 8, 9, 10, 11, 13]
    assert version_numbers("0.1.0.dev4") == (0, 1, 0)
    assert version_numbers("2") == (2, 0, 0)


def test_the_gateway_block_may_not_overlap_a_register(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        dedent(
            """
            templates:
              t:
                points:
                  - {source: 1/status, modbus: {table: input, offset: 5, type: uint16}}
            chargers:
              - {id: CP1, template: t, modbus: {base_address: 8990}}
            modbus:
              gateway_block: 8990
            """
        ).lstrip("\n"),
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as caught:
        load_mapping(path)
    (issue,) = caught.value.issues
    assert (issue.line, issue.location) == (8, "modbus.gateway_block")
    assert "overlaps input register 8995 of CP1 1/status (unit 1)" in issue.reason


def test_the_default_gateway_block_overlap_names_the_charger(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "templates:\n  t:\n    points:\n      - {source: 1/status, modbus: {table: input, offset: 5, type: uint16}}\n"
        "chargers:\n  - id: CP1\n    template: t\n    modbus: {base_address: 9000}\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceError) as caught:
        load_mapping(path)
    (issue,) = caught.value.issues
    assert (issue.line, issue.location) == (8, "chargers[0].modbus")
    assert "input register 9005 of CP1" in issue.reason and "modbus: {gateway_block: ...}" in issue.reason
