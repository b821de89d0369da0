"""OCPP 1.6 payload validation with the compiled schemas: each kind of fault gets the CALLERROR OCPP-J 1.6
§4.2.3 defines for it; where the `ocpp` package's own validator agrees, both are checked."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    OccurrenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallResult, _validate_payload

from gateway.ocpp16.schemas import validate

SAMPLE = {"value": "1200", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}


def meter_values(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": 1,
        "meterValue": [{"timestamp": "2026-11-22T10:00:00Z", "sampledValue": [SAMPLE]}],
    }
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (meter_values(connectorId="1"), TypeConstraintViolationError),
        (meter_values(colour="red"), FormatViolationError),
        (meter_values(connectorId=True), TypeConstraintViolationError),
        (meter_values(connectorId=1.0), TypeConstraintViolationError),  # draft 4: 1.0 is not an integer
    ],
)
def test_a_fault_gets_the_librarys_error(payload: dict[str, Any], error: type[OCPPError]) -> None:
    message = Call("1", "MeterValues", payload)
    with pytest.raises(error):
        validate(message)
    with pytest.raises(error):
        _validate_payload(Call("1", "MeterValues", payload), "1.6")


@pytest.mark.parametrize(
    ("payload", "error", "librarys"),
    [
        # §4.2.3: "at least one of the fields violates occurence constraints"; ProtocolError is an incomplete frame
        ({"connectorId": 1}, OccurrenceConstraintViolationError, ProtocolError),
        (meter_values(meterValue=[]), OccurrenceConstraintViolationError, FormatViolationError),
        # §4.2.3: "a field contains an invalid value"; the frame itself is well formed
        (
            meter_values(meterValue=[{"timestamp": "x", "sampledValue": [{**SAMPLE, "unit": "parsec"}]}]),
            PropertyConstraintViolationError,
            FormatViolationError,
        ),
    ],
)
def test_a_fault_gets_the_code_the_specification_gives(
    payload: dict[str, Any], error: type[OCPPError], librarys: type[OCPPError]
) -> None:
    with pytest.raises(error):
        validate(Call("1", "MeterValues", payload))
    with pytest.raises(librarys):
        _validate_payload(Call("1", "MeterValues", payload), "1.6")


def test_a_string_too_long_is_a_type_constraint_violation() -> None:
    with pytest.raises(TypeConstraintViolationError):
        validate(Call("1", "Authorize", {"idTag": "X" * 21}))


def test_valid_payloads_pass_and_formats_are_left_to_the_handlers() -> None:
    validate(Call("1", "MeterValues", meter_values()))
    validate(
        Call(
            "1",
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "not a time"},
        )
    )
    validate(
        CallResult(
            "1",
            {"currentTime": "2026-11-22T10:00:00Z", "interval": 300, "status": "Accepted"},
            action="BootNotification",
        )
    )


def test_an_answer_is_checked_against_its_response_schema() -> None:
    with pytest.raises(PropertyConstraintViolationError):
        validate(
            CallResult("1", {"status": "Maybe", "currentTime": "x", "interval": 1}, action="BootNotification")
        )


def test_an_action_without_a_schema_is_not_implemented() -> None:
    with pytest.raises(NotImplementedError):
        validate(Call("1", "Teleport", {}))
