"""The Modbus TCP server against the protocol's own documents, with hand-made frames (MBAP header and PDU packed
with `struct`) on a plain asyncio connection, so that no client library tidies a request up or reads an answer
kindly: the Modbus Application Protocol Specification V1.1b3 ("Application Protocol") and the Modbus Messaging on
TCP/IP Implementation Guide V1.0b ("Implementation Guide")."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from ocpp.v16 import call

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from tests.conftest import connect_charger, eventually, make_settings
from tests.scripted import Scripted
from tests.test_modbus_e2e import MAPPING

SMART_CHARGING = 13  # coil of CP1 (unit 1)
HEARTBEAT = 5  # holding register of CP1: configuration key HeartbeatInterval, uint16, 10..3600
LIMIT = 24  # holding registers of CP1: float32, 0..32 A
WRITE_STATUS = 8  # input register of CP1
STORED = 3
UNMAPPED_UNIT = 99


@pytest.fixture
def mapping() -> Mapping:
    return Mapping.model_validate(MAPPING)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, modbus_enabled=True, modbus_host="127.0.0.1", modbus_port=0)


@pytest.fixture
def port(gateway: RunningGateway) -> int:
    return int(gateway.app.state.services.modbus.port)


@pytest.fixture
async def charger(gateway: RunningGateway) -> AsyncIterator[Scripted]:
    async with connect_charger(gateway, "CP1", cls=Scripted) as connected:
        await connected.boot()
        yield connected


def frame(pdu: bytes, unit: int = 1, transaction: int = 7) -> bytes:
    """An MBAP header (transaction, protocol 0, length of unit and PDU, unit) and the PDU."""
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


def read(function: int, address: int, count: int = 1) -> bytes:
    return struct.pack(">BHH", function, address, count)


def exception(function: int, code: int) -> bytes:
    return bytes([function | 0x80, code])


class Raw:
    """One TCP connection that sends bytes as given and reads answers frame by frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)  # one write, one send() of the whole buffer on loopback
        await self.writer.drain()

    async def answer(self, timeout: float = 3) -> tuple[int, int, bytes]:
        """The next answer: (transaction id, unit, PDU)."""
        header = await asyncio.wait_for(self.reader.readexactly(7), timeout)
        transaction, protocol, length, unit = struct.unpack(">HHHB", header)
        assert protocol == 0
        pdu = await asyncio.wait_for(self.reader.readexactly(length - 1), timeout)
        return transaction, unit, pdu

    async def ask(self, pdu: bytes, unit: int = 1, transaction: int = 7) -> bytes:
        await self.send(frame(pdu, unit, transaction))
        answered = await self.answer()
        assert answered[:2] == (transaction, unit)
        return answered[2]

    async def closed_by_server(self, timeout: float = 3) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except ConnectionResetError:
            return True


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[Raw]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield Raw(reader, writer)
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()


async def nothing_reached(charger: Scripted) -> bool:
    await asyncio.sleep(0.1)
    return [name for name, _ in charger.received if name != "GetConfiguration"] == []


# -- pipelining -------------------------------------------------------------------------------------------------


async def test_pipelined_requests_in_one_segment_are_all_answered_in_order(port: int) -> None:
    """Implementation Guide §4.2 (TCP connection management: several transactions may be outstanding on one
    connection) and §3.1.3 (the server copies each request's transaction identifier into its answer)."""
    requests = [
        (1, 1, read(4, 0), bytes([4, 2, 0, 0])),  # CP1 offline
        (2, 1, read(3, HEARTBEAT), bytes([3, 2, 0xFF, 0xFF])),  # never read from the charger: the sentinel
        (3, 1, read(4, 1), exception(4, 2)),  # refused: nothing mapped there
        (4, UNMAPPED_UNIT, read(3, 0), exception(3, 0x0B)),  # refused: a unit the map does not use
        (5, 10, read(4, 9000, 2), bytes([4, 4]) + b"OCGW"),
        (6, 1, read(1, SMART_CHARGING), bytes([1, 1, 0])),
    ]
    async with connection(port) as raw:
        await raw.send(b"".join(frame(pdu, unit, tid) for tid, unit, pdu, _ in requests))
        answers = [await raw.answer() for _ in requests]
        assert answers == [(tid, unit, expected) for tid, unit, _, expected in requests]


async def test_a_hundred_pipelined_requests_are_all_answered_in_order(port: int) -> None:
    """Implementation Guide §4.2: pipelining, well past one TCP segment's worth of requests."""
    tids = range(1000, 1100)
    async with connection(port) as raw:
        await raw.send(b"".join(frame(read(3 if t % 2 else 4, 9000, 2), 1, t) for t in tids))
        answers = [await raw.answer() for _ in tids]
    assert [a[0] for a in answers] == list(tids)
    assert all(pdu[1:] == b"\x04OCGW" for _, _, pdu in answers)
    assert [pdu[0] for _, _, pdu in answers] == [3 if t % 2 else 4 for t in tids]


