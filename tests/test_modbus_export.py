"""The Modbus register list (`ocpp-gateway export-modbus`): its rows for the example mapping, the CSV and Markdown
files, the command, and every listed register read over TCP from a running gateway with pymodbus's client."""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from pymodbus.client import AsyncModbusTcpClient

from gateway.cli import main
from gateway.mapping import Mapping, ModbusTable, load_mapping
from gateway.modbus.export import (
    COLUMNS,
    Row,
    export_modbus,
    list_paths,
    read_csv,
    reference,
    register_rows,
    write_csv,
    write_markdown,
)
from gateway.modbus.registers import GATEWAY_FIELDS, RegisterMap
from gateway.server import RunningGateway
from gateway.settings import Settings
from tests.conftest import connect_charger, eventually, make_settings
from tests.scripted import Scripted
from tests.test_cli import _gateway_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "mappings" / "example.yaml"
SHIPPED = ROOT / "mappings" / "example-modbus.csv"
REGENERATE = "run: ocpp-gateway export-modbus mappings/example-modbus.csv --mapping mappings/example.yaml"
EXAMPLE_ROWS = 2081  # 22 of the gateway block (input and holding) and 2059 of 94 chargers and pattern slots


@pytest.fixture(scope="module")
def example() -> Mapping:
    return load_mapping(EXAMPLE)


def by_point(rows: list[Row], charger: str) -> dict[str, Row]:
    return {row.point: row for row in rows if row.charger == charger}


# -- rows -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "address", "expected"),
    [
        (ModbusTable.COIL, 0, "000001"),
        (ModbusTable.DISCRETE_INPUT, 12, "100013"),
        (ModbusTable.INPUT, 16, "300017"),
        (ModbusTable.HOLDING, 24, "400025"),
        (ModbusTable.HOLDING, 65535, "465536"),
    ],
)
def test_reference_is_the_one_based_number_of_its_table(
    table: ModbusTable, address: int, expected: str
) -> None:
    assert reference(table, address) == expected


def test_cp1_rows_of_the_example(example: Mapping) -> None:
    cp1 = by_point(register_rows(example), "CP1")
    assert len(cp1) == 16  # the template's 18 points less info and limit status (BACnet only)

    online = cp1["online"]
    assert (online.unit, online.table, online.address, online.reference) == ("1", "input", "0", "300001")
    assert (online.type, online.registers, online.access, online.sentinel) == ("uint16", "1", "R", "0xFFFF")
    assert online.range == "0=offline, 1=online"
    assert (online.name, online.description) == ("Online", "The charger is connected and talking")

    status = cp1["1/status"]
    assert (status.address, status.reference, status.scale, status.engineering_unit) == (
        "10",
        "300011",
        "",
        "",
    )
    assert status.range.startswith("1=Available, 2=Preparing, 3=Charging, ")
    assert status.range.endswith(", 9=Faulted")

    energy = cp1["1/meter/Energy.Active.Import.Register"]
    assert (energy.table, energy.address, energy.reference, energy.registers) == (
        "input",
        "16",
        "300017",
        "2",
    )
    assert (energy.type, energy.word_order, energy.scale, energy.engineering_unit) == (
        "uint32",
        "big",
        "1",
        "Wh",
    )
    assert (energy.sentinel, energy.name) == ("0xFFFFFFFF", "C1 Energy")

    power = cp1["1/meter/Power.Active.Import"]
    assert (power.address, power.type, power.word_order, power.engineering_unit) == (
        "18",
        "float32",
        "big",
        "W",
    )
    assert power.sentinel == "0x7FC00000"

    for phase, address in (("L1", "20"), ("L2", "21"), ("L3", "22")):
        current = cp1[f"1/meter/Current.Import/{phase}"]
        assert (current.address, current.type, current.scale, current.engineering_unit) == (
            address,
            "int16",
            "10",
            "A",
        )
        assert (current.word_order, current.sentinel, current.access) == ("", "0x8000", "R")

    limit = cp1["1/limit"]
    assert (limit.table, limit.address, limit.reference, limit.registers) == ("holding", "24", "400025", "2")
    assert (limit.type, limit.access, limit.range, limit.engineering_unit) == ("float32", "RW", "0..32", "A")
    assert limit.description == "Charging current limit the BMS sets (sent as a charging profile)"

    smart = cp1["1/smart_charging"]
    assert (smart.table, smart.address, smart.reference, smart.type) == ("coil", "13", "000014", "bit")
    assert (smart.access, smart.range, smart.sentinel, smart.scale) == ("RW", "0=disabled, 1=enabled", "", "")

    session = cp1["1/transaction_active"]
    assert (session.table, session.reference, session.type, session.access) == (
        "discrete-input",
        "100013",
        "bit",
        "R",
    )

    heartbeat = cp1["config/HeartbeatInterval"]
    assert (heartbeat.engineering_unit, heartbeat.access, heartbeat.range) == ("s", "R", "")

    tag = cp1["1/id_tag"]
    assert (tag.type, tag.registers, tag.sentinel, tag.word_order, tag.scale) == (
        "string",
        "10",
        "all 0x0000",
        "",
        "",
    )


