"""The EDE export: the gateway's BACnet objects as a B.I.G.-EU Engineering Data Exchange point list (layout 2.3).

A BMS engineer imports the four files to engineer the gateway's device offline:

- `<prefix>_EDE.csv`: the project header and one row per object, the device (object type 8) first, then the point
  objects by object type and instance;
- `<prefix>_StateTexts.csv`: the texts of binary (inactive, active) and multistate (state 1..n) objects, one row
  per distinct tuple of texts (binary and multistate texts apart), numbered from 1 in order of first use;
- `<prefix>_ObjTypes.csv` and `<prefix>_Units.csv`: the object-type and engineering-unit codes used, with their
  names.

Conventions (`/work/shared/reference/EDE.md`): `;` separates fields, UTF-8 without BOM, CRLF line ends, a row whose
first cell starts with `#` is a title or comment, booleans are `Y`/`N`, numbers are decimal with a `.`. The format
has no quoting, so a `;` or line break in a text (a description, a state text) becomes `,` or a space.

The rows come from the same `ObjectPlan`s the running device builds its objects from
(`gateway.bacnet.objects`), so what is imported is what the device serves. `write_ede` and `read_ede` need no
BACnet stack; `export_ede` plans the objects the way `ocpp-gateway run` does (without binding a socket).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.bacnet.objects import ObjectPlan
from gateway.bacnet_units import UNITS, unit_number
from gateway.mapping import BacnetObjectType
from points import Kind, Value

if TYPE_CHECKING:
    from gateway.mapping import Mapping
    from gateway.settings import Settings

LAYOUT_VERSION = "2.3"
DEVICE_TYPE = 8
NEWLINE = "\r\n"
SEPARATOR = ";"

COLUMNS: tuple[str, ...] = (
    "keyname",
    "device obj.-instance",
    "object-name",
    "object-type",
    "object-instance",
    "description",
    "present-value-default",
    "min-present-value",
    "max-present-value",
    "settable",
    "supports COV",
    "hi-limit",
    "low-limit",
    "state-text-reference",
    "unit-code",
    "vendor-specific-address",
)
MANDATORY_COLUMNS = 5
HEADER_KEYS = frozenset(
    {
        "PROJECT_NAME",
        "VERSION_OF_REFERENCEFILE",
        "TIMESTAMP_OF_LAST_CHANGE",
        "AUTHOR_OF_LAST_CHANGE",
        "VERSION_OF_LAYOUT",
    }
)

ABBREVIATIONS: dict[BacnetObjectType, str] = {
    BacnetObjectType.ANALOG_INPUT: "AI",
    BacnetObjectType.ANALOG_VALUE: "AV",
    BacnetObjectType.BINARY_INPUT: "BI",
    BacnetObjectType.BINARY_VALUE: "BV",
    BacnetObjectType.MULTI_STATE_INPUT: "MSI",
    BacnetObjectType.MULTI_STATE_VALUE: "MSV",
    BacnetObjectType.CHARACTERSTRING_VALUE: "CSV",
}
OBJECT_TYPE_NAMES: dict[int, str] = {
    BacnetObjectType.ANALOG_INPUT.number: "Analog Input",
    BacnetObjectType.ANALOG_VALUE.number: "Analog Value",
    BacnetObjectType.BINARY_INPUT.number: "Binary Input",
    BacnetObjectType.BINARY_VALUE.number: "Binary Value",
    DEVICE_TYPE: "Device",
    BacnetObjectType.MULTI_STATE_INPUT.number: "Multistate Input",
    BacnetObjectType.MULTI_STATE_VALUE.number: "Multistate Value",
    BacnetObjectType.CHARACTERSTRING_VALUE.number: "CharacterString Value",
}


def default_prefix(device_name: str) -> str:
    """The file-name prefix for a device: its name with anything but ASCII letters and digits as `_`."""
    return re.sub(r"[^A-Za-z0-9]", "_", device_name)


def write_ede(
    directory: Path,
    plans: Sequence[ObjectPlan],
    *,
    device_id: int,
    device_name: str,
    device_description: str,
    project: str,
    author: str = "ocpp-gateway",
    prefix: str | None = None,
) -> list[Path]:
    """Write the EDE file set for a device holding `plans` into `directory` (made if missing); returns the paths
    of the main table, StateTexts, ObjTypes and Units files, in that order."""
    prefix = default_prefix(device_name) if prefix is None else prefix
    ordered = sorted(plans, key=lambda plan: (plan.object_type.number, plan.instance))
    references: dict[tuple[Kind, tuple[str, ...]], int] = {}  # (kind, texts) -> reference number
    units: set[int] = set()
    rows = [_device_row(device_id, device_name, device_description)]
    for plan in ordered:
        rows.append(_object_row(plan, device_id, references, units))

    header = [
        ["# Engineering-Data-Exchange - B.I.G.-EU"],
        ["PROJECT_NAME", project],
        ["VERSION_OF_REFERENCEFILE", "1"],
        ["TIMESTAMP_OF_LAST_CHANGE", datetime.date.today().isoformat()],
        ["AUTHOR_OF_LAST_CHANGE", author],
        ["VERSION_OF_LAYOUT", LAYOUT_VERSION],
        [
            "#"
            + SEPARATOR.join(
                ["mandatory"] * MANDATORY_COLUMNS + ["optional"] * (len(COLUMNS) - MANDATORY_COLUMNS)
            )
        ],
        ["# " + SEPARATOR.join(COLUMNS)],
    ]
    longest = max((len(texts) for _, texts in references), default=2)
    state_titles = ["Text 1 or Inactive-Text", "Text 2 or Active-Text"] + [
        f"Text {n}" for n in range(3, longest + 1)
    ]
    state_texts = [
        ["#State Text Reference"],
        ["#Reference Number", *state_titles],
        *([str(number), *texts] for (_, texts), number in references.items()),
    ]
    type_codes = sorted({DEVICE_TYPE} | {plan.object_type.number for plan in ordered})
    object_types = [
        ["#Encoding of BACnet Object Types"],
        ["#Code", "Object Type"],
        *([str(code), OBJECT_TYPE_NAMES[code]] for code in type_codes),
    ]
    unit_names = {code: name for name, code in UNITS.items()}
    unit_rows = [
        ["#Encoding of BACnet Engineering Units"],
        ["#Code", "Unit Text"],
        *([str(code), unit_names[code]] for code in sorted(units)),
    ]

    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "EDE": header + rows,
        "StateTexts": state_texts,
        "ObjTypes": object_types,
        "Units": unit_rows,
    }
    paths: list[Path] = []
    for suffix, table in files.items():
        path = directory / f"{prefix}_{suffix}.csv"
        _write_table(path, table)
        paths.append(path)
    return paths


def read_ede(path: Path) -> list[dict[str, str]]:
    """The object rows of an `_EDE.csv` main table, each keyed by the column titles (the device row included;
    `#` rows and the header's key rows skipped; missing trailing cells are empty)."""
    rows: list[dict[str, str]] = []
    for cells in _read_table(path):
        if cells[0] in HEADER_KEYS:
            continue
        cells = cells + [""] * (len(COLUMNS) - len(cells))
        rows.append(dict(zip(COLUMNS, cells[: len(COLUMNS)], strict=True)))
    return rows


def read_state_texts(path: Path) -> dict[int, list[str]]:
    """The texts of a `_StateTexts.csv` file by reference number (trailing empty cells dropped)."""
    texts: dict[int, list[str]] = {}
    for cells in _read_table(path):
        values = list(cells[1:])
        while values and not values[-1]:
            values.pop()
        texts[int(cells[0])] = values
    return texts


async def export_ede(settings: Settings, mapping: Mapping, directory: Path) -> list[Path]:
    """Plan the device's objects as `ocpp-gateway run` would (from the mapping and the database at
    `settings.database`) and write them as EDE files into `directory`; no socket is bound.

    Instances handed out to points the mapping does not place are kept in the database, as the running gateway
    keeps them, so the exported list and the device agree."""
    from gateway.services import Services  # imports the BACnet stack: only when exporting
    from gateway.store import Store

    if not settings.bacnet_enabled:
        settings = settings.model_copy(update={"bacnet_enabled": True})
    store = Store(settings.database)
    await store.start()
    try:
        services = Services(settings, store, mapping)
        bacnet = services.bacnet
        assert bacnet is not None
        await services.load()
        await bacnet.prepare()
        paths = write_ede(
            directory,
            bacnet.object_plans(),
            device_id=settings.bacnet_device_id,
            device_name=settings.bacnet_device_name,
            device_description=settings.bacnet_description,
            project=settings.bacnet_device_name,
        )
        await store.flush()
        await services.stop()
    finally:
        await store.stop()
    return paths


# -- rows -------------------------------------------------------------------------------------------------------


def _device_row(device_id: int, name: str, description: str) -> list[str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        {
            "keyname": f"{device_id}_DEV",
            "device obj.-instance": str(device_id),
            "object-name": _text(name),
            "object-type": str(DEVICE_TYPE),
            "object-instance": str(device_id),
            "description": _text(description),
            "settable": "N",
            "supports COV": "N",
        }
    )
    return list(row.values())


def _object_row(
    plan: ObjectPlan,
    device_id: int,
    references: dict[tuple[Kind, tuple[str, ...]], int],
    units: set[int],
) -> list[str]:
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        {
            "keyname": f"{device_id}_{ABBREVIATIONS[plan.object_type]}_{plan.instance}",
            "device obj.-instance": str(device_id),
            "object-name": _text(plan.name),
            "object-type": str(plan.object_type.number),
            "object-instance": str(plan.instance),
            "description": _text(plan.description),
            "settable": "Y" if plan.writable else "N",
            "supports COV": "Y",
            "vendor-specific-address": _text(plan.point_id),
        }
    )
    if plan.commandable and plan.relinquish_default is not None:
        row["present-value-default"] = _value(plan.relinquish_default)
    if plan.kind is Kind.ANALOG:
        if plan.minimum is not None:
            row["min-present-value"] = _number(plan.minimum)
        if plan.maximum is not None:
            row["max-present-value"] = _number(plan.maximum)
        code = unit_number(plan.units or "no-units")
        units.add(code)
        row["unit-code"] = str(code)
    elif plan.kind in (Kind.BINARY, Kind.MULTISTATE):
        texts: tuple[str, ...]
        if plan.kind is Kind.BINARY:
            texts = (_text(plan.inactive_text), _text(plan.active_text))
        else:
            texts = tuple(_text(state) for state in plan.states)
            row["min-present-value"] = "1"
            row["max-present-value"] = str(len(plan.states))
        # Objects with the same texts share a reference; binary and multistate texts never do.
        row["state-text-reference"] = str(references.setdefault((plan.kind, texts), len(references) + 1))
    return list(row.values())


def _value(value: Value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return _number(value)
    return "" if value is None else _text(value)


def _number(value: float) -> str:
    """Decimal, no exponent, no trailing `.0`: 32.0 -> '32', 0.1 -> '0.1'."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _text(text: str) -> str:
    """A text as one cell: the format has no quoting, so no separator and no line break."""
    return " ".join(text.replace(SEPARATOR, ",").splitlines())


# -- files ------------------------------------------------------------------------------------------------------


def _write_table(path: Path, rows: list[list[str]]) -> None:
    text = "".join(SEPARATOR.join(row) + NEWLINE for row in rows)
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write(text)


def _read_table(path: Path) -> list[list[str]]:
    """The rows of an EDE sheet that are not titles or comments (a first cell starting with `#`) or empty."""
    rows: list[list[str]] = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        cells = line.split(SEPARATOR)
        if not line.strip() or cells[0].lstrip().startswith("#"):
            continue
        rows.append(cells)
    return rows
