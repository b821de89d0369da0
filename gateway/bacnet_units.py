"""BACnet engineering units the mapping file accepts, by their ASHRAE 135 names and enumeration numbers.

The names are the standard's hyphenated ones (`watt-hours`, `degrees-celsius`), as BACnet tools and EDE
files write them; the numbers are the `BACnetEngineeringUnits` enumeration (checked against bacpypes3's
`EngineeringUnits`). Only units an EV charger's points can have are listed. This module does not import a
BACnet stack.
"""

from __future__ import annotations

# hyphenated name -> BACnetEngineeringUnits enumeration number
UNITS: dict[str, int] = {
    "no-units": 95,
    # electrical current and potential
    "milliamperes": 2,
    "amperes": 3,
    "millivolts": 124,
    "volts": 5,
    "kilovolts": 6,
    # power
    "milliwatts": 132,
    "watts": 47,
    "kilowatts": 48,
    "megawatts": 49,
    "volt-amperes": 8,
    "kilovolt-amperes": 9,
    "megavolt-amperes": 10,
    "volt-amperes-reactive": 11,
    "kilovolt-amperes-reactive": 12,
    "megavolt-amperes-reactive": 13,
    "power-factor": 15,
    # energy
    "joules": 16,
    "kilojoules": 17,
    "megajoules": 126,
    "watt-hours": 18,
    "kilowatt-hours": 19,
    "megawatt-hours": 146,
    "watt-hours-reactive": 203,
    "kilowatt-hours-reactive": 204,
    "megawatt-hours-reactive": 205,
    "volt-ampere-hours": 239,
    "kilovolt-ampere-hours": 240,
    "megavolt-ampere-hours": 241,
    "volt-ampere-hours-reactive": 242,
    "kilovolt-ampere-hours-reactive": 243,
    "megavolt-ampere-hours-reactive": 244,
    # ratios
    "percent": 98,
    "per-mille": 207,
    # temperature
    "degrees-celsius": 62,
    "degrees-kelvin": 63,
    "degrees-fahrenheit": 64,
    # frequency and speed
    "hertz": 27,
    "kilohertz": 129,
    "revolutions-per-minute": 104,
    # time
    "milliseconds": 159,
    "seconds": 73,
    "minutes": 72,
    "hours": 71,
    "days": 70,
}

# A point's unit (as gateway.sources gives it after normalisation) -> the BACnet unit its objects get.
_DEFAULTS: dict[str, str] = {
    "A": "amperes",
    "V": "volts",
    "W": "watts",
    "Wh": "watt-hours",
    "var": "volt-amperes-reactive",
    "varh": "volt-ampere-hours-reactive",
    "VA": "volt-amperes",
    "VAh": "volt-ampere-hours",
    "Percent": "percent",
    "Celsius": "degrees-celsius",
    "Fahrenheit": "degrees-fahrenheit",
    "K": "degrees-kelvin",
    "Hz": "hertz",
    "s": "seconds",
}


def default_units(point_unit: str | None) -> str:
    """The BACnet unit name for a point's unit; `no-units` for None or a unit without a BACnet name."""
    if point_unit is None:
        return "no-units"
    return _DEFAULTS.get(point_unit, "no-units")


def unit_number(name: str) -> int:
    """The enumeration number of a unit name; `KeyError` for a name not in `UNITS`."""
    return UNITS[name]
