"""The EDE export: the file set written from object plans, and `ocpp-gateway export-ede` on the example mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bacnet.ede import COLUMNS, read_ede, read_state_texts, write_ede
from gateway.bacnet.objects import ObjectPlan
from gateway.cli import main
from gateway.layout import expand
from gateway.mapping import BacnetObjectType, load_mapping
from points import Kind

EXAMPLE = Path(__file__).resolve().parents[1] / "mappings" / "example.yaml"

AI, AV = BacnetObjectType.ANALOG_INPUT, BacnetObjectType.ANALOG_VALUE
BI, BV = BacnetObjectType.BINARY_INPUT, BacnetObjectType.BINARY_VALUE
MSI, MSV = BacnetObjectType.MULTI_STATE_INPUT, BacnetObjectType.MULTI_STATE_VALUE
CSV = BacnetObjectType.CHARACTERSTRING_VALUE

ONLINE = ("offline", "online")
STATUS = ("Available", "Charging", "Faulted")

# Not in object order, as a caller might hand them over: the files list them by type and instance.
PLANS = [
    ObjectPlan("CP1/1/info", CSV, 26, "CP1/C1 Info", "Info; more", Kind.STRING),
    ObjectPlan(
        "CP1/1/limit",
        AV,
        24,
        "CP1/C1 Limit",
        "Limit",
        Kind.ANALOG,
        units="amperes",
        cov_increment=1.0,
        writable=True,
        commandable=True,
        relinquish_default=32.0,
        minimum=0.0,
        maximum=32.0,
    ),
    ObjectPlan(
        "CP1/1/meter/Power.Active.Import", AI, 18, "CP1/C1 Power", "Power", Kind.ANALOG, units="watts"
    ),
    ObjectPlan(
        "CP1/1/meter/Current.Import", AI, 20, "CP1/C1 Current", "Current", Kind.ANALOG, units="amperes"
    ),
    ObjectPlan(
        "CP1/1/transaction_id",
        AI,
        1000000,
        "CP1/1/transaction_id",
        "Transaction",
        Kind.ANALOG,
        units="no-units",
        mapped=False,
    ),
    ObjectPlan("CP1/online", BI, 0, "CP1/Online", "Online", Kind.BINARY, states=ONLINE),
    ObjectPlan("CP2/online", BI, 100, "CP2/Online", "Online", Kind.BINARY, states=ONLINE),
    ObjectPlan(
        "CP1/1/smart_charging",
        BV,
        13,
        "CP1/C1 Smart charging",
        "Smart charging",
        Kind.BINARY,
        states=("disabled", "enabled"),
        writable=True,
        commandable=True,
        relinquish_default=False,
    ),
    ObjectPlan("CP1/1/status", MSI, 10, "CP1/C1 Status", "Status", Kind.MULTISTATE, states=STATUS),
    ObjectPlan("CP2/1/status", MSI, 110, "CP2/C1 Status", "Status", Kind.MULTISTATE, states=STATUS),
    ObjectPlan("CP1/mode", MSV, 5, "CP1/Mode", "Mode", Kind.MULTISTATE, states=ONLINE, writable=True),
    ObjectPlan(
        "CP1/0/limit",
        AV,
        3,
        "CP1/Limit",
        "Limit",
        Kind.ANALOG,
        units="kilowatts",
        writable=True,
        commandable=True,
        relinquish_default=7.5,
        minimum=1.5,
        maximum=22.0,
    ),
]


def _write(tmp_path: Path) -> list[Path]:
    return write_ede(
        tmp_path / "ede",
        PLANS,
        device_id=4711,
        device_name="EV gateway #1",
        device_description="Car park chargers",
        project="Car park",
    )


def test_files_are_named_by_the_device_and_use_crlf(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    assert [path.name for path in paths] == [
        "EV_gateway__1_EDE.csv",
        "EV_gateway__1_StateTexts.csv",
        "EV_gateway__1_ObjTypes.csv",
        "EV_gateway__1_Units.csv",
    ]
    for path in paths:
        data = path.read_bytes()
        assert data.endswith(b"\r\n")
        assert data.count(b"\n") == data.count(b"\r\n")
        assert not data.startswith(b"\xef\xbb\xbf")
    custom = write_ede(
        tmp_path / "other",
        PLANS[:1],
        device_id=1,
        device_name="x",
        device_description="",
        project="p",
        prefix="GW",
    )
    assert custom[0] == tmp_path / "other" / "GW_EDE.csv"


def test_main_table_header(tmp_path: Path) -> None:
    lines = _write(tmp_path)[0].read_bytes().decode("utf-8").split("\r\n")
    assert lines[0].startswith("#") and "Engineering-Data-Exchange" in lines[0]
    header = dict(line.split(";", 1) for line in lines[1:6])
    assert header["PROJECT_NAME"] == "Car park"
    assert header["VERSION_OF_LAYOUT"] == "2.3"
    assert header["AUTHOR_OF_LAST_CHANGE"] == "ocpp-gateway"
    assert len(header["TIMESTAMP_OF_LAST_CHANGE"]) == 10  # ISO date
    assert lines[6] == "#" + ";".join(["mandatory"] * 5 + ["optional"] * 11)
    assert lines[7] == "# " + ";".join(COLUMNS)
    assert lines[8].startswith("4711_DEV;")
    assert all(len(line.split(";")) == 16 for line in lines[8:] if line)


def test_round_trip_of_the_object_rows(tmp_path: Path) -> None:
    rows = read_ede(_write(tmp_path)[0])
    assert len(rows) == len(PLANS) + 1
    assert list(rows[0]) == list(COLUMNS)
    assert rows[0] == {
        **dict.fromkeys(COLUMNS, ""),
        "keyname": "4711_DEV",
        "device obj.-instance": "4711",
        "object-name": "EV gateway #1",
        "object-type": "8",
        "object-instance": "4711",
        "description": "Car park chargers",
        "settable": "N",
        "supports COV": "N",
    }
    order = [(int(row["object-type"]), int(row["object-instance"])) for row in rows[1:]]
    assert order == sorted((plan.object_type.number, plan.instance) for plan in PLANS)
    by_key = {row["keyname"]: row for row in rows}
    assert len(by_key) == len(rows)
    assert all(row["device obj.-instance"] == "4711" for row in rows)

    limit = by_key["4711_AV_24"]
    assert limit["object-name"] == "CP1/C1 Limit"
    assert limit["object-type"] == "2"
    assert (limit["present-value-default"], limit["min-present-value"], limit["max-present-value"]) == (
        "32",
        "0",
        "32",
    )
    assert (limit["settable"], limit["supports COV"], limit["unit-code"]) == ("Y", "Y", "3")
    assert limit["vendor-specific-address"] == "CP1/1/limit"
    assert limit["state-text-reference"] == ""
    kw = by_key["4711_AV_3"]
    assert (kw["present-value-default"], kw["min-present-value"], kw["max-present-value"]) == (
        "7.5",
        "1.5",
        "22",
    )
    assert kw["unit-code"] == "48"

    power = by_key["4711_AI_18"]
    assert (power["settable"], power["present-value-default"], power["min-present-value"]) == ("N", "", "")
    assert power["unit-code"] == "47"
    assert by_key["4711_AI_1000000"]["unit-code"] == "95"
    assert by_key["4711_CSV_26"]["description"] == "Info, more"  # no separator inside a cell
    assert by_key["4711_CSV_26"]["unit-code"] == by_key["4711_CSV_26"]["state-text-reference"] == ""

    switch = by_key["4711_BV_13"]
    assert (switch["present-value-default"], switch["settable"], switch["unit-code"]) == ("0", "Y", "")
    status = by_key["4711_MSI_10"]
    assert (status["min-present-value"], status["max-present-value"], status["settable"]) == ("1", "3", "N")
    assert by_key["4711_MSV_5"]["max-present-value"] == "2"


def test_state_texts_are_shared_and_in_order(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    rows = {row["keyname"]: row for row in read_ede(paths[0])}
    texts = read_state_texts(paths[1])
    # numbered from 1 in first use (object order): BI 0, BV 13, MSI 10, MSV 5
    assert texts == {
        1: ["offline", "online"],
        2: ["disabled", "enabled"],
        3: list(STATUS),
        4: ["offline", "online"],
    }
    assert rows["4711_BI_0"]["state-text-reference"] == rows["4711_BI_100"]["state-text-reference"] == "1"
    assert rows["4711_BV_13"]["state-text-reference"] == "2"
    assert rows["4711_MSI_10"]["state-text-reference"] == rows["4711_MSI_110"]["state-text-reference"] == "3"
    # the same two texts, but a multistate object's: not the binary objects' reference
    assert rows["4711_MSV_5"]["state-text-reference"] == "4"
    lines = paths[1].read_bytes().decode("utf-8").split("\r\n")
    assert lines[0] == "#State Text Reference"
    assert lines[1] == "#Reference Number;Text 1 or Inactive-Text;Text 2 or Active-Text;Text 3"
    assert lines[2] == "1;offline;online"


def test_object_types_and_units_list_the_codes_used(tmp_path: Path) -> None:
    paths = _write(tmp_path)
    assert paths[2].read_bytes().decode("utf-8").split("\r\n") == [
        "#Encoding of BACnet Object Types",
        "#Code;Object Type",
        "0;Analog Input",
        "2;Analog Value",
        "3;Binary Input",
        "5;Binary Value",
        "8;Device",
        "13;Multistate Input",
        "19;Multistate Value",
        "40;CharacterString Value",
        "",
    ]
    assert paths[3].read_bytes().decode("utf-8").split("\r\n") == [
        "#Encoding of BACnet Engineering Units",
        "#Code;Unit Text",
        "3;amperes",
        "47;watts",
        "48;kilowatts",
        "95;no-units",
        "",
    ]


# -- the command ------------------------------------------------------------------------------------------------


def _export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(
        [
            "export-ede",
            str(tmp_path / "ede"),
            "--database",
            str(tmp_path / "gateway.sqlite3"),
            "--mapping",
            str(EXAMPLE),
            "--bacnet-device-id",
            "4711",
        ]
    )
    return code, capsys.readouterr().out.splitlines()


def test_export_ede_lists_the_example_mappings_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _export(tmp_path, capsys)
    assert code == 0
    directory = tmp_path / "ede"
    files = sorted(directory.iterdir())
    assert len(files) == 4
    assert sorted(out[:4]) == sorted(str(path) for path in files)
    rows = read_ede(directory / "OCPP_gateway_EDE.csv")
    assert out[4] == f"EDE: {len(rows)} objects of device 4711 in {directory}"
    assert rows[0]["keyname"] == "4711_DEV" and rows[0]["object-type"] == "8"

    objects = {(int(row["object-type"]), int(row["object-instance"])): row for row in rows[1:]}
    placed = [p for p in expand(load_mapping(EXAMPLE)).bacnet_objects if p.charger is not None]
    assert placed
    for point in placed:
        assert point.bacnet is not None and point.charger is not None
        object_type, instance = point.bacnet
        row = objects.get((object_type.number, instance))
        assert row is not None, f"{point.charger} {point.source.text}: no {object_type.value},{instance}"
        assert row["object-name"] == point.object_name()
        assert row["vendor-specific-address"] == f"{point.charger}/{point.source.text}"

    names = [row["object-name"] for row in rows]
    assert len(set(names)) == len(names)
    keynames = [row["keyname"] for row in rows]
    assert len(set(keynames)) == len(keynames)
    texts = read_state_texts(directory / "OCPP_gateway_StateTexts.csv")
    for row in rows[1:]:
        if row["object-type"] in ("3", "5"):
            assert len(texts[int(row["state-text-reference"])]) == 2
        elif row["object-type"] in ("13", "19"):
            assert len(texts[int(row["state-text-reference"])]) == int(row["max-present-value"])
        else:
            assert row["state-text-reference"] == ""
    types = {
        line.split(";")[0] for line in (directory / "OCPP_gateway_ObjTypes.csv").read_text().splitlines()
    }
    assert {row["object-type"] for row in rows} <= types
    units = {line.split(";")[0] for line in (directory / "OCPP_gateway_Units.csv").read_text().splitlines()}
    assert {row["unit-code"] for row in rows if row["unit-code"]} <= units


def test_export_ede_again_gives_the_same_instances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _export(tmp_path, capsys)
    first = read_ede(tmp_path / "ede" / "OCPP_gateway_EDE.csv")
    assert any(row["object-instance"] == "1000000" for row in first)  # unmapped points got instances
    _export(tmp_path, capsys)
    assert read_ede(tmp_path / "ede" / "OCPP_gateway_EDE.csv") == first


def test_export_ede_refuses_a_bad_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "site.yaml"
    mapping.write_text("version: 1\nchargers:\n  - {id: CP1, template: missing}\n", encoding="utf-8")
    code = main(
        [
            "export-ede",
            str(tmp_path / "ede"),
            "--mapping",
            str(mapping),
            "--database",
            str(tmp_path / "gateway.sqlite3"),
        ]
    )
    assert code == 1
    assert "mapping file refused" in capsys.readouterr().err
    assert not (tmp_path / "ede").exists()