async def test_a_request_split_across_sends_is_answered_once_complete(port: int) -> None:
    """Implementation Guide §3.1.3: the MBAP length field tells where a request ends, however TCP cuts the
    stream."""
    first, second = frame(read(4, 0), 1, 21), frame(read(4, 9000, 2), 1, 22)
    async with connection(port) as raw:
        await raw.send(first[:5])  # not even the whole header
        with pytest.raises(asyncio.TimeoutError):
            await raw.answer(timeout=0.2)
        await raw.send(first[5:9])
        with pytest.raises(asyncio.TimeoutError):
            await raw.answer(timeout=0.2)
        await raw.send(first[9:] + second[:3])
        assert await raw.answer() == (21, 1, bytes([4, 2, 0, 0]))
        await raw.send(second[3:])
        assert await raw.answer() == (22, 1, bytes([4, 4]) + b"OCGW")


# -- write single coil -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0x1234, 0x0001, 0xFFFF, 0x00FF])
async def test_write_single_coil_takes_only_on_and_off(
    charger: Scripted, port: int, value: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Application Protocol §6.5 (05 Write Single Coil): FF00 is ON, 0000 is OFF, "all other values are illegal
    and will not affect the output": exception 3, and smart charging stays off."""
    await charger.call(
        call.StartTransaction(
            connector_id=1, id_tag="TAG-OK", meter_start=0, timestamp="2026-11-22T10:00:00Z"
        )
    )
    async with connection(port) as raw:
        limit = struct.pack(">BHHB", 16, LIMIT, 2, 4) + struct.pack(">f", 12.0)
        assert await raw.ask(limit) == struct.pack(">BHH", 16, LIMIT, 2)
        stored = bytes([4, 2, 0, STORED])
        assert await eventually(lambda: raw.ask(read(4, WRITE_STATUS)), stored) == stored

        caplog.set_level(logging.INFO, logger="gateway.modbus")
        assert await raw.ask(struct.pack(">BHH", 5, SMART_CHARGING, value)) == exception(5, 3)
        assert (
            f"0x{value:04X} is neither 0xFF00 (on) nor 0x0000 (off)" in caplog.text
        )  # logged with its reason
        assert await nothing_reached(charger)
        assert await raw.ask(read(1, SMART_CHARGING)) == bytes([1, 1, 0])
        assert await raw.ask(read(4, WRITE_STATUS)) == bytes([4, 2, 0, STORED])

        # the same coil switched on the right way: the answer echoes the request, and the limit leaves
        on = struct.pack(">BHH", 5, SMART_CHARGING, 0xFF00)
        assert await raw.ask(on) == on
    for _ in range(100):
        if charger.calls("SetChargingProfile"):
            break
        await asyncio.sleep(0.02)
    assert len(charger.calls("SetChargingProfile")) == 1


# -- function codes ----------------------------------------------------------------------------------------------

NOT_SERVED = {
    "07 read exception status (serial line only)": bytes([0x07]),
    "08 diagnostics, return query data (serial line only)": bytes([0x08, 0, 0, 0xA5, 0x37]),
    "11 get comm event counter (serial line only)": bytes([0x0B]),
    "12 get comm event log (serial line only)": bytes([0x0C]),
    "17 report server id (serial line only)": bytes([0x11]),
    "20 read file record": bytes([0x14, 7, 6, 0, 4, 0, 1, 0, 2]),
    "21 write file record": bytes([0x15, 9, 6, 0, 4, 0, 7, 0, 1, 0x12, 0x34]),
    "22 mask write register: HeartbeatInterval := 120": struct.pack(">BHHH", 0x16, HEARTBEAT, 0, 120),
    "23 read/write multiple registers: HeartbeatInterval := 120": struct.pack(
        ">BHHHHBH", 0x17, HEARTBEAT, 1, HEARTBEAT, 1, 2, 120
    ),
    "24 read FIFO queue": struct.pack(">BH", 0x18, HEARTBEAT),
    "43/13 CANopen general reference": bytes([0x2B, 0x0D, 0, 0, 0, 0]),
    "0x41, user-defined": bytes([0x41, 0, 0]),
    "0x64, user-defined": bytes([0x64, 0, 0, 0, 1]),
    "0x00, no function": bytes([0x00, 0, 0]),
}


@pytest.mark.parametrize(
    "unit", [1, 10, UNMAPPED_UNIT], ids=["unit 1 (CP1)", "unit 10 (a slot)", "unmapped unit"]
)
async def test_function_codes_the_gateway_does_not_serve_are_illegal_functions(
    charger: Scripted, port: int, unit: int
) -> None:
    """Application Protocol §7: exception 1, ILLEGAL FUNCTION, for a function code the server does not serve,
    answered with the request's own function code + 0x80 (§4.1) on whichever unit it is asked of; 22 and 23
    write too, and are refused rather than read-modify-write a value the gateway may only know as a sentinel."""
    async with connection(port) as raw:
        for tid, pdu in enumerate(NOT_SERVED.values(), start=1):
            assert await raw.ask(pdu, unit, tid) == exception(pdu[0], 1), pdu
        # pipelined, too
        await raw.send(b"".join(frame(pdu, unit, tid) for tid, pdu in enumerate(NOT_SERVED.values(), 100)))
        answers = [await raw.answer() for _ in NOT_SERVED]
        assert answers == [
            (tid, unit, exception(pdu[0], 1)) for tid, pdu in enumerate(NOT_SERVED.values(), 100)
        ]
        # the connection keeps serving what the gateway has
        assert await raw.ask(read(4, 9000, 2), unit) == (
            bytes([4, 4]) + b"OCGW" if unit != UNMAPPED_UNIT else exception(4, 0x0B)
        )
    assert await nothing_reached(charger)


async def test_read_device_identification(port: int) -> None:
    """Application Protocol §6.21 (43/14 Read Device Identification): the basic objects (vendor, product code,
    revision); a read device id code other than 1-4 is exception 3, an individual object that does not exist
    exception 2."""
    async with connection(port) as raw:
        answer = await raw.ask(bytes([0x2B, 0x0E, 1, 0]))
        assert answer[:3] == bytes([0x2B, 0x0E, 1])
        more, _, count = answer[4:7]
        assert (more, count) == (0, 3)
        objects, at = {}, 7
        for _ in range(count):
            objects[answer[at]] = answer[at + 2 : at + 2 + answer[at + 1]]
            at += 2 + answer[at + 1]
        assert objects[0] == b"ocpp-gateway" and objects[1] == b"OCPP-GW"
        assert await raw.ask(bytes([0x2B, 0x0E, 0, 0])) == exception(0x2B, 3)
        assert await raw.ask(bytes([0x2B, 0x0E, 4, 0x42])) == exception(0x2B, 2)


MALFORMED = {
    "03 without its count": bytes([3, 0, 5, 0]),
    "04 with a byte too many": bytes([4, 0, 0, 0, 1, 0]),
    "05 without its value": bytes([5, 0, SMART_CHARGING]),
    "06 with a byte too many": struct.pack(">BHHB", 6, HEARTBEAT, 120, 0),
    "43/14 without its object id": bytes([0x2B, 0x0E, 1]),
}


@pytest.mark.parametrize("pdu", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_request_of_the_wrong_length_is_an_illegal_data_value(
    charger: Scripted, port: int, pdu: bytes
) -> None:
    """Application Protocol §7: exception 3 also means "a fault in the structure of the remainder of a complex
    request, such as that the implied length is incorrect"; not exception 1 for function code 0."""
    async with connection(port) as raw:
        assert await raw.ask(pdu) == exception(pdu[0], 3)
        assert await raw.ask(read(4, 0)) == bytes([4, 2, 0, 1])  # and answers the next request
    assert await nothing_reached(charger)


@pytest.mark.parametrize("length", [0, 1, 255, 0xFFFF])
async def test_a_header_whose_length_cannot_be_right_closes_the_connection(port: int, length: int) -> None:
    """Implementation Guide §3.1.3: the length counts the unit and the PDU, which has a function code and at most
    253 bytes (Application Protocol §4.1). A length outside 2-254 leaves no way to find the next request in the
    stream: the connection is closed, and others are served."""
    async with connection(port) as raw, connection(port) as other:
        await raw.send(struct.pack(">HHHB", 1, 0, length, 1) + read(4, 9000, 2))
        assert await raw.closed_by_server()
        assert await other.ask(read(4, 9000, 2)) == bytes([4, 4]) + b"OCGW"


async def test_a_frame_of_another_protocol_is_not_answered(port: int) -> None:
    """Implementation Guide §3.1.3: protocol identifier 0 is Modbus; a frame of another is passed over."""
    async with connection(port) as raw:
        other = struct.pack(">HHHB", 1, 1, 6, 1) + read(4, 9000, 2)
        await raw.send(other + frame(read(4, 9000, 2), 1, 2))
        assert await raw.answer() == (2, 1, bytes([4, 4]) + b"OCGW")


# -- writes of several coils or registers -------------------------------------------------------------------------

BAD_WRITES = {
    "15: byte count 2 for 1 coil": bytes([15, 0, SMART_CHARGING, 0, 1, 2, 1, 0]),
    "15: byte count 1, 2 bytes given": bytes([15, 0, SMART_CHARGING, 0, 1, 1, 1, 1]),
    "15: byte count 1, none given": bytes([15, 0, SMART_CHARGING, 0, 1, 1]),
    "15: 0 coils": bytes([15, 0, SMART_CHARGING, 0, 0, 0]),
    "15: 1969 coils": struct.pack(">BHHB", 15, 0, 1969, 247) + b"\xff" * 247,
    "16: byte count 4 for 1 register": struct.pack(">BHHBHH", 16, HEARTBEAT, 1, 4, 120, 0),
    "16: byte count 2, 4 bytes given": struct.pack(">BHHBHH", 16, HEARTBEAT, 1, 2, 120, 0),
    "16: byte count 2, 1 byte given": struct.pack(">BHHBB", 16, HEARTBEAT, 1, 2, 0),
    "16: 0 registers": struct.pack(">BHHB", 16, HEARTBEAT, 0, 0),
    "16: byte count 0 for 1 register, the value after it": struct.pack(">BHHBH", 16, HEARTBEAT, 1, 0, 120),
}


@pytest.mark.parametrize("pdu", BAD_WRITES.values(), ids=BAD_WRITES.keys())
async def test_a_multiple_write_whose_counts_disagree_writes_nothing(
    charger: Scripted, port: int, pdu: bytes
) -> None:
    """Application Protocol §6.11 (15 Write Multiple Coils: 1 to 0x07B0 outputs, byte count N = outputs / 8
    rounded up) and §6.12 (16 Write Multiple Registers: 1 to 0x007B registers, byte count 2 x N): exception 3,
    and nothing reaches the charger."""
    async with connection(port) as raw:
        assert await raw.ask(pdu) == exception(pdu[0], 3)
        assert await raw.ask(read(1, SMART_CHARGING)) == bytes([1, 1, 0])
    assert await nothing_reached(charger)


# -- connections -------------------------------------------------------------------------------------------------


@asynccontextmanager
async def limited(tmp_path: Path, mapping: Mapping, **limits: float) -> AsyncIterator[int]:
    settings = make_settings(tmp_path, modbus_enabled=True, modbus_host="127.0.0.1", modbus_port=0, **limits)
    async with running(settings, mapping) as gateway:
        yield int(gateway.app.state.services.modbus.port)


async def test_connections_over_the_limit_are_closed(
    tmp_path: Path, mapping: Mapping, caplog: pytest.LogCaptureFixture
) -> None:
    """Implementation Guide §4.2.1 (connection management): a server takes a limited number of connections;
    GATEWAY_MODBUS_MAX_CONNECTIONS sets it, and one warning says the limit was reached."""
    caplog.set_level(logging.WARNING, logger="gateway.modbus")
    async with limited(tmp_path, mapping, modbus_max_connections=3, modbus_idle_timeout=0) as port:
        async with connection(port) as a, connection(port) as b, connection(port) as c:
            for raw in (a, b, c):
                assert await raw.ask(read(4, 0)) == bytes([4, 2, 0, 0])
            async with connection(port) as extra, connection(port) as another:
                assert await extra.closed_by_server()
                assert await another.closed_by_server()
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "3" in warnings[0].getMessage()
            assert await a.ask(read(4, 0)) == bytes([4, 2, 0, 0])  # those inside keep being served
        # below the limit again: new connections are served, and a new overflow warns again
        async with connection(port) as a, connection(port) as b, connection(port) as c:
            for raw in (a, b, c):
                assert await raw.ask(read(4, 0)) == bytes([4, 2, 0, 0])
            async with connection(port) as extra:
                assert await extra.closed_by_server()
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


async def test_an_idle_connection_is_closed(tmp_path: Path, mapping: Mapping) -> None:
    """Implementation Guide §4.2.1: a BMS that stops polling without closing its connection leaves it to the
    server; GATEWAY_MODBUS_IDLE_TIMEOUT closes it, while one that keeps asking stays open."""
    limits = {"modbus_max_connections": 3, "modbus_idle_timeout": 0.5}
    async with (
        limited(tmp_path, mapping, **limits) as port,
        connection(port) as idle,
        connection(port) as active,
    ):
        assert await idle.ask(read(4, 0)) == bytes([4, 2, 0, 0])
        started = asyncio.get_running_loop().time()
        for n in range(15):  # 1.5 s, a request every 0.1 s
            assert await active.ask(read(4, 0), transaction=n) == bytes([4, 2, 0, 0])
            await asyncio.sleep(0.1)
        assert await idle.closed_by_server(timeout=0.1)
        assert asyncio.get_running_loop().time() - started > 0.5
        assert await active.ask(read(4, 0)) == bytes([4, 2, 0, 0])
        # a connection closed for idleness makes room for a new one
        async with connection(port) as new, connection(port) as newer:
            assert await new.ask(read(4, 0)) == bytes([4, 2, 0, 0])
            assert await newer.ask(read(4, 0)) == bytes([4, 2, 0, 0])
