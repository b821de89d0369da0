"""What a point is: its description (kind, unit, limits, state texts) and its current value and quality."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias


class Kind(StrEnum):
    """The kinds of value a point holds; every protocol adapter maps these to its own object types."""

    ANALOG = "analog"  # a number (float)
    BINARY = "binary"  # a bool
    MULTISTATE = "multistate"  # a state number 1..n, with a text per state
    STRING = "string"  # a text


class Quality(StrEnum):
    """How far a point's value can be trusted."""

    GOOD = "good"
    STALE = "stale"  # the last update could not be used; the value is the one before it
    OFFLINE = "offline"  # its source is not connected; the value is the last one received
    UNKNOWN = "unknown"  # never received


@dataclass(frozen=True)
class PointSpec:
    """A point's description. `states` are the texts of a multistate point (state n is `states[n - 1]`);
    `minimum`/`maximum` bound writes to an analog point. An `own` point is the gateway's own knowledge (is the
    source connected, how did a command end): it keeps its quality while its source is offline."""

    id: str
    name: str
    kind: Kind
    unit: str | None = None
    description: str = ""
    writable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    states: tuple[str, ...] = ()
    own: bool = False


Value: TypeAlias = float | bool | int | str | None
"""A point's value: analog a float, binary a bool, multistate the state number 1..n, string a str; None if not
known."""


@dataclass(frozen=True)
class PointValue:
    """A value with when it was measured or received (UTC) and how far it can be trusted."""

    value: Value
    timestamp: datetime | None
    quality: Quality


@dataclass(frozen=True)
class Change:
    """One change of a point, as subscribers receive it. `source` says who caused it ("ocpp", "api", "bacnet",
    "modbus", "gateway", ...); `added` is set when the point was just defined (`old` is then unknown)."""

    point: Point
    old: PointValue
    new: PointValue
    source: str
    added: bool = False


class WriteErrorCode(StrEnum):
    """Why a write was refused before it reached the point's writer."""

    UNKNOWN_POINT = "unknown-point"
    NOT_WRITABLE = "not-writable"
    WRONG_TYPE = "wrong-type"
    OUT_OF_RANGE = "out-of-range"


class WriteError(Exception):
    """A value refused for a point; `str()` is a sentence a person can act on."""

    def __init__(self, code: WriteErrorCode, point_id: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.point_id = point_id


@dataclass(frozen=True)
class WriteResult:
    """What became of a write: `status` is the far side's answer ("Accepted", "Rejected", "RebootRequired") or
    the gateway's ("timed-out", "offline")."""

    accepted: bool
    status: str
    detail: str = ""


Writer: TypeAlias = Callable[["Point", Value, str], Awaitable[WriteResult]]
"""Carries a write to where the value lives; called with the point, the coerced value and the source."""


@dataclass(slots=True, eq=False)
class Point:
    """A point with its live value (mutable, owned by the database)."""

    spec: PointSpec
    value: Value = None
    timestamp: datetime | None = None
    quality: Quality = Quality.UNKNOWN
    writer: Writer | None = field(default=None, repr=False)
    # A stale value stays stale through an offline spell: mark_offline remembers it for mark_online.
    stale_before_offline: bool = field(default=False, repr=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def current(self) -> PointValue:
        return PointValue(self.value, self.timestamp, self.quality)

    @property
    def text(self) -> str:
        """The value as people read it: a state's text, "true"/"false" (or the binary's two state texts), a
        number without float noise; "" if not known."""
        value = self.value
        if value is None:
            return ""
        states = self.spec.states
        if isinstance(value, bool):
            if self.spec.kind is Kind.BINARY and len(states) == 2:
                return states[1] if value else states[0]
            return "true" if value else "false"
        if isinstance(value, int) and self.spec.kind is Kind.MULTISTATE and 1 <= value <= len(states):
            return states[value - 1]
        if isinstance(value, float):
            return format_number(value)
        return str(value)


def format_number(value: float) -> str:
    """A float as people read it: 15 significant digits drop the noise of binary fractions (0.1 + 0.2 is
    "0.3") and integral values lose their ".0"."""
    if value == 0:
        return "0"  # also for -0.0
    return f"{value:.15g}"
