"""The Modbus TCP server end to end: chargers (the `ocpp` package over a real WebSocket) report to the gateway, and
pymodbus's client reads and writes over TCP on loopback, as a BMS would; it decodes with its own converters, not
ours. The same reads and writes by Debian's mbpoll are in `test_modbus_mbpoll.py`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU

from gateway.mapping import Mapping
from gateway.modbus.registers import RegisterMap
from gateway.server import RunningGateway
from gateway.settings import Settings
from tests.conftest import TEST_MAPPING, connect_charger, eventually, make_settings
from tests.scripted import Scripted

TEMPLATE: dict[str, Any] = {
    "points": [
        {"source": "online", "modbus": {"table": "input", "offset": 0, "type": "uint16"}},
        {"source": "write_status", "modbus": {"table": "input", "offset": 8, "type": "uint16"}},
        {"source": "1/status", "modbus": {"table": "input", "offset": 10, "type": "uint16"}},
        {"source": "1/transaction_active", "modbus": {"table": "discrete-input", "offset": 12}},
        {"source": "1/smart_charging", "writable": True, "modbus": {"table": "coil", "offset": 13}},
        {"source": "1/meter/Energy.Active.Import.Register", "modbus": {"table": "input", "offset": 16,
                                                                       "type": "uint32"}},
        {"source": "1/meter/Power.Active.Import", "modbus": {"table": "input", "offset": 18, "type": "float32"}},
        {"source": "1/meter/Current.Import/L1", "modbus": {"table": "input", "offset": 20, "type": "int16",
                                                           "scale": 10}},
        {"source": "1/meter/Temperature", "modbus": {"table": "input", "offset": 22, "type": "int32",
                                                     "word_order": "little"}},
        {"source": "1/limit", "writable": True, "minimum": 0, "maximum": 32,
         "modbus": {"table": "holding", "offset": 24, "type": "float32"}},
        {"source": "config/HeartbeatInterval", "writable": True, "minimum": 10, "maximum": 3600,
         "modbus": {"table": "holding", "offset": 5, "type": "uint16"}},
        {"source": "1/transaction_id", "modbus": {"table": "holding", "offset": 26, "type": "uint16"}},
        {"source": "1/id_tag", "modbus": {"table": "input", "offset": 30, "type": "string", "length": 10}},
    ]
}  # fmt: skip
MAPPING: dict[str, Any] = {
    **TEST_MAPPING,
    "templates": {"ac": TEMPLATE},
    "chargers": [
        {"id": "CP1", "registration": "Accepted", "template": "ac", "modbus": {"unit": 1, "base_address": 0}},
        {"id": "CP2", "registration": "Accepted"},
        {
            "pattern": "C1-*",
            "registration": "Accepted",
            "template": "ac",
            "slots": 3,
            "modbus": {"unit": 10, "base_address": 0, "unit_per_slot": True},
        },
    ],
    "modbus": {"layout_version": 3, "gateway_block": 9000},
}
NAN = [0x7FC0, 0x0000]
PENDING, ACCEPTED, STORED, REJECTED = 1, 2, 3, 4


@pytest.fixture
def mapping() -> Mapping:
    return Mapping.model_validate(MAPPING)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, modbus_enabled=True, modbus_host="127.0.0.1", modbus_port=0)


@pytest.fixture
async def client(gateway: RunningGateway) -> AsyncIterator[AsyncModbusTcpClient]:
    connected = AsyncModbusTcpClient("127.0.0.1", port=gateway.app.state.services.modbus.port, timeout=3)
    assert await connected.connect()
    yield connected
    connected.close()


@pytest.fixture
async def charger(gateway: RunningGateway) -> AsyncIterator[Scripted]:
    async with connect_charger(gateway, "CP1", cls=Scripted) as connected:
        await connected.boot()
        yield connected


async def inputs(client: AsyncModbusTcpClient, address: int, count: int = 1, unit: int = 1) -> list[int]:
    response = await client.read_input_registers(address, count=count, device_id=unit)
    assert not response.isError(), response
    return list(response.registers)


async def holding(client: AsyncModbusTcpClient, address: int, count: int = 1, unit: int = 1) -> list[int]:
    response = await client.read_holding_registers(address, count=count, device_id=unit)
    assert not response.isError(), response
    return list(response.registers)


def f32(client: AsyncModbusTcpClient, words: list[int]) -> float:
    return float(client.convert_from_registers(words, client.DATATYPE.FLOAT32))  # type: ignore[arg-type]


def float_words(client: AsyncModbusTcpClient, value: float) -> list[int]:
    return client.convert_to_registers(value, client.DATATYPE.FLOAT32)


async def report(charger: Scripted, state: str = "Charging", **values: str) -> None:
    await charger.call(call.StatusNotification(connector_id=1, error_code="NoError", status=state))
    sampled = [
        {"value": values.get("energy", "12.5"), "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
        {"value": values.get("power", "7200.5"), "measurand": "Power.Active.Import", "unit": "W"},
        {"value": values.get("current", "-1.6"), "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        {"value": values.get("temperature", "-12"), "measurand": "Temperature", "unit": "Celsius"},
    ]
    await charger.call(
        call.MeterValues(
            connector_id=1, meter_value=[{"timestamp": "2026-11-22T10:00:00Z", "sampled_value": sampled}]
        )
    )


async def received(charger: Scripted, action: str, count: int = 1) -> list[dict[str, Any]]:
    for _ in range(200):
        if len(charger.calls(action)) >= count:
            break
        await asyncio.sleep(0.02)
    return charger.calls(action)


async def start_transaction(charger: Scripted) -> None:
    await charger.call(
        call.StartTransaction(
            connector_id=1, id_tag="TAG-OK", meter_start=0, timestamp="2026-11-22T10:00:00Z"
        )
    )


def limit_of(profile: dict[str, Any]) -> float:
    return float(profile["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])


# -- reading ----------------------------------------------------------------------------------------------------


async def test_status_and_meter_values_read_with_their_type_and_scale(
    charger: Scripted, client: AsyncModbusTcpClient
) -> None:
    await report(charger)

    assert await eventually(lambda: inputs(client, 10), [3]) == [3]  # state 3: Charging
    assert await inputs(client, 0) == [1]  # the quality register: online
    energy = await inputs(client, 16, 2)
    assert client.convert_from_registers(energy, client.DATATYPE.UINT32) == 12_500  # kWh sent, Wh shown
    assert f32(client, await inputs(client, 18, 2)) == 7200.5
    current = await inputs(client, 20)
    assert client.convert_from_registers(current, client.DATATYPE.INT16) == -16  # -1.6 A x 10
    temperature = await inputs(client, 22, 2)
    assert client.convert_from_registers(temperature, client.DATATYPE.INT32, word_order="little") == -12
    # one request over several points and the gap-free block of them
    block = await inputs(client, 16, 5)
    assert block[:2] == energy and block[4] == current[0]
    bits = await client.read_discrete_inputs(12, count=1, device_id=1)
    assert bits.bits[0] is False

    await start_transaction(charger)

    async def tag() -> str:
        return str(client.convert_from_registers(await inputs(client, 30, 10), client.DATATYPE.STRING))

    assert (await eventually(tag, "TAG-OK")).rstrip("\0") == "TAG-OK"
    bits = await client.read_discrete_inputs(12, count=1, device_id=1)
    assert bits.bits[0] is True


async def test_offline_and_unknown_values_read_as_sentinels(gateway: RunningGateway) -> None:
    port = gateway.app.state.services.modbus.port
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3)
    assert await client.connect()
    assert await inputs(client, 0) == [0]  # listed, never connected: offline
    assert await inputs(client, 10) == [0xFFFF]  # unknown status
    assert await inputs(client, 18, 2) == NAN
    assert await inputs(client, 20) == [0x8000]

    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        await charger.boot()
        await report(charger)
        assert await eventually(lambda: inputs(client, 10), [3]) == [3]
        assert await inputs(client, 0) == [1]
    assert await eventually(lambda: inputs(client, 0), [0]) == [0]
    assert await inputs(client, 10) == [0xFFFF]
    assert await inputs(client, 18, 2) == NAN
    assert await inputs(client, 16, 2) == [0xFFFF, 0xFFFF]
    client.close()


async def test_a_32_bit_value_is_never_torn(charger: Scripted, client: AsyncModbusTcpClient) -> None:
    """Energy crossing a 16-bit boundary (65535 -> 65536 Wh) while a client reads: a torn read would show
    131071 or 0."""
    sent = {65_535, 65_536}
    seen: set[int] = set()

    async def read_all() -> None:
        for _ in range(150):
            words = await inputs(client, 16, 2)
            if words != [0xFFFF, 0xFFFF]:
                seen.add(int(client.convert_from_registers(words, client.DATATYPE.UINT32)))  # type: ignore[arg-type]

    async def send_all() -> None:
        for n in range(40):
            energy = "65535" if n % 2 == 0 else "65536"
            await charger.call(
                call.MeterValues(
                    connector_id=1,
                    meter_value=[
                        {
                            "timestamp": "2026-11-22T10:00:00Z",
                            "sampled_value": [
                                {"value": energy, "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                            ],
                        }
                    ],
                )
            )

    await asyncio.gather(read_all(), send_all())
    assert seen and seen <= sent


async def test_the_gateway_block(
    gateway: RunningGateway, charger: Scripted, client: AsyncModbusTcpClient
) -> None:
    words = await inputs(client, 9000, 14)
    assert words == await holding(client, 9000, 14)  # the same block for clients that only read holding
    assert client.convert_from_registers(words[0:2], client.DATATYPE.STRING) == "OCGW"
    assert words[2:4] == [1, 3]  # block version 1, the mapping's layout version 3
    checksum = client.convert_from_registers(words[4:6], client.DATATYPE.UINT32)
    assert checksum == RegisterMap(Mapping.model_validate(MAPPING)).checksum
    assert words[6:9] == [0, 1, 0]  # gateway 0.1.0
    assert words[9:11] == [1, 1]  # CP1 is the one charger the map holds, and online
    uptime = client.convert_from_registers(words[11:13], client.DATATYPE.UINT32)
    assert isinstance(uptime, int) and 0 <= uptime < 3600

    async with connect_charger(gateway, "C1-0001", cls=Scripted) as amina:
        await amina.boot()
        assert await eventually(lambda: inputs(client, 9009, 2, unit=10), [2, 2]) == [2, 2]
        assert await inputs(client, 9000, 14, unit=12) == await inputs(client, 9000, 14, unit=1)


async def test_a_pattern_charger_takes_its_slots_unit(
    gateway: RunningGateway, client: AsyncModbusTcpClient
) -> None:
    assert await inputs(client, 0, unit=10) == [0]  # a slot no charger holds: nothing connected
    assert await inputs(client, 10, unit=10) == [0xFFFF]
    async with connect_charger(gateway, "C1-0001", cls=Scripted) as amina:
        await amina.boot()
        await report(amina, "Preparing")
        assert await eventually(lambda: inputs(client, 10, unit=10), [2]) == [2]
        assert await inputs(client, 0, unit=10) == [1]
        assert await inputs(client, 0, unit=11) == [0]
        assert await inputs(client, 10, unit=11) == [0xFFFF]


# -- writing ----------------------------------------------------------------------------------------------------


async def test_a_limit_written_over_modbus_reaches_the_charger(
    charger: Scripted, client: AsyncModbusTcpClient
) -> None:
    await start_transaction(charger)
    done = await client.write_registers(24, float_words(client, 12.0), device_id=1)
    assert not done.isError(), done
    assert await eventually(lambda: inputs(client, 8), [STORED]) == [STORED]  # smart charging is still off
    assert charger.calls("SetChargingProfile") == []

    done = await client.write_coil(13, True, device_id=1)
    assert not done.isError() and done.bits[0] is True
    assert [limit_of(p) for p in await received(charger, "SetChargingProfile")] == [12.0]

    charger.hold["SetChargingProfile"] = asyncio.Event()
    done = await client.write_registers(24, float_words(client, 16.0), device_id=1)
    assert not done.isError(), done
    assert await inputs(client, 8) == [PENDING]  # acknowledged before the charger answers
    charger.hold["SetChargingProfile"].set()
    assert [limit_of(p) for p in await received(charger, "SetChargingProfile", 2)] == [12.0, 16.0]
    assert await eventually(lambda: inputs(client, 8), [ACCEPTED]) == [ACCEPTED]
    assert f32(client, await eventually(lambda: holding(client, 24, 2), float_words(client, 16.0))) == 16.0

    charger.answers["SetChargingProfile"] = "Rejected"
    await client.write_registers(24, float_words(client, 8.0), device_id=1)
    assert await eventually(lambda: inputs(client, 8), [REJECTED]) == [REJECTED]


async def test_a_configuration_key_written_over_modbus(
    charger: Scripted, client: AsyncModbusTcpClient
) -> None:
    done = await client.write_register(5, 120, device_id=1)
    assert not done.isError(), done
    assert done.registers == [120]  # the answer echoes the request, though the charger has not answered yet
    changes = await received(charger, "ChangeConfiguration")
    assert changes == [{"key": "HeartbeatInterval", "value": "120"}]
    assert await eventually(lambda: inputs(client, 8), [ACCEPTED]) == [ACCEPTED]
    assert await eventually(lambda: holding(client, 5), [120]) == [120]


BAD_REQUESTS: list[tuple[str, Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]], int]] = [
    ("unmapped input register", lambda c: c.read_input_registers(1, count=1, device_id=1), 2),
    ("a read across a gap", lambda c: c.read_input_registers(8, count=3, device_id=1), 2),
    ("unmapped holding register", lambda c: c.write_register(40, 1, device_id=1), 2),
    ("unmapped coil", lambda c: c.write_coil(14, True, device_id=1), 2),
    ("a read-only point's holding register", lambda c: c.write_register(26, 1, device_id=1), 2),
    ("the gateway block", lambda c: c.write_register(9003, 1, device_id=1), 2),
    ("half a float32, high word", lambda c: c.write_register(24, 0x4180, device_id=1), 3),
    ("half a float32, low word", lambda c: c.write_register(25, 0, device_id=1), 3),
    ("the low word and the next register", lambda c: c.write_registers(25, [0, 0], device_id=1), 3),
    ("a limit above its maximum", lambda c: c.write_registers(24, float_words(c, 40.0), device_id=1), 3),
    ("a limit below its minimum", lambda c: c.write_registers(24, float_words(c, -1.0), device_id=1), 3),
    ("NaN", lambda c: c.write_registers(24, [0x7FC0, 0], device_id=1), 3),
    ("a key below its minimum", lambda c: c.write_register(5, 5, device_id=1), 3),
    ("the uint16 sentinel", lambda c: c.write_register(5, 0xFFFF, device_id=1), 3),
    ("a unit the map does not use", lambda c: c.read_input_registers(0, count=1, device_id=99), 11),
    ("a slot no charger holds", lambda c: c.write_register(5, 60, device_id=11), 11),
]


@pytest.mark.parametrize(
    ("request_", "expected"), [(r[1], r[2]) for r in BAD_REQUESTS], ids=[r[0] for r in BAD_REQUESTS]
)
async def test_each_bad_request_gets_its_exception_code(
    charger: Scripted,
    client: AsyncModbusTcpClient,
    request_: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]],
    expected: int,
) -> None:
    response = await request_(client)
    assert response.isError(), response
    assert response.exception_code == expected
    # the server keeps answering, and nothing reached the charger
    assert await inputs(client, 0) == [1]
    await asyncio.sleep(0.05)
    assert [name for name, _ in charger.received if name != "GetConfiguration"] == []


async def raw_request(port: int, frame: bytes) -> bytes:
    """Send one hand-made Modbus TCP frame (no client library to tidy it up) and return the answer's PDU."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(7), 3)
        length = int.from_bytes(header[4:6], "big")
        return await asyncio.wait_for(reader.readexactly(length - 1), 3)
    finally:
        writer.close()
        await writer.wait_closed()


