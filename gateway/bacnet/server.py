"""The BACnet adapter: keeps the device's objects in step with the point database and carries BMS writes to the
command service.

- **Objects** are offered to the device (listed; made when a BMS first names one) for the points there are at
  start and for each point defined later (a charger connects, a
  meter series is first reported): the mapping's object where it places the point, else (unless switched off)
  an object of the gateway's own at an instance kept in SQLite. Configuration keys get objects only where mapped;
  a charger with a template gets no object for a writable point the template leaves out (the BMS writes only
  what the mapping offers).
- **Values** follow the database's change notifications; no polling. Offline, stale or never-received values
  set the status flags' fault bit and a reliability (communication-failure, unreliable-other).
- **Writes** are checked against the point before they are acknowledged (write-access-denied, value-out-of-range,
  invalid-data-type), then carried to the charger in the background by `gateway.writes`: a BACnet client waits
  seconds at most, a charger may take longer. The outcome shows in the charger's `write_status` point (and
  `<n>/limit_status`, `last_command_status`). A commandable object keeps its 16-level priority array and
  relinquish default in SQLite; whenever the value in command changes (a write, a relinquish, relinquishing every
  priority) that value is applied. While no priority is in command the object shows its relinquish default
  (ASHRAE 135 clause 19.2), from the first start on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from functools import partial
from typing import Any

from bacpypes3.basetypes import EngineeringUnits, OptionalUnsigned, PriorityArray, PriorityValue, Reliability
from bacpypes3.errors import PropertyError
from bacpypes3.primitivedata import Null, Real

from gateway import __version__
from gateway.bacnet.commands import RELINQUISH_DEFAULT_SLOT, PriorityArrays, bacnet_value, point_value
from gateway.bacnet.device import OBJECT_CLASSES, GatewayApplication, PointObject, build_application
from gateway.bacnet.objects import ObjectPlan, dynamic_type, plan_dynamic, plan_mapped
from gateway.layout import PlacedPoint, expand, placements
from gateway.mapping import BacnetObjectType, Mapping
from gateway.settings import Settings
from gateway.slots import ChargerSlots
from gateway.sources import SourceProblem, resolve
from gateway.store import Store, load_rows
from gateway.writes import BmsWrites
from points import Change, Kind, Point, PointDatabase, Quality, Value, WriteError, WriteErrorCode

LOG = logging.getLogger(__name__)

_RELIABILITY = {
    Quality.GOOD: Reliability.noFaultDetected,
    Quality.OFFLINE: Reliability.communicationFailure,
    Quality.STALE: Reliability.unreliableOther,
    Quality.UNKNOWN: Reliability.unreliableOther,
}
_WRITE_ERRORS = {
    WriteErrorCode.OUT_OF_RANGE: "valueOutOfRange",
    WriteErrorCode.WRONG_TYPE: "invalidDataType",
    WriteErrorCode.NOT_WRITABLE: "writeAccessDenied",
    WriteErrorCode.UNKNOWN_POINT: "writeAccessDenied",
}


class BacnetServer:
    """The device, its point objects and the way back from a BMS write to the charger."""

    def __init__(
        self,
        settings: Settings,
        points: PointDatabase,
        store: Store,
        slots: ChargerSlots,
        mapping: Mapping,
        writes: BmsWrites,
    ) -> None:
        self.settings = settings
        self.points = points
        self.writes = writes
        self.store = store
        self.slots = slots
        self.mapping = mapping
        self.app: GatewayApplication | None = None
        self.plans: dict[str, ObjectPlan] = {}  # point id -> the object it has (or will have, before start)
        self.objects: dict[str, PointObject] = {}  # point id -> object (made when a BMS first asks for it)
        self._offered: set[str] = set()  # point ids whose object is offered to the device, not made yet
        self._keys: set[tuple[BacnetObjectType, int]] = set()  # objects planned
        self._names: set[str] = set()
        self._placed: dict[str, dict[str, PlacedPoint]] = {}  # charger -> source text -> placement
        self._reserved: set[tuple[BacnetObjectType, int]] = set()  # instances the mapping places
        self._instances: dict[str, tuple[BacnetObjectType, int]] = {}  # point id -> kept dynamic instance
        self._kept: set[tuple[BacnetObjectType, int]] = set()  # the instances kept for unmapped points
        self._next_instance: dict[BacnetObjectType, int] = {}
        self._unsaved: list[tuple[str, str, int]] = []  # instances handed out, not yet written to SQLite
        self.commands = PriorityArrays(store)
        self._stop_listening: Any = None

    # -- life cycle ------------------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Load what was kept and plan an object for every point there is (what `export-ede` lists)."""
        await self._load()
        self.use_mapping(self.mapping)
        for point in self.points:
            self._ensure(point)

    async def start(self) -> None:
        """Bind the device, offer the planned objects (each is made when a BMS first asks for it), and follow the
        point database from now on."""
        s = self.settings
        await self.prepare()
        try:
            self.app = self._build()
        except (ValueError, RuntimeError) as error:  # bacpypes3 raises both for an address it cannot use
            raise RuntimeError(
                f"BACnet/IP cannot use address {s.bacnet_address!r}: {error}. Set GATEWAY_BACNET_ADDRESS to "
                "ip/prefix (192.168.1.20/24) or an interface name, or GATEWAY_BACNET_ENABLED=false."
            ) from None
        for point_id in list(self.plans):
            point = self.points.get(point_id)
            if point is not None:
                self._ensure(point)
        self._stop_listening = self.points.listen(self._changed)
        LOG.info(
            "BACnet device %d on %s:%d serves %d objects",
            s.bacnet_device_id,
            s.bacnet_address,
            s.bacnet_port,
            len(self.objects) + len(self._offered) + 2,
        )

    def _build(self) -> GatewayApplication:
        s = self.settings
        return build_application(
            address=s.bacnet_address,
            port=s.bacnet_port,
            device_id=s.bacnet_device_id,
            name=s.bacnet_device_name,
            description=s.bacnet_description,
            location=s.bacnet_location,
            vendor_id=s.bacnet_vendor_id,
            vendor_name=s.bacnet_vendor_name,
            model_name=s.bacnet_model_name,
            version=__version__,
        )

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self.app is not None:
            self.app.close()
            self.app = None
        self.objects.clear()
        self._offered.clear()

    async def _load(self) -> None:
        rows = await self.store.fetch_all("SELECT point_id, object_type, instance FROM bacnet_objects")
        load_rows("bacnet_objects", rows, self._load_instance)
        await self.commands.load()

    def _load_instance(self, row: dict[str, Any]) -> None:
        object_type, instance = BacnetObjectType(row["object_type"]), row["instance"]
        if not isinstance(instance, int) or not 0 <= instance < 4194303:
            raise ValueError(f"{instance!r} is not an object instance")
        self._instances[row["point_id"]] = (object_type, instance)
        self._kept.add((object_type, instance))

    def use_mapping(self, mapping: Mapping) -> None:
        """Objects made from now on follow `mapping`; objects that exist keep their numbers until a restart."""
        self.mapping = mapping
        self._placed.clear()
        self._reserved = {p.bacnet for p in expand(mapping).bacnet_objects if p.bacnet is not None}

    # -- objects ---------------------------------------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        point = change.point
        obj: Any = self.objects.get(point.id)
        if obj is None:
            self._ensure(point)
            return
        if obj._spec != point.spec:
            self._respec(obj, point)
        if change.old != change.new:
            self._show(obj, point)

    def _respec(self, obj: Any, point: Point) -> None:
        """A point's description changed (a limit's unit once the charger says it takes W, a configuration
        key's type): the object takes the new units, texts, description and limits; its type and number stay."""
        obj._spec = point.spec
        old: ObjectPlan = obj._plan
        fresh = self.plan(point)
        if fresh is None or fresh.key != old.key:
            LOG.warning(
                "%s changed so that its object %s no longer fits; it keeps its old description until a "
                "restart",
                point.id,
                old.object_id,
            )
            return
        fresh = replace(fresh, name=old.name)
        obj._plan = self.plans[point.id] = fresh
        obj.description = fresh.description
        if fresh.kind is Kind.ANALOG:
            obj.units = EngineeringUnits(fresh.units or "no-units")
        elif fresh.kind is Kind.BINARY:
            obj.inactiveText, obj.activeText = fresh.inactive_text, fresh.active_text
        elif fresh.kind is Kind.MULTISTATE:
            obj.numberOfStates = len(fresh.states)
            obj.stateText = list(fresh.states)
        if fresh.commandable:
            self.commands.show(obj)

    def _ensure(self, point: Point) -> None:
        plan = self.plans.get(point.id)
        if plan is None:
            plan = self._plan_new(point)
            if plan is None:
                return
        if self.app is None or point.id in self.objects or point.id in self._offered:
            return
        self._offered.add(point.id)
        self.app.offer(
            (plan.object_type.value, plan.instance), plan.name, partial(self._materialize, point.id)
        )

    def _materialize(self, point_id: str) -> PointObject | None:
        """Make an offered object, now that a BMS asks for it, showing the point as it is now."""
        self._offered.discard(point_id)
        point = self.points.get(point_id)
        if point is None:
            return None
        plan = self.plans[point_id]
        fresh = self.plan(point)  # the point may have changed since it was offered (`_respec`)
        if fresh is not None and fresh.key == plan.key:
            plan = self.plans[point_id] = replace(fresh, name=plan.name)
        obj = self._make(plan, point)
        self.objects[point_id] = obj
        self._show(obj, point)
        return obj

    def _plan_new(self, point: Point) -> ObjectPlan | None:
        plan = self.plan(point)
        if plan is None:
            return None
        if plan.key in self._keys:
            LOG.warning(
                "BACnet object %s of %s is taken already; the point gets none", plan.object_id, plan.point_id
            )
            return None
        if plan.name in self._names:
            plan = replace(plan, name=f"{plan.name} ({plan.object_id})")
        self._keys.add(plan.key)
        self._names.add(plan.name)
        self.plans[point.id] = plan
        return plan

    def plan(self, point: Point) -> ObjectPlan | None:
        """The object a point gets, or None (no object: a configuration key the mapping does not place, or
        unmapped points switched off)."""
        charger_id, _, source_text = point.id.partition("/")
        try:
            source = resolve(source_text)
        except SourceProblem:
            return None
        placed = self._placements(charger_id).get(source.text)
        if placed is not None and placed.bacnet is not None:
            return plan_mapped(placed, point.spec, charger_id)
        unmapped = self.settings.bacnet_unmapped_points
        if source.config_key is not None or unmapped == "none":
            return None
        if unmapped == "listed" and self.mapping.entry_for(charger_id) is None:
            return None  # a guest charger: the BMS sees it once the mapping lists it
        if point.spec.writable and self.mapping.template_for(charger_id) is not None:
            return None  # a template that leaves out a writable point keeps BMS writes out of it
        _, instance = self._instance_for(point)
        return plan_dynamic(point.spec, instance, source.field.name)

    def _placements(self, charger_id: str) -> dict[str, PlacedPoint]:
        placed = self._placed.get(charger_id)
        if placed is None:
            slot = self.slots.slot_for(self.mapping, charger_id)
            found = placements(self.mapping, charger_id, slot) if slot is not None else []
            placed = {p.source.text: p for p in found}
            self._placed[charger_id] = placed
        return placed

    def _instance_for(self, point: Point) -> tuple[BacnetObjectType, int]:
        object_type = dynamic_type(point.spec)
        kept = self._instances.get(point.id)
        own = self.plans.get(point.id)
        if (
            kept is not None
            and kept[0] is object_type
            and (not self._taken(kept) or (own and own.key == kept))
        ):
            return kept
        instance = self._next_instance.get(object_type, self.settings.bacnet_unmapped_base_instance)
        while (
            (object_type, instance) in self._reserved
            or (object_type, instance) in self._kept
            or self._taken((object_type, instance))
        ):
            instance += 1
        self._next_instance[object_type] = instance + 1
        self._instances[point.id] = (object_type, instance)
        self._kept.add((object_type, instance))
        if not self._unsaved:
            asyncio.get_running_loop().call_soon(self._save_instances)
        self._unsaved.append((point.id, object_type.value, instance))
        return object_type, instance

    def _save_instances(self) -> None:
        """Keep the instances handed out since the last call, in one statement (thousands at a first start)."""
        rows, self._unsaved = self._unsaved, []
        self.store.write_nowait(
            lambda connection: connection.executemany(
                "INSERT OR REPLACE INTO bacnet_objects (point_id, object_type, instance) VALUES (?, ?, ?)",
                rows,
            )
        )

    def _taken(self, key: tuple[BacnetObjectType, int]) -> bool:
        return key in self._keys

    def _make(self, plan: ObjectPlan, point: Point) -> PointObject:
        assert self.app is not None
        properties: dict[str, Any] = {
            "objectIdentifier": (plan.object_type.value, plan.instance),
            "objectName": plan.name,
            "description": plan.description,
            "presentValue": bacnet_value(plan, None),
            "eventState": "normal",
            "outOfService": False,
            "reliability": Reliability.unreliableOther,
        }
        if plan.kind is Kind.ANALOG:
            properties["units"] = EngineeringUnits(plan.units or "no-units")
            # COV needs an increment; 0 notifies every change.
            properties["covIncrement"] = Real(plan.cov_increment or 0.0)
        elif plan.kind is Kind.BINARY:
            properties["inactiveText"] = plan.inactive_text
            properties["activeText"] = plan.active_text
            if plan.object_type is BacnetObjectType.BINARY_INPUT:
                properties["polarity"] = "normal"
        elif plan.kind is Kind.MULTISTATE:
            properties["numberOfStates"] = len(plan.states)
            properties["stateText"] = list(plan.states)
        if plan.commandable:
            properties["relinquishDefault"] = bacnet_value(plan, self.commands.relinquish_default(plan))
            properties["priorityArray"] = PriorityArray([PriorityValue(null=()) for _ in range(16)])
            properties["currentCommandPriority"] = OptionalUnsigned(null=())
        object_class = OBJECT_CLASSES[plan.object_type]
        obj: Any = object_class(**properties)
        obj._plan = plan
        obj._spec = point.spec  # what the plan was made from (`_respec` follows a change)
        obj._handler = self
        if plan.commandable:
            self.commands.show(obj)
        self.app.add_point_object(obj)
        return obj  # type: ignore[no-any-return]

    def object_plans(self) -> list[ObjectPlan]:
        """Every planned point object, by object type and instance."""
        return sorted(self.plans.values(), key=lambda plan: (plan.object_type.number, plan.instance))

    def _show(self, obj: Any, point: Point) -> None:
        """Present a point's value and quality on its object (for COV, the status flags change is announced
        too: bacpypes3 computes them from the reliability and only watches what is set)."""
        plan: ObjectPlan = obj._plan
        value = point.value
        if plan.commandable:
            # the value in command, else the relinquish default; the point's own only where there is none
            commanded = self.commands.present_value(plan)
            value = point.value if commanded is None else commanded
        if value is not None or not plan.commandable:
            obj.presentValue = bacnet_value(plan, value)
        old_flags = obj.statusFlags
        obj.reliability = _RELIABILITY[point.quality]
        new_flags = obj.statusFlags
        if new_flags != old_flags:
            for monitor in obj._property_monitors["statusFlags"]:
                monitor(old_flags, new_flags)

    # -- writes ----------------------------------------------------------------------------------------------

    def may_write(self, obj: PointObject, attr: str) -> bool:
        plan = obj._plan
        if attr == "presentValue":
            return plan.writable
        return attr == "relinquishDefault" and plan.writable and plan.commandable

    async def write_object(self, obj: PointObject, attr: str, value: Any, priority: int | None) -> None:
        plan = obj._plan
        if not self.may_write(obj, attr):
            raise PropertyError("writeAccessDenied")
        if attr == "relinquishDefault":
            slot = RELINQUISH_DEFAULT_SLOT
        else:
            slot = 16 if priority is None else priority
            if not 1 <= slot <= 16:
                raise PropertyError("valueOutOfRange")
        if isinstance(value, Null):
            if not plan.commandable or slot == RELINQUISH_DEFAULT_SLOT:
                raise PropertyError("invalidDataType")
            checked: Value = None
        else:
            checked = self._checked(plan, value)
        if not plan.commandable:
            self.writes.submit(plan.point_id, checked, "bacnet")
            return
        before = self.commands.in_command(plan)
        self.commands.set(plan.point_id, slot, checked)
        self.commands.show(obj)
        after = self.commands.in_command(plan)
        if after is not None and after != before:
            self.writes.submit(plan.point_id, after, "bacnet")
        point = self.points.get(plan.point_id)
        if point is not None:
            self._show(obj, point)

    def _checked(self, plan: ObjectPlan, value: Any) -> Value:
        """A BACnet value as the point's value, checked as the point database checks a write."""
        try:
            candidate = point_value(plan, value)
            _, coerced = self.writes.check(plan.point_id, candidate)
        except WriteError as error:
            LOG.info("BACnet write to %s refused: %s", plan.point_id, error)
            raise PropertyError(_WRITE_ERRORS[error.code]) from None
        except (TypeError, ValueError):
            raise PropertyError("invalidDataType") from None
        return coerced
