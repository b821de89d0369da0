"""The priority arrays of the commandable objects (a limit, the smart charging switch), kept in SQLite, and the
conversion of values between a point and its object."""

from __future__ import annotations

import json
from typing import Any

from bacpypes3.basetypes import BinaryPV, OptionalUnsigned, PriorityArray, PriorityValue
from bacpypes3.errors import PropertyError
from bacpypes3.primitivedata import CharacterString, Real, Unsigned

from gateway.bacnet.objects import ObjectPlan
from gateway.store import Store, load_rows
from points import Kind, Value

RELINQUISH_DEFAULT_SLOT = 0
MAX_TEXT = 500  # the texts a BMS writes are configuration values: ChangeConfiguration takes a CiString500


class PriorityArrays:
    """Per commandable point: [relinquish default written, priority 1 .. priority 16], None where empty."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._slots: dict[str, list[Value]] = {}

    async def load(self) -> None:
        rows = await self.store.fetch_all("SELECT point_id, priority, value FROM bacnet_commands")
        load_rows("bacnet_commands", rows, self._load_row)

    def _load_row(self, row: dict[str, Any]) -> None:
        priority, value = row["priority"], json.loads(row["value"])
        if not isinstance(priority, int) or not 0 <= priority <= 16:
            raise ValueError(f"{priority!r} is not a priority")
        if value is not None and not isinstance(value, bool | int | float | str):
            raise ValueError(f"{value!r} is not a point value")
        self._slots.setdefault(row["point_id"], [None] * 17)[priority] = value

    def set(self, point_id: str, slot: int, value: Value) -> None:
        """Command (or, with None, relinquish) one slot, and keep it."""
        self._slots.setdefault(point_id, [None] * 17)[slot] = value
        if value is None:
            self.store.execute_nowait(
                "DELETE FROM bacnet_commands WHERE point_id = ? AND priority = ?", (point_id, slot)
            )
        else:
            self.store.execute_nowait(
                "INSERT OR REPLACE INTO bacnet_commands (point_id, priority, value) VALUES (?, ?, ?)",
                (point_id, slot, json.dumps(value)),
            )

    def relinquish_default(self, plan: ObjectPlan) -> Value:
        written = self._slots.get(plan.point_id, [None])[RELINQUISH_DEFAULT_SLOT]
        return written if written is not None else plan.relinquish_default

    def in_command(self, plan: ObjectPlan) -> Value:
        """The value the priority array commands, the relinquish default once every priority was
        relinquished, or None when no BMS ever commanded the point (nothing to apply)."""
        slots = self._slots.get(plan.point_id)
        if slots is None:
            return None
        for value in slots[1:]:
            if value is not None:
                return value
        return self.relinquish_default(plan)

    def present_value(self, plan: ObjectPlan) -> Value:
        """What the object shows: the value in command, and with every priority empty its relinquish default
        (ASHRAE 135 clause 19.2.1.4), also before any BMS wrote. None: no default either."""
        commanded = self.in_command(plan)
        return self.relinquish_default(plan) if commanded is None else commanded

    def show(self, obj: Any) -> None:
        """The priority array, current command priority and relinquish default on the object."""
        plan: ObjectPlan = obj._plan
        slots = self._slots.get(plan.point_id, [None] * 17)
        array = [
            PriorityValue(null=()) if value is None else PriorityValue(bacnet_value(plan, value))
            for value in slots[1:]
        ]
        obj.priorityArray = PriorityArray(array)
        active = next((index for index, value in enumerate(slots[1:], start=1) if value is not None), None)
        obj.currentCommandPriority = (
            OptionalUnsigned(null=()) if active is None else OptionalUnsigned(unsigned=active)
        )
        relinquish = self.relinquish_default(plan)
        if relinquish is not None:
            obj.relinquishDefault = bacnet_value(plan, relinquish)


def bacnet_value(plan: ObjectPlan, value: Value) -> Any:
    """A point value as the object's present value (a placeholder where it is not known: the reliability says
    so)."""
    if plan.kind is Kind.ANALOG:
        return Real(float(value) if isinstance(value, int | float) else 0.0)
    if plan.kind is Kind.BINARY:
        return BinaryPV("active" if value else "inactive")
    if plan.kind is Kind.MULTISTATE:
        number = value if isinstance(value, int) and 1 <= value <= len(plan.states) else 1
        return Unsigned(number)
    return CharacterString("" if value is None else str(value))


def point_value(plan: ObjectPlan, value: Any) -> Value:
    """A written BACnet value (already decoded as the property's datatype) as the point's value."""
    if plan.kind is Kind.ANALOG:
        return float(value)
    if plan.kind is Kind.BINARY:
        # BACnetBinaryPV is inactive (0) or active (1); bacpypes3 decodes any enumerated value as one
        if int(value) not in (BinaryPV.inactive, BinaryPV.active):
            raise PropertyError("valueOutOfRange")
        return bool(value == BinaryPV.active)
    if plan.kind is Kind.MULTISTATE:
        return int(value)
    text = str(value)
    if len(text) > MAX_TEXT:
        raise PropertyError("valueOutOfRange")
    return text
