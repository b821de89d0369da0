"""The protocol-neutral point model: values with their kind, unit and quality, and change notification.

Nothing here knows OCPP, BACnet or Modbus: the OCPP side writes values in, the BMS protocols read them out,
and writes from a BMS come back through a writer the application registers.
"""

from __future__ import annotations

from points.database import PointDatabase, Subscription, check_state, coerce
from points.model import (
    Change,
    Kind,
    Point,
    PointSpec,
    PointValue,
    Quality,
    Value,
    WriteError,
    WriteErrorCode,
    Writer,
    WriteResult,
    format_number,
)
from points.units import normalize, parse_number

__all__ = [
    "Change",
    "Kind",
    "Point",
    "PointDatabase",
    "PointSpec",
    "PointValue",
    "Quality",
    "Subscription",
    "Value",
    "WriteError",
    "WriteErrorCode",
    "WriteResult",
    "Writer",
    "check_state",
    "coerce",
    "format_number",
    "normalize",
    "parse_number",
]
