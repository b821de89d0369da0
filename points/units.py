"""Units of readings: the SI-base form a point stores (Wh, not kWh) and a strict parser for numeric text."""

from __future__ import annotations

import math
from decimal import Decimal

# unit -> (base unit, factor)
_SCALED: dict[str, tuple[str, int]] = {
    "kWh": ("Wh", 1000),
    "kW": ("W", 1000),
    "kvarh": ("varh", 1000),
    "kvar": ("var", 1000),
    "kVA": ("VA", 1000),
}

# Spellings chargers send for a unit that has a proper name.
_RENAMED: dict[str, str] = {
    "Celcius": "Celsius",  # the OCPP 1.6 JSON schema allows both spellings
}


def normalize(value: float, unit: str | None) -> tuple[float, str | None]:
    """A reading in its SI-base unit: 1.234 kWh is (1234.0, "Wh"), "Celcius" becomes "Celsius"; any other unit
    (Wh, W, A, V, K, Percent, None, ...) is returned as it came."""
    if unit is None:
        return value, None
    scaled = _SCALED.get(unit)
    if scaled is not None:
        base, factor = scaled
        if not math.isfinite(value):
            return value * factor, base
        # Scale the shortest decimal form, so 1.234 kWh is 1234.0 Wh and not 1233.9999999999998.
        return float(Decimal(repr(float(value))) * factor), base
    return value, _RENAMED.get(unit, unit)


def parse_number(text: str | float | int) -> float:
    """A finite number from a reading: "12.5", " 12 ", "1e3" or 12 give a float; text that is no number, and
    NaN or infinity, raise ValueError."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is a truth value, not a number")
    if isinstance(text, str):
        stripped = text.strip()
        # float() also takes "1_000"; no reading is written that way.
        if not stripped or "_" in stripped:
            raise ValueError(f"{text!r} is not a number")
        try:
            number = float(stripped)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    else:
        try:
            number = float(text)
        except (OverflowError, TypeError):
            raise ValueError(f"{text!r} is not a number a float can hold") from None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return number
