"""The Modbus TCP server: the mapping's register map, read live from the point database, written through the
BMS write path (`gateway.writes`) to the chargers.

The gateway's own TCP front end (`connections`, `framing`) reads the requests and `functions` checks them against
the Modbus Application Protocol; this module is the register map behind them. Each request is answered in one
synchronous step from the points' current values, so a 32-bit value read in one request is never torn and nothing
is copied that could go stale.

Answers (the README has the same list):

- a read of mapped addresses: the values (sentinels where offline or unknown);
- an address the map does not use, also within a longer read: exception 2, illegal data address;
- a write to a read-only register (a read-only point's holding register, the gateway block): exception 2;
- a write of part of a 32-bit value or of a string, of a value outside the point's limits, of the sentinel, of
  anything but 0/1 to an on/off point, or more registers than the protocol allows in one request: exception 3,
  illegal data value;
- a unit the map does not use, or a write to a pattern slot no charger holds yet: exception 11 (0x0B), gateway
  target device failed to respond;
- a function code not served, a request of the wrong length, a coil written with anything but 0xFF00/0x0000:
  see `functions`.

A write is acknowledged once checked; the charger's answer comes later, in its `write_status` register.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from pymodbus.constants import ExcCodes

from gateway import __version__
from gateway.mapping import Mapping, ModbusTable
from gateway.modbus.connections import Listener
from gateway.modbus.functions import Functions
from gateway.modbus.registers import BadValue, Register, RegisterMap, gateway_block, number_ranges
from gateway.settings import Settings
from gateway.slots import ChargerSlots
from gateway.writes import BmsWrites
from points import Change, PointDatabase, Quality, Value, WriteError, WriteErrorCode

LOG = logging.getLogger(__name__)

_TABLES = {
    1: ModbusTable.COIL,
    5: ModbusTable.COIL,
    15: ModbusTable.COIL,
    2: ModbusTable.DISCRETE_INPUT,
    3: ModbusTable.HOLDING,
    6: ModbusTable.HOLDING,
    16: ModbusTable.HOLDING,
    4: ModbusTable.INPUT,
}


class ModbusServer:
    """The register map of one mapping, served over Modbus TCP."""

    def __init__(
        self,
        settings: Settings,
        points: PointDatabase,
        slots: ChargerSlots,
        mapping: Mapping,
        writes: BmsWrites,
    ) -> None:
        self.settings = settings
        self.points = points
        self.slots = slots
        self.writes = writes
        self.map = RegisterMap(mapping)
        self.started_at = time.monotonic()
        self._listener: Listener | None = None
        self._stop_listening: Any = None

    # -- life cycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self.started_at = time.monotonic()
        functions = Functions(self, _identity())
        listener = Listener(functions.answer, s.modbus_max_connections, s.modbus_idle_timeout)
        try:
            await listener.start(s.modbus_host, s.modbus_port)
        except OSError as error:
            raise RuntimeError(
                f"Modbus TCP cannot listen on {s.modbus_host}:{s.modbus_port} ({error.strerror or error}: in use, "
                "or an address this box does not have). Set GATEWAY_MODBUS_HOST/GATEWAY_MODBUS_PORT, or "
                "GATEWAY_MODBUS_ENABLED=false."
            ) from None
        self._listener = listener
        self._stop_listening = self.points.listen(self._changed)
        for point in self.points:
            self._take_slot(point.id)
        LOG.info(
            "Modbus TCP on %s:%d serves %d registers in units %s (gateway block at %d)",
            s.modbus_host,
            self.port,
            sum(r.where.width for r in self.map.registers),
            number_ranges(self.map.units),
            self.map.gateway_start,
        )

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system when the setting is 0)."""
        port = self._listener.port if self._listener is not None else None
        return self.settings.modbus_port if port is None else port

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

    def use_mapping(self, mapping: Mapping) -> None:
        """Serve a new mapping's register map from the next request on."""
        self.map = RegisterMap(mapping)

    def _changed(self, change: Change) -> None:
        if change.added:
            self._take_slot(change.point.id)

    def _take_slot(self, point_id: str) -> None:
        """A charger that falls under a pattern takes its slot when it first appears (BACnet may be off)."""
        charger_id, _, source = point_id.partition("/")
        if source == "online":
            self.slots.slot_for(self.map.mapping, charger_id)

    # -- reads -----------------------------------------------------------------------------------------------

    def serves(self, unit: int) -> bool:
        return unit in self.map.units

    def read(
        self, unit: int, function_code: int, address: int, count: int
    ) -> list[int] | list[bool] | ExcCodes:
        table = _TABLES.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if unit not in self.map.units:
            return ExcCodes.GATEWAY_NO_RESPONSE
        values: list[Any] = []
        shown: dict[int, list[Any]] = {}  # id(register) -> its words, one read per point per request
        block: list[int] | None = None
        mapped = False
        for here in range(address, address + count):
            if not table.holds_bits and self.map.in_gateway_block(here):
                block = block or self._gateway_block()
                values.append(block[here - self.map.gateway_start])
                mapped = True
                continue
            cell = self.map.cell(unit, table, here)
            if cell is None:
                if not self.settings.modbus_read_gaps:
                    return ExcCodes.ILLEGAL_ADDRESS
                values.append(False if table.holds_bits else 0)
                continue
            register, word = cell
            words = shown.get(id(register))
            if words is None:
                words = shown[id(register)] = self._show(register)
            values.append(words[word])
            mapped = True
        return values if mapped else ExcCodes.ILLEGAL_ADDRESS

    def _show(self, register: Register) -> list[Any]:
        point_id = self._point_id(register)
        point = self.points.get(point_id) if point_id is not None else None
        if point is None:
            if register.source == "online":
                return register.encode(False, Quality.GOOD)  # a slot no charger holds: nothing connected
            return register.encode(None, Quality.UNKNOWN)
        return register.encode(point.value, point.quality)

    def _point_id(self, register: Register) -> str | None:
        placed = register.placed
        charger = placed.charger
        if register.pattern is not None:
            charger = self.slots.holder(register.pattern, placed.slot)
        return None if charger is None else f"{charger}/{register.source}"

    def _gateway_block(self) -> list[int]:
        chargers = online = 0
        for charger_id in self._chargers():
            chargers += 1
            point = self.points.get(f"{charger_id}/online")
            online += point is not None and point.value is True
        return gateway_block(
            layout_version=self.map.layout_version,
            checksum=self.map.checksum,
            version=__version__,
            chargers=chargers,
            online=online,
            uptime=time.monotonic() - self.started_at,
            pending=self.writes.busy(),
        )

    def _chargers(self) -> list[str]:
        """The chargers the map holds: those listed by id with registers, and those holding a pattern's slot."""
        found = []
        for pattern, where in self.map.blocks:
            if pattern is None:
                found.append(str(where))
            elif (holder := self.slots.holder(pattern, int(where))) is not None:
                found.append(holder)
        return found

    # -- writes ----------------------------------------------------------------------------------------------

    def write(self, unit: int, function_code: int, address: int, values: Sequence[Any]) -> ExcCodes | None:
        table = _TABLES.get(function_code)
        if table is None or not table.writable:
            return ExcCodes.ILLEGAL_FUNCTION
        if unit not in self.map.units:
            return ExcCodes.GATEWAY_NO_RESPONSE
        end = address + len(values)
        # every address mapped and writable, every point written whole
        targets: list[Register] = []
        for here in range(address, end):
            if not table.holds_bits and self.map.in_gateway_block(here):
                return self._refuse(unit, here, "the gateway block is read-only", ExcCodes.ILLEGAL_ADDRESS)
            cell = self.map.cell(unit, table, here)
            if cell is None:
                return self._refuse(unit, here, "no point there", ExcCodes.ILLEGAL_ADDRESS)
            register, word = cell
            if not register.writable:
                return self._refuse(unit, here, f"{register.source} is read-only", ExcCodes.ILLEGAL_ADDRESS)
            if word == 0:
                targets.append(register)
            if (word == 0 and register.where.end > end) or (word > 0 and register.where.address < address):
                return self._refuse(
                    unit,
                    here,
                    f"{register.source} takes {register.where} written together",
                    ExcCodes.ILLEGAL_VALUE,
                )
        # every value one the point takes
        checked: list[tuple[str, Value]] = []
        for register in targets:
            point_id = self._point_id(register)
            if point_id is None:
                return self._refuse(
                    unit,
                    register.where.address,
                    "no charger holds this slot yet",
                    ExcCodes.GATEWAY_NO_RESPONSE,
                )
            start = register.where.address - address
            try:
                value = register.decode(values[start : start + register.where.width])
                _, coerced = self.writes.check(point_id, value)
            except (BadValue, WriteError) as error:
                code = ExcCodes.ILLEGAL_VALUE
                if isinstance(error, WriteError) and error.code is WriteErrorCode.NOT_WRITABLE:
                    code = ExcCodes.ILLEGAL_ADDRESS
                elif isinstance(error, WriteError) and error.code is WriteErrorCode.UNKNOWN_POINT:
                    code = ExcCodes.GATEWAY_NO_RESPONSE
                return self._refuse(unit, register.where.address, f"{point_id}: {error}", code)
            checked.append((point_id, coerced))
        for point_id, value in checked:
            self.writes.submit(point_id, value, "modbus")
        return None

    def _refuse(self, unit: int, address: int, reason: str, code: ExcCodes) -> ExcCodes:
        LOG.info("Modbus write to unit %d address %d refused (exception %d): %s", unit, address, code, reason)
        return code


def _identity() -> dict[int, str]:
    """What Read Device Identification (function 43/14) tells, by object id."""
    return {
        0x00: "ocpp-gateway",  # VendorName
        0x01: "OCPP-GW",  # ProductCode
        0x02: __version__,  # MajorMinorRevision
        0x04: "OCPP to BACnet/Modbus gateway",  # ProductName
        0x05: "ocpp-gateway",  # ModelName
    }