def test_pattern_slots_are_listed_whether_taken_or_not(example: Mapping) -> None:
    rows = register_rows(example)
    # C1-* has unit_per_slot: slot n is unit 10 + n, at the same addresses
    for slot in (0, 3, 19):
        amina = by_point(rows, f"C1-* slot {slot}")
        assert len(amina) == 17
        assert {row.unit for row in amina.values()} == {str(10 + slot)}
        assert amina["1/meter/Energy.Active.Import.Register"].address == "16"
        assert amina["1/limit"].range == "0..32"
    assert not by_point(rows, "C1-* slot 20")
    # M1-* shares unit 2: slot n at 100 n
    m1 = by_point(rows, "M1-* slot 2")
    assert m1["1/meter/Energy.Active.Import.Register"].unit == "2"
    assert m1["1/meter/Energy.Active.Import.Register"].address == "216"
    assert m1["config/Cst_MaxCurrentRotarySwitchSetting"].engineering_unit == "A"


def test_the_gateway_block_comes_first_in_every_unit(example: Mapping) -> None:
    rows = register_rows(example)
    block = rows[: 2 * len(GATEWAY_FIELDS)]
    assert {row.charger for row in block} == {"gateway"}
    assert {row.unit for row in block} == {"every unit"}
    assert [row.table for row in block] == ["input"] * len(GATEWAY_FIELDS) + ["holding"] * len(GATEWAY_FIELDS)
    assert [row.name for row in block] == [field.name for field in GATEWAY_FIELDS] * 2
    assert (block[0].address, block[0].reference, block[0].type, block[0].registers) == (
        "9000",
        "309001",
        "string",
        "2",
    )
    holding = {row.name: row for row in block if row.table == "holding"}
    assert (holding["layout checksum"].address, holding["layout checksum"].reference) == ("9004", "409005")
    uptime = holding["uptime"]
    assert (uptime.type, uptime.word_order, uptime.engineering_unit, uptime.access) == (
        "uint32",
        "big",
        "s",
        "R",
    )
    assert all(row.access == "R" and row.sentinel == "" for row in block)
    assert rows[len(block)].charger != "gateway"


def test_every_register_of_the_map_is_listed_once_charger_by_charger(example: Mapping) -> None:
    rows = register_rows(example)
    assert len(rows) == EXAMPLE_ROWS
    listed = rows[2 * len(GATEWAY_FIELDS) :]
    registers = RegisterMap(example).registers
    assert sorted((r.label, r.where.unit, r.where.table.value, r.where.address) for r in registers) == sorted(
        (row.charger, int(row.unit), row.table, int(row.address)) for row in listed
    )
    # each charger's rows together, in the mapping's order
    chargers = [row.charger for row in listed]
    assert list(dict.fromkeys(chargers))[:5] == [
        "CP1",
        "49839108034579556",
        "ACSMART-01",
        "SICHARGE-D-01",
        "C1-* slot 0",
    ]
    assert len(list(itertools.groupby(chargers))) == len(set(chargers))
    # the addresses `ocpp-gateway check` counts
    assert sum(int(row.registers) for row in listed) == 3806
    assert len({row.charger for row in listed}) == 94


