"""Plausibility checks of what a charger sends, after its version's JSON schema has passed it and before
anything is stored: integers a database and a BMS can hold, text that is valid Unicode, timestamps that exist and
lie near now, connector ids the charger can have. Version-neutral; each OCPP version module says which fields
are connector ids and timestamps, and answers `Implausible` with its CALLERROR for a value out of range.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

# JSON numbers beyond this are no longer exact in a double: a BMS, a spreadsheet or JavaScript would misread them.
MAX_SAFE_INTEGER = 2**53 - 1

# Lone surrogates and huge integers can only arrive as these: a \uD800-\uDFFF escape, or 16 digits in a row.
# Most frames have neither, so the walk through the payload is skipped.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONG_NUMBER = re.compile(r"\d{16}|[eE][+-]?\d")


class Implausible(ValueError):
    """A value out of range for what it is (OCPP: PropertyConstraintViolation); `field` is its JSON path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def check_values(payload: Any, raw: str) -> None:
    """Refuse integers beyond ±(2^53 - 1), numbers that are not finite, and text with lone surrogates (invalid
    Unicode, which SQLite and JSON answers cannot carry), anywhere in `payload`."""
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    numbers = _LONG_NUMBER.search(raw) is not None
    if surrogates or numbers:
        _walk(payload, "", surrogates=surrogates)


def _walk(value: Any, path: str, *, surrogates: bool) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if surrogates:
                _text(key, f"{path}.{key!r}".lstrip("."))
            _walk(item, f"{path}.{key}".lstrip("."), surrogates=surrogates)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", surrogates=surrogates)
    elif isinstance(value, str):
        if surrogates:
            _text(value, path)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise Implausible(path, f"{_short(value)} is beyond the largest exact integer, 2^53 - 1")
    elif isinstance(value, float) and not math.isfinite(value):
        raise Implausible(path, "the number is too large to be held")


def _text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Implausible(path, f"'{safe_text(text)}' is not valid Unicode (a lone surrogate)") from None


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def safe_text(text: str) -> str:
    """`text` with what UTF-8 cannot carry (lone surrogates) written as `\\udXXX` escapes: safe for SQLite, logs
    and JSON answers."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def safe_value(value: Any) -> Any:
    """A JSON value with every text made safe (`safe_text`), for answers to the gateway's own calls, which are
    kept and shown as they came."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(key)): safe_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [safe_value(item) for item in value]
    return value


def check_time(moment: datetime, field: str, now: datetime, max_age: timedelta, max_ahead: timedelta) -> None:
    """Refuse a charger's timestamp further from `now` than the gateway allows (a clock that is years off, or a
    date a calculation with it would overflow)."""
    if moment < now - max_age:
        raise Implausible(field, f"{moment.isoformat()} is more than {max_age.days} days in the past")
    if moment > now + max_ahead:
        raise Implausible(
            field, f"{moment.isoformat()} is more than {max_ahead.total_seconds():.0f} s ahead of the gateway"
        )


def check_connector(connector_id: int, field: str, highest: int, *, lowest: int = 0) -> None:
    """Refuse a connector id outside `lowest`..`highest` (0 is the charge point as a whole)."""
    if not lowest <= connector_id <= highest:
        raise Implausible(field, f"connector {connector_id} is outside {lowest}..{highest}")


def check_not_negative(value: float, field: str) -> None:
    if value < 0:
        raise Implausible(field, f"a meter reading cannot be negative ({value})")
