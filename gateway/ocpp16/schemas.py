"""OCPP 1.6 payload validation: the `ocpp` package's own 1.6 JSON schemas, compiled to Python by fastjsonschema.

The library validates with jsonschema's Draft4Validator, about 150 us per MeterValues, which was most of the
gateway's time per message (bench/throughput.py). The compiled schemas take about 6 us and find the same faults.
Each fault gets the CALLERROR OCPP-J 1.6 §4.2.3 defines for it: a wrong type or a string too long is a
TypeConstraintViolation, a missing field (or too few items) an OccurenceConstraintViolation, a value outside its
enumeration a PropertyConstraintViolation, anything else (an unknown field) a FormationViolation. The library
itself answers ProtocolError for a missing field and FormationViolation for a bad enumeration value; the
specification keeps ProtocolError for an incomplete frame. Formats (date-time) are not checked here, as the
library's validator does not check them either; the handlers parse timestamps themselves.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import ocpp
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    OccurrenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, CallResult

SCHEMAS = Path(ocpp.__file__).resolve().parent / "v16" / "schemas"
# fastjsonschema's rule -> the error for it; other rules (additionalProperties) are a FormationViolation.
_ERRORS: dict[str, type[OCPPError]] = {
    "type": TypeConstraintViolationError,
    "maxLength": TypeConstraintViolationError,
    "required": OccurrenceConstraintViolationError,
    "minItems": OccurrenceConstraintViolationError,
    "enum": PropertyConstraintViolationError,
    "multipleOf": PropertyConstraintViolationError,
}


@functools.cache
def _validator(schema_name: str) -> Callable[[Any], Any]:
    schema = json.loads((SCHEMAS / f"{schema_name}.json").read_text(encoding="utf-8-sig"))
    return fastjsonschema.compile(schema, use_formats=False)


def validate(message: Call | CallResult) -> None:
    """Raise the library's OCPPError for a payload its 1.6 schema refuses (NotImplemented: no schema)."""
    name = message.action if isinstance(message, Call) else f"{message.action}Response"
    try:
        check = _validator(name)
    except (OSError, json.JSONDecodeError):
        raise NotImplementedError(details={"cause": f"Failed to validate action: {message.action}"}) from None
    try:
        check(message.payload)
    except fastjsonschema.JsonSchemaValueException as error:
        details = {"cause": error.message, "ocpp_message": message}
        raise _ERRORS.get(error.rule or "", FormatViolationError)(details=details) from None