# -- files ------------------------------------------------------------------------------------------------------

AWKWARD = Mapping.model_validate(
    {
        "templates": {
            "t": {
                "points": [
                    {
                        "source": "1/limit",
                        "name": "Limit | A",
                        "description": 'Limit, "the BMS\'s" | in A\nor W',
                        "writable": True,
                        "modbus": {"table": "holding", "offset": 0, "type": "int32", "word_order": "little"},
                    },
                    {
                        "source": "config/LightIntensity",
                        "modbus": {"table": "input", "offset": 2, "type": "uint16"},
                    },
                    {"source": "config/VendorFlag", "modbus": {"table": "discrete-input", "offset": 3}},
                ]
            }
        },
        "chargers": [{"id": "CP|1", "template": "t", "modbus": {"unit": 7, "base_address": 100}}],
        "modbus": {"layout_version": 4, "gateway_block": 5000},
    }
)


def test_awkward_rows() -> None:
    rows = by_point(register_rows(AWKWARD), "CP|1")
    limit = rows["1/limit"]
    assert (limit.unit, limit.address, limit.word_order, limit.sentinel) == (
        "7",
        "100",
        "little",
        "0x80000000",
    )
    assert limit.range == "0..1000"  # the source's own limits where the template gives none
    light = rows["config/LightIntensity"]
    assert (light.engineering_unit, light.scale) == ("Percent", "1")
    flag = rows["config/VendorFlag"]  # an untyped key in a bit: on/off, with the BACnet object's texts
    assert (flag.type, flag.range, flag.engineering_unit) == ("bit", "0=inactive, 1=active", "")


def test_csv_round_trip(tmp_path: Path) -> None:
    rows = register_rows(AWKWARD)
    path = tmp_path / "list.csv"
    write_csv(rows, path)
    assert read_csv(path) == rows
    with path.open(encoding="utf-8", newline="") as file:
        table = list(csv.DictReader(file))
    assert tuple(table[0]) == COLUMNS
    limit = next(line for line in table if line["point"] == "1/limit")
    assert limit["description"] == 'Limit, "the BMS\'s" | in A\nor W'
    assert (limit["charger"], limit["engineering unit"], limit["word order"]) == ("CP|1", "A", "little")
    raw = path.read_bytes()
    assert raw.startswith(b"charger,unit,table,address,reference,registers,type,word order,scale,")
    assert b"\r\n" in raw  # the default (excel) dialect


