"""What BACnet object a point becomes: its type, instance, name, units and texts, worked out without a BACnet stack.

The device (`gateway.bacnet.device`) builds its objects from these plans, and the EDE export writes the same plans
to a file, so the point list a BMS engineer imports is the object list the device serves.

A point the mapping places gets the template's object; any other point of a charger (a meter series the
charger reports but the template does not list, a charger no entry gives a template) gets an object of the type
its kind suggests, at an instance handed out once and kept (`gateway.bacnet.instances`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.bacnet_units import default_units
from gateway.layout import PlacedPoint
from gateway.mapping import BacnetObjectType
from points import Kind, PointSpec, Value

# Objects BMS writes command with a priority (the limit and its enable switch); other writable points
# (configuration keys) are written straight through.
COMMANDED_FIELDS = frozenset({"limit", "smart_charging"})

_DYNAMIC_TYPES: dict[tuple[Kind, bool], BacnetObjectType] = {
    (Kind.ANALOG, False): BacnetObjectType.ANALOG_INPUT,
    (Kind.ANALOG, True): BacnetObjectType.ANALOG_VALUE,
    (Kind.BINARY, False): BacnetObjectType.BINARY_INPUT,
    (Kind.BINARY, True): BacnetObjectType.BINARY_VALUE,
    (Kind.MULTISTATE, False): BacnetObjectType.MULTI_STATE_INPUT,
    (Kind.MULTISTATE, True): BacnetObjectType.MULTI_STATE_VALUE,
    (Kind.STRING, False): BacnetObjectType.CHARACTERSTRING_VALUE,
    (Kind.STRING, True): BacnetObjectType.CHARACTERSTRING_VALUE,
}


@dataclass(frozen=True)
class ObjectPlan:
    """One BACnet object of the gateway's device and the point it shows."""

    point_id: str
    object_type: BacnetObjectType
    instance: int
    name: str
    description: str
    kind: Kind
    units: str | None = None  # analog: the engineering unit's name ("amperes")
    cov_increment: float | None = None
    states: tuple[str, ...] = ()  # multistate: state texts; binary: (inactive text, active text)
    writable: bool = False
    commandable: bool = False
    relinquish_default: Value = None
    minimum: float | None = None
    maximum: float | None = None
    mapped: bool = True  # placed by the mapping (False: an object the gateway added for an unmapped point)

    @property
    def key(self) -> tuple[BacnetObjectType, int]:
        return (self.object_type, self.instance)

    @property
    def object_id(self) -> str:
        """'analog-value,1024', as BACnet tools write an object identifier."""
        return f"{self.object_type.value},{self.instance}"

    @property
    def inactive_text(self) -> str:
        return self.states[0] if len(self.states) == 2 else "inactive"

    @property
    def active_text(self) -> str:
        return self.states[1] if len(self.states) == 2 else "active"


def dynamic_type(spec: PointSpec) -> BacnetObjectType:
    """The object type of a point the mapping does not place."""
    return _DYNAMIC_TYPES[(spec.kind, spec.writable)]


def plan_mapped(placed: PlacedPoint, spec: PointSpec, charger_id: str) -> ObjectPlan:
    """The object the mapping gives a charger's point (`placed.bacnet` must be set)."""
    assert placed.bacnet is not None
    object_type, instance = placed.bacnet
    bacnet = placed.point.bacnet
    writable = spec.writable and object_type.is_value
    relinquish: Value = None
    if bacnet is not None and bacnet.relinquish_default is not None:
        relinquish = _as_kind(spec.kind, bacnet.relinquish_default)
    return _plan(
        spec,
        object_type,
        instance,
        name=placed.object_name(charger_id),
        description=(bacnet.description if bacnet and bacnet.description else None),
        units=placed.units,
        cov_increment=bacnet.cov_increment if bacnet is not None else None,
        writable=writable,
        relinquish_default=relinquish,
        mapped=True,
        field=placed.source.field.name,
    )


def plan_dynamic(spec: PointSpec, instance: int, field: str) -> ObjectPlan:
    """The object the gateway gives a point the mapping does not place; named by the point id
    (`<charger>/<connector>/<point>`)."""
    return _plan(
        spec,
        dynamic_type(spec),
        instance,
        name=spec.id,
        description=None,
        units=default_units(spec.unit) if spec.kind is Kind.ANALOG else None,
        cov_increment=None,
        writable=spec.writable,
        relinquish_default=None,
        mapped=False,
        field=field,
    )


def _plan(
    spec: PointSpec,
    object_type: BacnetObjectType,
    instance: int,
    *,
    name: str,
    description: str | None,
    units: str | None,
    cov_increment: float | None,
    writable: bool,
    relinquish_default: Value,
    mapped: bool,
    field: str,
) -> ObjectPlan:
    commandable = writable and field in COMMANDED_FIELDS and spec.kind in (Kind.ANALOG, Kind.BINARY)
    if commandable and relinquish_default is None:
        relinquish_default = _default_relinquish(spec)
    states = spec.states
    if spec.kind is Kind.BINARY and len(states) != 2:
        states = ("inactive", "active")
    return ObjectPlan(
        point_id=spec.id,
        object_type=object_type,
        instance=instance,
        name=name,
        description=description or spec.description or spec.name,
        kind=spec.kind,
        units=units,
        cov_increment=cov_increment if spec.kind is Kind.ANALOG else None,
        states=states,
        writable=writable,
        commandable=commandable,
        relinquish_default=relinquish_default,
        minimum=spec.minimum if writable else None,
        maximum=spec.maximum if writable else None,
        mapped=mapped,
    )


def _default_relinquish(spec: PointSpec) -> Value:
    """When the mapping gives no relinquish default: full current for a limit (its maximum, where it has one),
    off for a switch (the BMS lets go of smart charging). None: relinquishing keeps the last value."""
    if spec.kind is Kind.BINARY:
        return False
    return None if spec.maximum is None else float(spec.maximum)


def _as_kind(kind: Kind, value: bool | float) -> Value:
    if kind is Kind.BINARY:
        return bool(value)
    if kind is Kind.MULTISTATE:
        return int(value)
    return float(value)
