"""The Modbus TCP server: the mapping's register map, read live from the point database, written through the
BMS write path (`gateway.writes`) to the chargers.

pymodbus 3.16 runs the protocol (framing, function codes, connections) in the gateway's event loop; this module
is its datastore. Each request is answered in one synchronous step from the points' current values, so a 32-bit
value read in one request is never torn and nothing is copied that could go stale.

Answers (the README has the same list):

- a read of mapped addresses: the values (sentinels where offline or unknown);
- an address the map does not use, also within a longer read: exception 2, illegal data address;
- a write to a read-only register (a read-only point's holding register, the gateway block): exception 2;
- a write of part of a 32-bit value or of a string, of a value outside the point's limits, of the sentinel, of
  anything but 0/1 to an on/off point, or more registers than the protocol allows in one request: exception 3,
  illegal data value;
- a unit the map does not use, or a write to a pattern slot no charger holds yet: exception 11 (0x0B), gateway
  target device failed to respond.

A write is acknowledged once checked; the charger's answer comes later, in its `write_status` register.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsRequest, ReadDiscreteInputsRequest
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice

from gateway import __version__
from gateway.mapping import Mapping, ModbusTable
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
    22: ModbusTable.HOLDING,
    23: ModbusTable.HOLDING,
    4: ModbusTable.INPUT,
}
_MAX_READ = {True: 2000, False: 125}  # per request: bits, registers (Modbus application protocol 6.1-6.4)
_ECHOED = (5, 6)  # write single coil/register: the answer echoes the request


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
        self._server: ModbusTcpServer | None = None
        self._echo: tuple[int, int, int, list[Any]] | None = None
        self._stop_listening: Any = None

    # -- life cycle ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self.started_at = time.monotonic()
        server = _TcpServer(_Datastore(self), (s.modbus_host, s.modbus_port), _identity())
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            raise RuntimeError(
                f"Modbus TCP cannot listen on {s.modbus_host}:{s.modbus_port} (in use, or an address this box "
                "does not have). Set GATEWAY_MODBUS_HOST/GATEWAY_MODBUS_PORT, or GATEWAY_MODBUS_ENABLED=false."
            ) from None
        self._server = server
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
        if self._server is None or self._server.transport is None:
            return self.settings.modbus_port
        listener: Any = self._server.transport  # an asyncio.Server for a TCP listener
        return int(listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

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

    def read(
        self, unit: int, function_code: int, address: int, count: int
    ) -> list[int] | list[bool] | ExcCodes:
        table = _TABLES.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if unit not in self.map.units:
            return ExcCodes.GATEWAY_NO_RESPONSE
        if not 1 <= count <= _MAX_READ[table.holds_bits]:
            return ExcCodes.ILLEGAL_VALUE
        if function_code in _ECHOED and self._echo is not None:
            echo, self._echo = self._echo, None
            if echo[:3] == (unit, function_code, address):
                return echo[3]
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
        if function_code in _ECHOED:
            self._echo = (unit, function_code, address, list(values))
        return None

    def _refuse(self, unit: int, address: int, reason: str, code: ExcCodes) -> ExcCodes:
        LOG.info("Modbus write to unit %d address %d refused (exception %d): %s", unit, address, code, reason)
        return code


class _Datastore:
    """What pymodbus's request handlers call (its datastore interface), handed to the server."""

    def __init__(self, server: ModbusServer) -> None:
        self.server = server

    def device_ids(self) -> list[int]:
        return list(self.server.map.units)

    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        return self.server.read(device_id, func_code, address, count)

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None:
        return self.server.write(device_id, func_code, address, values)


def _counted_in_datastore(request: type[ModbusPDU]) -> type[ModbusPDU]:
    """A read request whose count is checked by our datastore, not while decoding: pymodbus answers a count
    beyond the protocol's limit with exception 1 for function code 0, where the protocol wants exception 3
    for the request's own function code."""

    class Request(request):  # type: ignore[valid-type,misc]
        def decode(self, data: bytes) -> None:
            self.address, self.count = struct.unpack(">HH", data[:4])

    Request.__name__ = request.__name__
    return Request


_READ_REQUESTS = [
    _counted_in_datastore(request)
    for request in (
        ReadCoilsRequest,
        ReadDiscreteInputsRequest,
        ReadHoldingRegistersRequest,
        ReadInputRegistersRequest,
    )
]


class _TcpServer(ModbusTcpServer):
    """pymodbus's TCP server with our datastore in place of its simulator (which keeps a copy of every value).
    pymodbus builds its context from a SimDevice; the request handlers then only call the context's
    `async_getValues`/`async_setValues`/`device_ids`."""

    def __init__(
        self, datastore: _Datastore, address: tuple[str, int], identity: ModbusDeviceIdentification
    ) -> None:
        placeholder = SimDevice(0, simdata=[SimData(0)])
        super().__init__(placeholder, address=address, identity=identity, custom_pdu=_READ_REQUESTS)
        self.context = datastore  # type: ignore[assignment]


def _identity() -> ModbusDeviceIdentification:
    """What Read Device Identification (function 43/14) tells."""
    return ModbusDeviceIdentification(  # type: ignore[no-untyped-call]
        info_name={
            "VendorName": "ocpp-gateway",
            "ProductCode": "OCPP-GW",
            "MajorMinorRevision": __version__,
            "ProductName": "OCPP to BACnet/Modbus gateway",
            "ModelName": "ocpp-gateway",
        }
    )