def test_read_csv_refuses_another_file(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a Modbus register list"):
        read_csv(other)


UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def test_markdown_says_how_to_read_it_and_has_one_table(tmp_path: Path) -> None:
    rows = register_rows(AWKWARD)
    path = tmp_path / "list.md"
    write_markdown(rows, AWKWARD, path)
    text = path.read_text(encoding="utf-8")
    head, _, _ = text.partition("\n| charger |")
    checksum = RegisterMap(AWKWARD).checksum
    assert head.startswith("# Modbus register list\n")
    assert f"Layout version 4, checksum 0x{checksum:08X}" in head
    assert "input registers 5000-5013" in head
    assert "every unit: 1, 7" in head
    for said in ("sentinel", "NaN", "**2** (illegal data address)", "**3** (illegal data value)", "**11**"):
        assert said in head, said

    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(rows)
    assert table[0] == "| " + " | ".join(COLUMNS) + " |"
    for line in table:
        assert len(UNESCAPED_PIPE.split(line)) == len(COLUMNS) + 2, line
    limit = next(line for line in table if "1/limit" in line)
    assert "| CP\\|1 |" in limit
    assert "| Limit \\| A |" in limit
    assert 'Limit, "the BMS\'s" \\| in A or W |' in limit


@pytest.mark.parametrize(
    ("given", "csv_name", "markdown_name"),
    [
        ("list.csv", "list.csv", "list.md"),
        ("list.md", "list.csv", "list.md"),
        ("registers", "registers", "registers.md"),
        ("list.txt", "list.txt", "list.md"),
    ],
)
def test_list_paths(given: str, csv_name: str, markdown_name: str, tmp_path: Path) -> None:
    assert list_paths(tmp_path / given) == (tmp_path / csv_name, tmp_path / markdown_name)


def test_shipped_register_list_is_current(example: Mapping, tmp_path: Path) -> None:
    fresh = tmp_path / SHIPPED.name
    assert export_modbus(example, fresh) == EXAMPLE_ROWS
    for shipped, written in zip(list_paths(SHIPPED), list_paths(fresh), strict=True):
        assert shipped.read_bytes() == written.read_bytes(), f"{shipped} is out of date; {REGENERATE}"


# -- the command ------------------------------------------------------------------------------------------------


def test_export_modbus_command_writes_both_files(tmp_path: Path) -> None:
    target = tmp_path / "registers.csv"
    result = _gateway_cli("export-modbus", str(target), "--mapping", "mappings/example.yaml")
    assert result.returncode == 0, result.stderr
    markdown = tmp_path / "registers.md"
    assert result.stdout == (
        f"Modbus register list: {EXAMPLE_ROWS} registers of 94 chargers/slots in {target} and {markdown}\n"
    )
    assert len(read_csv(target)) == EXAMPLE_ROWS
    assert markdown.read_text(encoding="utf-8").startswith("# Modbus register list\n")


def test_export_modbus_to_markdown_puts_the_csv_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "registers.md"
    assert main(["export-modbus", str(target), "--mapping", str(EXAMPLE)]) == 0
    beside = tmp_path / "registers.csv"
    assert capsys.readouterr().out.endswith(f"in {target} and {beside}\n")
    assert target.read_text(encoding="utf-8").startswith("# Modbus register list\n")
    assert len(read_csv(beside)) == EXAMPLE_ROWS


def test_export_modbus_refuses_a_bad_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("chargers:\n  - id: CP1\n    colour: blue\n")
    target = tmp_path / "registers.csv"
    result = _gateway_cli("export-modbus", str(target), env={"GATEWAY_MAPPING": str(bad)})
    assert result.returncode == 1
    assert f"{bad}:3: chargers[0].colour: unknown key" in result.stderr
    assert result.stdout == ""
    assert not target.exists()
    assert not target.with_suffix(".md").exists()


def test_export_modbus_says_when_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "registers.csv"
    assert main(["export-modbus", str(target), "--mapping", str(EXAMPLE)]) == 1
    assert (
        f"cannot write the register list: [Errno 2] No such file or directory: '{target}'"
        in capsys.readouterr().err
    )


# -- every listed register over TCP -----------------------------------------------------------------------------

FREE_SLOT_UNIT = 15  # C1-* slot 5: no charger holds it
SENTINEL_WORDS = {
    "int16": [0x8000],
    "uint16": [0xFFFF],
    "int32": [0x8000, 0x0000],
    "uint32": [0xFFFF, 0xFFFF],
    "float32": [0x7FC0, 0x0000],
}
Read = list[int] | list[bool]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, modbus_enabled=True, modbus_host="127.0.0.1", modbus_port=0, mapping=EXAMPLE
    )


@pytest.fixture
def mapping(example: Mapping) -> Mapping:
    return example


@pytest.fixture
async def client(gateway: RunningGateway) -> AsyncIterator[AsyncModbusTcpClient]:
    connected = AsyncModbusTcpClient("127.0.0.1", port=gateway.app.state.services.modbus.port, timeout=3)
    assert await connected.connect()
    yield connected
    connected.close()


async def read(client: AsyncModbusTcpClient, table: str, unit: int, address: int, count: int) -> Read:
    """The registers (or bits) at an address; fails on an exception answer."""
    function = {
        "coil": client.read_coils,
        "discrete-input": client.read_discrete_inputs,
        "input": client.read_input_registers,
        "holding": client.read_holding_registers,
    }[table]
    result = await function(address, count=count, device_id=unit)
    assert not result.isError(), f"unit {unit} {table} {address}: exception {result.exception_code}"
    if table in ("coil", "discrete-input"):
        return list(result.bits[:count])
    return list(result.registers)