def mbap(pdu: bytes, unit: int = 1, transaction: int = 7) -> bytes:
    return transaction.to_bytes(2, "big") + b"\0\0" + (len(pdu) + 1).to_bytes(2, "big") + bytes([unit]) + pdu


async def test_requests_the_protocol_does_not_allow(
    gateway: RunningGateway, client: AsyncModbusTcpClient
) -> None:
    port = gateway.app.state.services.modbus.port
    # 126 input registers: more than one answer can carry
    assert await raw_request(port, mbap(bytes([4, 0, 0, 0, 126]))) == bytes([0x84, 3])
    # 2001 discrete inputs
    assert await raw_request(port, mbap(bytes([2, 0, 0, 0x07, 0xD1]))) == bytes([0x82, 3])
    # a function code no one defined: exception 1, for its own function code (test_modbus_protocol.py has more)
    assert await raw_request(port, mbap(bytes([0x64, 0, 0]))) == bytes([0xE4, 1])
    # a write whose byte count disagrees with its register count
    assert await raw_request(port, mbap(bytes([16, 0, 24, 0, 2, 2, 0x41, 0x80]))) == bytes([0x90, 3])
    # the gateway still answers, on the connection it had and on new ones
    assert await inputs(client, 0) == [0]
    assert await raw_request(port, mbap(bytes([4, 0, 0, 0, 1]))) == bytes([4, 2, 0, 0])


async def test_gaps_may_read_as_zero(tmp_path: Path, mapping: Mapping) -> None:
    from gateway.server import running

    settings = make_settings(tmp_path, modbus_enabled=True, modbus_port=0, modbus_read_gaps=True)
    async with running(settings, mapping) as gateway:
        client = AsyncModbusTcpClient("127.0.0.1", port=gateway.app.state.services.modbus.port, timeout=3)
        assert await client.connect()
        words = await inputs(client, 0, 12)
        assert words[0] == 0 and words[1:8] == [0] * 7 and words[10] == 0xFFFF
        response = await client.read_input_registers(100, count=5, device_id=1)
        assert response.isError() and response.exception_code == 2  # nothing mapped at all
        client.close()
