"""OCPP 1.6 plausibility: which fields of each charger-initiated message are connector ids, timestamps and meter
readings, checked after the JSON schema and before anything is stored (see `gateway.plausibility`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ocpp.exceptions import TypeConstraintViolationError

from gateway.plausibility import Implausible, check_connector, check_not_negative, check_time
from gateway.state import parse_time

# Measurands whose readings are register (meter) values: they never go below zero.
_REGISTERS = frozenset(
    {
        "Energy.Active.Export.Register",
        "Energy.Active.Import.Register",
        "Energy.Reactive.Export.Register",
        "Energy.Reactive.Import.Register",
    }
)


@dataclass(frozen=True)
class Limits:
    """What one charger's message is checked against."""

    highest_connector: int
    now: datetime
    max_age: timedelta
    max_ahead: timedelta


def timestamp(text: str, field: str) -> datetime:
    """An OCPP dateTime; a text that is none is a TypeConstraintViolation, a date that cannot be put in UTC (the
    first or last day of the calendar with an offset) is out of range."""
    try:
        moment = parse_time(text)
    except ValueError:
        moment = None
    except OverflowError:
        raise Implausible(field, f"{text!r} is outside the dates the gateway can hold") from None
    if moment is None:
        raise TypeConstraintViolationError(description=f"{field} {text!r} is not an ISO 8601 date-time")
    return moment


def _meter_times(values: list[dict[str, Any]], path: str) -> Iterator[tuple[str, Any]]:
    """(field, timestamp text) of every meterValue."""
    for index, meter_value in enumerate(values):
        yield f"{path}[{index}].timestamp", meter_value["timestamp"]


def _readings(values: list[dict[str, Any]], path: str) -> Iterator[tuple[str, str]]:
    """(field, reading) of every register reading."""
    for index, meter_value in enumerate(values):
        for number, sampled in enumerate(meter_value["sampledValue"]):
            if sampled.get("measurand", "Energy.Active.Import.Register") in _REGISTERS:
                yield f"{path}[{index}].sampledValue[{number}].value", sampled["value"]


def _check_readings(values: list[dict[str, Any]], path: str) -> None:
    for field, text in _readings(values, path):
        try:
            reading = float(text)
        except ValueError:
            continue  # not a number: the point keeps its value, marked stale (see ChargerPoints.meter)
        check_not_negative(reading, field)


def _times(limits: Limits, fields: list[tuple[str, Any]]) -> None:
    for field, text in fields:
        check_time(timestamp(text, field), field, limits.now, limits.max_age, limits.max_ahead)


def _status_notification(payload: dict[str, Any], limits: Limits) -> None:
    check_connector(payload["connectorId"], "connectorId", limits.highest_connector)
    if "timestamp" in payload:
        _times(limits, [("timestamp", payload["timestamp"])])


def _meter_values_check(payload: dict[str, Any], limits: Limits) -> None:
    check_connector(payload["connectorId"], "connectorId", limits.highest_connector)
    _times(limits, list(_meter_times(payload["meterValue"], "meterValue")))
    _check_readings(payload["meterValue"], "meterValue")


def _start_transaction(payload: dict[str, Any], limits: Limits) -> None:
    check_connector(payload["connectorId"], "connectorId", limits.highest_connector, lowest=1)
    check_not_negative(payload["meterStart"], "meterStart")
    _times(limits, [("timestamp", payload["timestamp"])])


def _stop_transaction(payload: dict[str, Any], limits: Limits) -> None:
    check_not_negative(payload["meterStop"], "meterStop")
    data = payload.get("transactionData") or []
    _times(limits, [("timestamp", payload["timestamp"]), *_meter_times(data, "transactionData")])
    _check_readings(data, "transactionData")


CHECKS: dict[str, Callable[[dict[str, Any], Limits], None]] = {
    "StatusNotification": _status_notification,
    "MeterValues": _meter_values_check,
    "StartTransaction": _start_transaction,
    "StopTransaction": _stop_transaction,
}


def check(action: str, payload: dict[str, Any], limits: Limits) -> None:
    """Raise `Implausible` (or a TypeConstraintViolation for a date that does not parse) for a schema-valid
    payload whose values cannot be right."""
    checker = CHECKS.get(action)
    if checker is not None:
        checker(payload, limits)
