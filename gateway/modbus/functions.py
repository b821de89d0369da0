"""The function codes the Modbus TCP server serves, each request checked as the Modbus Application Protocol
Specification V1.1b3 says (§6) before the register map sees it: its length, counts, byte counts and values.

Served: 1, 2, 3, 4 (reads), 5, 6, 15, 16 (writes) and 43/14 (Read Device Identification). Every other function
code is exception 1, illegal function, answered for the request's own function code (§7) on any unit: 22 (mask
write) and 23 (read/write multiple) too, which would read-modify-write registers the gateway may only know as a
sentinel.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn, Protocol

from pymodbus.constants import ExcCodes

LOG = logging.getLogger(__name__)

COIL_ON, COIL_OFF = 0xFF00, 0x0000  # §6.5: any other value is illegal
MAX_READ = {1: 2000, 2: 2000, 3: 125, 4: 125}  # §6.1-6.4: bits, registers
MAX_WRITE = {15: 0x07B0, 16: 0x007B}  # §6.11, §6.12
SERVED = (1, 2, 3, 4, 5, 6, 15, 16, 43)
READ_DEVICE_ID = 0x0E  # the MEI type of function 43 that is served
_CONFORMITY = 0x82  # basic and regular objects, stream and individual access (§6.21)
_OBJECTS = {1: range(0x00, 0x03), 2: range(0x00, 0x07), 3: range(0x00, 0x100)}  # per read device id code


class Store(Protocol):
    """The register map, as the server reads and writes it (`ModbusServer`)."""

    def serves(self, unit: int) -> bool: ...

    def read(
        self, unit: int, function_code: int, address: int, count: int
    ) -> list[int] | list[bool] | ExcCodes: ...

    def write(
        self, unit: int, function_code: int, address: int, values: Sequence[int] | Sequence[bool]
    ) -> ExcCodes | None: ...


class Refused(Exception):
    """A request answered with an exception code."""

    def __init__(self, code: ExcCodes) -> None:
        super().__init__(code)
        self.code = code


class Functions:
    """Answers request PDUs with response PDUs."""

    def __init__(self, store: Store, identity: Mapping[int, str]) -> None:
        self.store = store
        self.identity = identity
        self._handlers: dict[int, Callable[[int, bytes], bytes]] = {
            1: self._read,
            2: self._read,
            3: self._read,
            4: self._read,
            5: self._write_coil,
            6: self._write_register,
            15: self._write_many,
            16: self._write_many,
            43: self._identification,
        }

    def answer(self, unit: int, pdu: bytes) -> bytes:
        """The response PDU to a request PDU (one byte at least: the function code)."""
        function = pdu[0]
        handler = self._handlers.get(function)
        try:
            if handler is None or (function == 43 and pdu[1:2] not in (b"", bytes([READ_DEVICE_ID]))):
                raise Refused(ExcCodes.ILLEGAL_FUNCTION)
            if not self.store.serves(unit):
                raise Refused(ExcCodes.GATEWAY_NO_RESPONSE)
            return handler(unit, pdu)
        except Refused as refused:
            return bytes([function | 0x80, refused.code])
        except Exception:
            LOG.exception("Modbus request %s to unit %d failed", pdu.hex(" "), unit)
            return bytes([function | 0x80, ExcCodes.DEVICE_FAILURE])

    def _read(self, unit: int, pdu: bytes) -> bytes:
        function, address, count = _unpack(">BHH", pdu, whole=True)
        _check_range(address, count, MAX_READ[function])
        values = _values(self.store.read(unit, function, address, count))
        bits = function in (1, 2)
        data = _pack_bits([bool(v) for v in values]) if bits else struct.pack(f">{len(values)}H", *values)
        return struct.pack(">BB", function, len(data)) + data

    def _write_coil(self, unit: int, pdu: bytes) -> bytes:
        _, address, value = _unpack(">BHH", pdu, whole=True)
        if value not in (COIL_ON, COIL_OFF):
            _refuse_write(unit, 5, address, f"0x{value:04X} is neither 0xFF00 (on) nor 0x0000 (off)")
        _written(self.store.write(unit, 5, address, [value == COIL_ON]))
        return pdu  # §6.5: the answer echoes the request

    def _write_register(self, unit: int, pdu: bytes) -> bytes:
        _, address, value = _unpack(">BHH", pdu, whole=True)
        _written(self.store.write(unit, 6, address, [value]))
        return pdu  # §6.6: the answer echoes the request

    def _write_many(self, unit: int, pdu: bytes) -> bytes:
        function, address, count, size = _unpack(">BHHB", pdu)
        bits = function == 15
        if size != ((count + 7) // 8 if bits else 2 * count) or len(pdu) != 6 + size:
            _refuse_write(
                unit, function, address, f"byte count {size} for {count}, {len(pdu) - 6} bytes given"
            )
        if not 1 <= count <= MAX_WRITE[function]:
            _refuse_write(unit, function, address, f"{count} values, 1 to {MAX_WRITE[function]} allowed")
        _check_range(address, count, MAX_WRITE[function])
        data = pdu[6:]
        values: list[bool] | list[int]
        if bits:
            values = [bool(data[i // 8] >> (i % 8) & 1) for i in range(count)]
        else:
            values = list(struct.unpack(f">{count}H", data))
        _written(self.store.write(unit, function, address, values))
        return struct.pack(">BHH", function, address, count)

    def _identification(self, _unit: int, pdu: bytes) -> bytes:
        """§6.21, 43/14 Read Device Identification."""
        _, _, code, first = _unpack(">BBBB", pdu, whole=True)
        if code == 4:  # one object
            if not self.identity.get(first):
                raise Refused(ExcCodes.ILLEGAL_ADDRESS)
            ids: Sequence[int] = [first]
        elif code in _OBJECTS:
            ids = [i for i in _OBJECTS[code] if self.identity.get(i)]
            if first not in ids:  # "as if object 0 were pointed out"
                first = 0
            ids = [i for i in ids if i >= first]
        else:
            raise Refused(ExcCodes.ILLEGAL_VALUE)
        objects = b""
        more = following = count = 0
        for object_id in ids:
            value = self.identity[object_id].encode()[:245]
            if 7 + len(objects) + 2 + len(value) > 253:  # the rest in the next request
                more, following = 0xFF, object_id
                break
            objects += struct.pack(">BB", object_id, len(value)) + value
            count += 1
        return (
            struct.pack(">BBBBBBB", 43, READ_DEVICE_ID, code, _CONFORMITY, more, following, count) + objects
        )


def _unpack(layout: str, pdu: bytes, *, whole: bool = False) -> tuple[int, ...]:
    """The request's fields; a PDU too short for them (or, `whole`, longer) is exception 3 (§7: "the implied
    length is incorrect")."""
    size = struct.calcsize(layout)
    if len(pdu) < size or (whole and len(pdu) != size):
        raise Refused(ExcCodes.ILLEGAL_VALUE)
    return struct.unpack_from(layout, pdu)


def _refuse_write(unit: int, function: int, address: int, reason: str) -> NoReturn:
    LOG.info(
        "Modbus write (function %d) to unit %d address %d refused (exception 3): %s",
        function,
        unit,
        address,
        reason,
    )
    raise Refused(ExcCodes.ILLEGAL_VALUE)


def _check_range(address: int, count: int, most: int) -> None:
    if not 1 <= count <= most:
        raise Refused(ExcCodes.ILLEGAL_VALUE)
    if address + count > 0x10000:
        raise Refused(ExcCodes.ILLEGAL_ADDRESS)


def _values(result: list[int] | list[bool] | ExcCodes) -> list[int] | list[bool]:
    if isinstance(result, ExcCodes):
        raise Refused(result)
    return result


def _written(result: ExcCodes | None) -> None:
    if result is not None:
        raise Refused(result)


def _pack_bits(bits: Sequence[bool]) -> bytes:
    """Bits as Modbus packs them: the first in the low bit of the first byte."""
    data = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            data[index // 8] |= 1 << (index % 8)
    return bytes(data)
