"""The Modbus TCP server seen by Debian's `mbpoll`, an independent Modbus client (libmodbus) run as a
subprocess against the gateway on loopback with mappings/example.yaml: CP1's readings, a limit written as a
float that reaches the charger as SetChargingProfile, and requests the gateway refuses."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from gateway.mapping import Mapping, load_mapping
from gateway.server import RunningGateway
from gateway.settings import Settings
from tests.conftest import connect_charger, eventually, make_settings
from tests.scripted import Scripted

MBPOLL = shutil.which("mbpoll")
if MBPOLL is None:
    pytest.skip(
        "mbpoll not installed (Debian package mbpoll; .ci/run installs it): "
        "the Modbus server is not checked against an independent client",
        allow_module_level=True,
    )

EXAMPLE = Path(__file__).resolve().parent.parent / "mappings" / "example.yaml"
# CP1 in the example mapping: unit 1, base address 0 (addresses count from 0, as with mbpoll -0)
STATUS = 10  # input, uint16 state number (3 = Charging)
ENERGY = 16  # input, uint32 Wh, high word first
POWER = 18  # input, float32 W, high word first
CURRENT_L1 = 20  # input, int16 A x 10
WRITE_STATUS = 8  # input, uint16: 1 pending, 2 accepted, 3 stored, 4 rejected, ...
SMART_CHARGING = 13  # coil
LIMIT = 24  # holding, float32 A (0..32), high word first
UNMAPPED = 9  # no input register there
ACCEPTED, STORED = "2", "3"  # write_status states
VALUE_LINE = re.compile(r"^\[(\d+)\]:\s+(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Poll:
    """One mbpoll run: its exit code, the `[reference]: value` lines it printed, and its error output."""

    code: int
    values: dict[int, str]
    stdout: str
    stderr: str


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, modbus_enabled=True, modbus_host="127.0.0.1", modbus_port=0, mapping=EXAMPLE
    )


@pytest.fixture
def mapping() -> Mapping:
    return load_mapping(EXAMPLE)


@pytest.fixture
def port(gateway: RunningGateway) -> int:
    modbus: Any = gateway.app.state.services.modbus
    return int(modbus.port)


@pytest.fixture
async def charger(gateway: RunningGateway) -> AsyncIterator[Scripted]:
    async with connect_charger(gateway, "CP1", cls=Scripted) as connected:
        await connected.boot()
        yield connected


async def mbpoll(
    port: int, *options: str, write: Sequence[str] = (), unit: int = 1, pdu: bool = True
) -> Poll:
    """Run `mbpoll` once (`-1`) against the gateway: a read, or a write of the values in `write`. `pdu` adds
    `-0` (references are register addresses from 0; mbpoll's own default counts from 1)."""
    assert MBPOLL is not None
    pdu_option = ["-0"] if pdu else []
    argv = ["-1", "-o", "2", "-p", str(port), "-a", str(unit), *pdu_option, *options, "127.0.0.1", *write]
    process = await asyncio.create_subprocess_exec(
        MBPOLL,
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(15):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    out = stdout.decode(errors="replace")
    values = {int(reference): value for reference, value in VALUE_LINE.findall(out)}
    assert process.returncode is not None
    return Poll(process.returncode, values, out, stderr.decode(errors="replace"))


async def read(port: int, table: str, reference: int, pdu: bool = True) -> str:
    """The value mbpoll prints for one reference (32-bit types high word first), asserting it succeeded."""
    big_endian = ["-B"] if ":" in table else []
    poll = await mbpoll(port, "-t", table, *big_endian, "-r", str(reference), pdu=pdu)
    assert poll.code == 0, f"mbpoll exited {poll.code}: {poll.stderr}{poll.stdout}"
    assert reference in poll.values, poll.stdout
    return poll.values[reference]


async def sent_limits(charger: Scripted, count: int, timeout: float = 5.0) -> list[float]:
    deadline = asyncio.get_running_loop().time() + timeout
    while len(charger.calls("SetChargingProfile")) < count and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return [
        p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        for p in charger.calls("SetChargingProfile")
    ]


async def test_mbpoll_reads_status_energy_power_and_current(charger: Scripted, port: int) -> None:
    await charger.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
    sampled = [
        {"value": "7200.5", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
        {"value": "10.7", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
    ]
    await charger.call(
        call.MeterValues(
            connector_id=1, meter_value=[{"timestamp": "2026-11-22T10:00:00Z", "sampled_value": sampled}]
        )
    )

    assert await eventually(lambda: read(port, "3", STATUS), "3") == "3"  # Charging
    assert await read(port, "3:int", ENERGY) == "12500"  # Wh
    assert await read(port, "3:float", POWER) == "7200.5"  # W
    assert await read(port, "3", CURRENT_L1) == "107"  # A x 10
    # mbpoll's default 1-based references: 11 is register address 10 ("30011" in a register list)
    assert await read(port, "3", STATUS + 1, pdu=False) == "3"
    # two status registers in one request (status, error code), each on its own line
    poll = await mbpoll(port, "-t", "3", "-r", str(STATUS), "-c", "2")
    assert poll.code == 0, poll.stderr
    assert sorted(poll.values) == [STATUS, STATUS + 1] and poll.values[STATUS] == "3"


async def test_mbpoll_writes_the_limit_as_a_float_and_the_charger_receives_it(
    charger: Scripted, port: int
) -> None:
    enable = await mbpoll(port, "-t", "0", "-r", str(SMART_CHARGING), write=["1"])
    assert enable.code == 0, enable.stderr
    assert "Written 1 references" in enable.stdout
    assert await read(port, "0", SMART_CHARGING) == "1"
    # the switch is taken, and with no limit set yet there is nothing to send
    assert await eventually(lambda: read(port, "3", WRITE_STATUS), STORED) == STORED

    written = await mbpoll(port, "-t", "4:float", "-B", "-r", str(LIMIT), write=["12.5"])
    assert written.code == 0, written.stderr
    assert "Written 1 references" in written.stdout
    assert await sent_limits(charger, 1) == [12.5]
    profile = charger.calls("SetChargingProfile")[0]
    assert profile["connectorId"] == 1
    assert profile["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"] == "A"
    assert await read(port, "4:float", LIMIT) == "12.5"
    assert await eventually(lambda: read(port, "3", WRITE_STATUS), ACCEPTED) == ACCEPTED


async def test_mbpoll_sees_refused_requests(charger: Scripted, port: int) -> None:
    unmapped = await mbpoll(port, "-t", "3", "-r", str(UNMAPPED))
    assert unmapped.code != 0
    assert "Illegal data address" in unmapped.stderr
    assert unmapped.values == {}

    # 40 A is beyond the limit's maximum of 32 A: exception 3, and nothing reaches the charger
    too_high = await mbpoll(port, "-t", "4:float", "-B", "-r", str(LIMIT), write=["40"])
    assert too_high.code != 0
    assert "Illegal data value" in too_high.stderr
    await asyncio.sleep(0.2)
    assert charger.calls("SetChargingProfile") == []

    # a unit the map does not use: exception 11, gateway target device failed to respond
    elsewhere = await mbpoll(port, "-t", "3", "-r", "0", unit=77)
    assert elsewhere.code != 0
    assert "Target device failed to respond" in elsewhere.stderr
