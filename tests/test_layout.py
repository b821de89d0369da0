"""Point layout: the example mapping's numbering, placing one discovered charger, and the BACnet units."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from gateway.bacnet_units import UNITS, default_units, unit_number
from gateway.layout import Layout, ModbusAddress, PlacedPoint, expand, placements
from gateway.mapping import BacnetObjectType, Mapping, ModbusTable, load_mapping
from gateway.sources import MEASURANDS
from points import Kind

EXAMPLE = Path(__file__).resolve().parents[1] / "mappings" / "example.yaml"

AI, AV = BacnetObjectType.ANALOG_INPUT, BacnetObjectType.ANALOG_VALUE
BI, BV = BacnetObjectType.BINARY_INPUT, BacnetObjectType.BINARY_VALUE
MSI = BacnetObjectType.MULTI_STATE_INPUT
CSV = BacnetObjectType.CHARACTERSTRING_VALUE


@pytest.fixture(scope="module")
def example() -> Mapping:
    return load_mapping(EXAMPLE)


@pytest.fixture(scope="module")
def layout(example: Mapping) -> Layout:
    return expand(example)


def load(tmp_path: Path, text: str) -> Mapping:
    path = tmp_path / "site.yaml"
    path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return load_mapping(path)


def by_source(points: list[PlacedPoint]) -> dict[str, PlacedPoint]:
    return {placed.source.text: placed for placed in points}


# -- the example mapping ----------------------------------------------------------------------------------------


def test_example_assigns_a_template_to_every_seed_charger(example: Mapping) -> None:
    assert {entry.label: entry.template for entry in example.chargers} == {
        "CP1": "generic-ac-1",
        "49839108034579556": "generic-ac-2",
        "ACSMART-01": "ac-smart",
        "SICHARGE-D-01": "sicharge-d",
        "C1-*": "amina",
        "M1-*": "amina",
        "ACSMART-*": "ac-smart",
        "SICHARGE-D-*": "sicharge-d",
        "SIM-*": "generic-ac-2",
        "TEST-*": None,
    }
    assert {name: len(t.points) for name, t in example.templates.items()} == {
        "generic-ac-1": 18,
        "generic-ac-2": 34,
        "amina": 19,
        "ac-smart": 20,
        "sicharge-d": 27,
    }


def test_example_counts_every_slot_of_its_patterns(layout: Layout) -> None:
    # 18 + 34 + 20 + 27 objects for the chargers by id, 19 for each of C1-*'s 20 and M1-*'s 10 slots, and 20
    # slots each of ACSMART-* (20 objects), SICHARGE-D-* (27) and SIM-* (34)
    assert len(layout.bacnet_objects) == 18 + 34 + 20 + 27 + 19 * 30 + (20 + 27 + 34) * 20
    instances = [placed.bacnet[1] for placed in layout.bacnet_objects if placed.bacnet is not None]
    assert (min(instances), max(instances)) == (1000, 51970)
    assert len(set(placed.bacnet for placed in layout.bacnet_objects)) == len(instances)


def test_example_cp1_numbers(example: Mapping, layout: Layout) -> None:
    points = by_source(layout.for_charger(0))
    energy = points["1/meter/Energy.Active.Import.Register"]
    assert energy.charger == "CP1"
    assert energy.bacnet == (AI, 1016)
    assert energy.modbus == ModbusAddress(unit=1, table=ModbusTable.INPUT, address=16, width=2)
    assert energy.units == "watt-hours"
    assert energy.object_name() == "CP1/C1 Energy"
    assert points["online"].bacnet == (BI, 1000)
    assert points["online"].modbus == ModbusAddress(1, ModbusTable.INPUT, 0, 1)
    assert points["1/status"].bacnet == (MSI, 1010)
    assert points["1/limit"].bacnet == (AV, 1024)
    assert points["1/limit"].modbus == ModbusAddress(1, ModbusTable.HOLDING, 24, 2)
    assert points["1/smart_charging"].bacnet == (BV, 1013)
    assert points["1/smart_charging"].modbus == ModbusAddress(1, ModbusTable.COIL, 13, 1)
    assert points["1/id_tag"].bacnet == (CSV, 1030)
    assert points["1/id_tag"].modbus == ModbusAddress(1, ModbusTable.INPUT, 30, 10)
    assert points["1/info"].modbus is None  # a text for BACnet only
    assert points["config/HeartbeatInterval"].units == "seconds"
    assert placements(example, "CP1") == layout.for_charger(0)


def test_example_second_connector_and_dc_charger(layout: Layout) -> None:
    bender = by_source(layout.for_charger(1))
    assert bender["2/limit"].bacnet == (AV, 1164)
    assert bender["2/limit"].modbus == ModbusAddress(1, ModbusTable.HOLDING, 164, 2)
    assert bender["0/limit"].modbus == ModbusAddress(1, ModbusTable.HOLDING, 103, 2)
    sicharge = by_source(layout.for_charger(3))
    assert sicharge["2/meter/SoC"].bacnet == (AI, 1363)
    assert sicharge["2/meter/SoC"].modbus == ModbusAddress(1, ModbusTable.INPUT, 363, 1)
    assert sicharge["2/meter/SoC"].units == "percent"
    assert not [text for text in sicharge if text.endswith(("/limit", "/smart_charging"))]


def test_example_pattern_slots(example: Mapping, layout: Layout) -> None:
    # C1-*: slot n at 10000 + 100 n, each slot in its own Modbus unit 10 + n
    amina_c = by_source(placements(example, "C1-1234567890", 3))
    assert amina_c["online"].charger == "C1-1234567890"
    assert amina_c["online"].slot == 3
    assert amina_c["online"].bacnet == (BI, 10300)
    assert amina_c["online"].modbus == ModbusAddress(13, ModbusTable.INPUT, 0, 1)
    rotary = amina_c["config/Cst_MaxCurrentRotarySwitchSetting"]
    assert rotary.bacnet == (AI, 10307)
    assert rotary.modbus == ModbusAddress(13, ModbusTable.INPUT, 7, 1)
    assert not rotary.point.writable
    # M1-*: slot n at 20000 + 100 n, all in unit 2 at 100 n
    amina_m = by_source(placements(example, "M1-42", 9))
    assert amina_m["1/limit"].bacnet == (AV, 20924)
    assert amina_m["1/limit"].modbus == ModbusAddress(2, ModbusTable.HOLDING, 924, 2)
    # the layout holds the same slots, without a charger id
    slot = by_source(layout.for_charger(example.entry_index("M1-42") or 0, 9))
    assert slot["1/limit"].charger is None
    assert slot["1/limit"].bacnet == amina_m["1/limit"].bacnet


def test_placements_outside_the_slots_or_without_template(example: Mapping) -> None:
    with pytest.raises(ValueError, match="C1-\\* has slots 0-19, not 20"):
        placements(example, "C1-1", 20)
    assert placements(example, "TEST-1", 0) == []  # a pattern without template
    assert placements(example, "UNKNOWN-1") == []
    assert placements(example, "CP1", 7) == placements(example, "CP1", 0)  # an id entry has slot 0 only


# -- entries and templates by charger id ------------------------------------------------------------------------


def test_entry_for_takes_the_exact_id_then_patterns_in_file_order(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        """
        templates:
          a: {points: [{source: online}]}
          b: {points: [{source: registration}]}
        chargers:
          - pattern: "C1-*"
            template: a
          - pattern: "C1-9*"
            template: b
          - id: C1-999
            template: b
        """,
    )
    assert mapping.entry_for("C1-999") is mapping.chargers[2]
    assert mapping.entry_for("C1-998") is mapping.chargers[0]  # the first pattern wins
    assert mapping.entry_for("M1-1") is None
    assert mapping.template_for("C1-999") is mapping.templates["b"]
    assert mapping.template_for("C1-998") is mapping.templates["a"]
    assert mapping.template_for("M1-1") is None


def test_untyped_configuration_key_takes_its_kind_from_the_mapping(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        """
        templates:
          vendor:
            points:
              - {source: config/VendorPowerLimit, writable: true, minimum: 0, maximum: 22,
                 bacnet: {type: analog-value, offset: 0}, modbus: {table: holding, offset: 0, type: uint16}}
              - {source: config/VendorLedOn, modbus: {table: discrete-input, offset: 1}}
              - {source: config/VendorName, modbus: {table: input, offset: 2, type: string, length: 8}}
              - {source: config/HeartbeatInterval, modbus: {table: input, offset: 10, type: uint16}}
        chargers:
          - id: CP1
            template: vendor
            bacnet: {base_instance: 0}
            modbus: {base_address: 0}
        """,
    )
    points = by_source(placements(mapping, "CP1"))
    assert points["config/VendorPowerLimit"].kind is Kind.ANALOG
    assert points["config/VendorPowerLimit"].source.writable
    assert points["config/VendorLedOn"].kind is Kind.BINARY
    assert points["config/VendorName"].kind is Kind.STRING
    assert points["config/HeartbeatInterval"].kind is Kind.ANALOG  # a standard key keeps its own kind


def test_absolute_numbers_and_object_name_template(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        """
        templates:
          one:
            points:
              - {source: 1/meter/Power.Active.Import, bacnet: {type: analog-input, instance: 77, units: kilowatts,
                 name: "{charger} power"}, modbus: {table: input, address: 500, type: int32, word_order: little}}
        chargers:
          - id: CP9
            template: one
            modbus: {unit: 5}
        """,
    )
    (placed,) = placements(mapping, "CP9")
    assert placed.bacnet == (AI, 77)
    assert placed.modbus == ModbusAddress(5, ModbusTable.INPUT, 500, 2)
    assert placed.units == "kilowatts"
    assert placed.object_name() == "CP9 power"


def test_unit_per_slot_allows_absolute_addresses_in_a_pattern(tmp_path: Path) -> None:
    mapping = load(
        tmp_path,
        """
        templates:
          one:
            points:
              - {source: 1/status, modbus: {table: input, address: 0, type: uint16}}
        chargers:
          - pattern: "C1-*"
            template: one
            slots: 3
            modbus: {unit: 20, unit_per_slot: true}
        """,
    )
    units = [placed.modbus.unit for placed in expand(mapping).points if placed.modbus is not None]
    assert units == [20, 21, 22]


def test_an_empty_mapping_has_an_empty_layout() -> None:
    assert expand(Mapping()).points == ()


# -- BACnet units -----------------------------------------------------------------------------------------------


def test_unit_numbers_are_the_ashrae_enumeration() -> None:
    expected = {
        "no-units": 95,
        "amperes": 3,
        "milliamperes": 2,
        "volts": 5,
        "kilovolts": 6,
        "watts": 47,
        "kilowatts": 48,
        "watt-hours": 18,
        "kilowatt-hours": 19,
        "volt-amperes": 8,
        "kilovolt-amperes": 9,
        "volt-amperes-reactive": 11,
        "kilovolt-amperes-reactive": 12,
        "volt-ampere-hours-reactive": 242,
        "kilovolt-ampere-hours-reactive": 243,
        "power-factor": 15,
        "percent": 98,
        "degrees-celsius": 62,
        "degrees-fahrenheit": 64,
        "degrees-kelvin": 63,
        "hertz": 27,
        "seconds": 73,
        "minutes": 72,
        "hours": 71,
        "revolutions-per-minute": 104,
    }
    assert {name: UNITS[name] for name in expected} == expected
    assert unit_number("watt-hours") == 18
    assert len(set(UNITS.values())) == len(UNITS)


@pytest.mark.parametrize(
    ("unit", "name"),
    [
        ("A", "amperes"),
        ("V", "volts"),
        ("W", "watts"),
        ("Wh", "watt-hours"),
        ("var", "volt-amperes-reactive"),
        ("varh", "volt-ampere-hours-reactive"),
        ("VA", "volt-amperes"),
        ("Percent", "percent"),
        ("Celsius", "degrees-celsius"),
        ("Fahrenheit", "degrees-fahrenheit"),
        ("K", "degrees-kelvin"),
        (None, "no-units"),
        ("furlongs", "no-units"),
    ],
)
def test_default_units(unit: str | None, name: str) -> None:
    assert default_units(unit) == name
    assert name in UNITS


def test_every_measurand_unit_has_a_bacnet_unit() -> None:
    for measurand, unit in MEASURANDS.items():
        if unit is not None:
            assert default_units(unit) != "no-units", measurand
