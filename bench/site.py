"""The benchmarks' site: a mapping file that lists N chargers by id (BENCH-0001, BENCH-0002, ...), each with the
example's one-connector template, a block of 100 BACnet instances and 100 Modbus addresses (50 chargers per
unit), as an installer would map a large car park."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "mappings" / "example.yaml"
TEMPLATE = "generic-ac-1"
CHARGERS_PER_UNIT = 50
BASE_INSTANCE = 100_000


def charger_id(number: int) -> str:
    """The id of bench charger `number` (from 1)."""
    return f"BENCH-{number:04d}"


def site_mapping(chargers: int) -> dict[str, Any]:
    """The mapping: `chargers` listed chargers, the example's template, authorize-all."""
    example = yaml.safe_load(EXAMPLE.read_text())
    entries = [
        {
            "id": charger_id(index + 1),
            "registration": "Accepted",
            "template": TEMPLATE,
            "bacnet": {"base_instance": BASE_INSTANCE + 100 * index},
            "modbus": {
                "unit": 1 + index // CHARGERS_PER_UNIT,
                "base_address": 100 * (index % CHARGERS_PER_UNIT),
            },
        }
        for index in range(chargers)
    ]
    return {
        "version": 1,
        "templates": {TEMPLATE: example["templates"][TEMPLATE]},
        "chargers": entries,
        "authorization": {"mode": "authorize-all"},
    }


def write_site(directory: Path, chargers: int) -> Path:
    """Write the mapping for `chargers` chargers into `directory`; returns its path."""
    path = directory / f"site-{chargers}.yaml"
    path.write_text(yaml.safe_dump(site_mapping(chargers), sort_keys=False))
    return path


def modbus_address(number: int, offset: int) -> tuple[int, int]:
    """(unit, address) of a template offset of bench charger `number` (from 1)."""
    index = number - 1
    return 1 + index // CHARGERS_PER_UNIT, 100 * (index % CHARGERS_PER_UNIT) + offset


def bacnet_instance(number: int, offset: int) -> int:
    """The BACnet instance of a template offset of bench charger `number` (from 1)."""
    return BASE_INSTANCE + 100 * (number - 1) + offset