def decode(client: AsyncModbusTcpClient, row: dict[str, str], words: Read) -> Any:
    """A row's value as pymodbus's own converters read it (not ours)."""
    kind = row["type"]
    if kind == "bit":
        return words[0]
    datatype = getattr(client.DATATYPE, kind.upper())
    order = row["word order"] or "big"
    return client.convert_from_registers([int(w) for w in words], datatype, word_order=order)  # type: ignore[arg-type]


async def test_every_listed_register_reads_over_tcp(
    gateway: RunningGateway, client: AsyncModbusTcpClient, mapping: Mapping, tmp_path: Path
) -> None:
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        assert (await cp.boot()).status == "Accepted"
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        sampled = [
            {"value": "12345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7200.5", "measurand": "Power.Active.Import", "unit": "W"},
            *(
                {"value": value, "measurand": "Current.Import", "phase": phase, "unit": "A"}
                for phase, value in (("L1", "16.1"), ("L2", "16.2"), ("L3", "15.9"))
            ),
        ]
        await cp.call(
            call.MeterValues(
                connector_id=1, meter_value=[{"timestamp": "2026-11-22T10:00:00Z", "sampled_value": sampled}]
            )
        )
        assert await eventually(lambda: read(client, "input", 1, 22, 1), [159]) == [159]

        target = tmp_path / "registers.csv"
        export_modbus(mapping, target)
        with target.open(encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file))
        assert len(rows) == EXAMPLE_ROWS

        values: dict[tuple[str, int, str, str], Any] = {}  # (charger, unit, table, point or name) -> value
        raw: dict[tuple[str, int, str, str], Read] = {}
        for row in rows:
            units = [1, FREE_SLOT_UNIT] if row["unit"] == "every unit" else [int(row["unit"])]
            for unit in units:
                words = await read(client, row["table"], unit, int(row["address"]), int(row["registers"]))
                assert len(words) == int(row["registers"]) or row["type"] == "bit"
                key = (row["charger"], unit, row["table"], row["point"] or row["name"])
                raw[key] = words
                values[key] = decode(client, row, words)
    assert len(raw) == EXAMPLE_ROWS + 2 * len(GATEWAY_FIELDS)

    def cp1(point: str, table: str = "input") -> Any:
        return values[("CP1", 1, table, point)]

    assert cp1("online") == 1  # the quality register
    assert cp1("registration") == 1  # Accepted
    assert cp1("1/status") == 3  # Charging
    assert cp1("1/error_code") == 7  # NoError
    assert cp1("1/meter/Energy.Active.Import.Register") == 12345
    assert cp1("1/meter/Power.Active.Import") == 7200.5
    currents = [cp1(f"1/meter/Current.Import/{phase}") for phase in ("L1", "L2", "L3")]
    assert currents == [161, 162, 159]  # tenths of an ampere (scale 10)

    # the gateway block, alike in unit 1 and in a slot's unit, as input and as holding registers
    registers = RegisterMap(mapping)
    for unit in (1, FREE_SLOT_UNIT):
        for table in ("input", "holding"):
            block = {
                name: values[("gateway", unit, table, name)] for name in (f.name for f in GATEWAY_FIELDS)
            }
            assert block["identification"] == "OCGW"
            assert block["block version"] == 1
            assert block["layout version"] == registers.layout_version
            assert block["layout checksum"] == registers.checksum
            assert block["chargers"] == 4  # those listed by id; no pattern slot is taken
            assert block["chargers online"] == 1

    # a slot no charger holds: every value its sentinel, its quality register offline
    free = {key: words for key, words in raw.items() if key[0] == "C1-* slot 5"}
    assert len(free) == 17
    types = {(row["charger"], row["point"]): row["type"] for row in rows}
    for (charger, unit, _, point), words in free.items():
        assert unit == FREE_SLOT_UNIT
        kind = types[(charger, point)]
        if point == "online":
            assert words == [0]
        elif kind == "bit":
            assert words == [False], point
        elif kind == "string":
            assert set(words) == {0}, point
        else:
            assert words == SENTINEL_WORDS[kind], point
    assert math.isnan(values[("C1-* slot 5", FREE_SLOT_UNIT, "input", "1/meter/Power.Active.Import")])
    assert math.isnan(values[("C1-* slot 5", FREE_SLOT_UNIT, "holding", "1/limit")])
