"""`ocpp-gateway simulate` as a site commissioning run: 50 simulated chargers in their own process against a
gateway with the example mapping and its BACnet and Modbus servers on; a BMS-side BACnet client (another process)
and a Modbus client watch a simulated charger's energy move."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymodbus.client import AsyncModbusTcpClient

from gateway.mapping import Mapping, load_mapping
from gateway.server import RunningGateway, running
from tests.bacnet_peer import bacnet_peer, free_udp_port
from tests.conftest import eventually, make_settings

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "mappings" / "example.yaml"
CHARGERS = 50
AMINA = "C1-1000000001"  # the fleet's first charger, under the example's C1-* pattern (BACnet 10000 + 100 n,
ENERGY_OFFSET = 16  # Modbus unit 10 + n: its energy register at offset 16, uint32 Wh)
UINT32_SENTINEL = 0xFFFFFFFF


async def test_fifty_simulated_chargers_commission_bacnet_and_modbus(tmp_path: Path) -> None:
    bacnet_port = free_udp_port()
    settings = make_settings(
        tmp_path,
        read_configuration=True,  # as on site: every charger's configuration is read after its boot
        bacnet_enabled=True,
        bacnet_address="127.0.0.1/8",
        bacnet_port=bacnet_port,
        bacnet_device_id=4713,
        modbus_enabled=True,
        modbus_host="127.0.0.1",
        modbus_port=0,
    )
    figures_file = tmp_path / "fleet.json"
    async with running(settings, load_mapping(EXAMPLE)) as gateway, bacnet_peer() as peer:
        services = gateway.app.state.services
        modbus = AsyncModbusTcpClient("127.0.0.1", port=services.modbus.port, timeout=3)
        assert await modbus.connect()
        fleet = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "simulate",
            gateway.ws_url,
            *("-n", str(CHARGERS), "--rate", "50", "--duration", "7", "--seed", "7", "--quiet"),
            *("--interval", "0.5", "--session", "2", "--idle", "0.5", "--json", str(figures_file)),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            slot = await _slot(services, "C1-*", AMINA)
            device = f"127.0.0.1:{bacnet_port}"
            energy = f"analog-input,{10000 + 100 * slot + ENERGY_OFFSET}"

            async def over_bacnet() -> float | None:
                if await peer.read(device, energy, "reliability") != "no-fault-detected":
                    return None
                value = await peer.read(device, energy, "present-value")
                return float(value) if isinstance(value, int | float) else None

            async def over_modbus() -> float | None:
                response = await modbus.read_input_registers(ENERGY_OFFSET, count=2, device_id=10 + slot)
                assert not response.isError(), response
                value = modbus.convert_from_registers(response.registers, modbus.DATATYPE.UINT32)
                assert isinstance(value, int)
                return None if value == UINT32_SENTINEL else float(value)

            bacnet_values, modbus_values = await asyncio.gather(_moving(over_bacnet), _moving(over_modbus))
            stdout, stderr = await asyncio.wait_for(fleet.communicate(), 40)
        finally:
            if fleet.returncode is None:
                fleet.kill()
                await fleet.wait()
            modbus.close()
        output = stdout.decode() + stderr.decode()
        assert fleet.returncode == 0, output
        assert len(bacnet_values) == 2 and bacnet_values[1] > bacnet_values[0], bacnet_values
        assert len(modbus_values) == 2 and modbus_values[1] > modbus_values[0], modbus_values

        figures: dict[str, Any] = json.loads(figures_file.read_text())
        totals = figures["totals"]
        assert (figures["result"], figures["problems"]) == ("OK", [])
        assert (totals["chargers"], totals["accepted"], totals["never_accepted"]) == (CHARGERS, CHARGERS, 0)
        assert {name: p["chargers"] for name, p in figures["profiles"].items()} == {
            "amina": 13,
            "ac-smart": 13,
            "sicharge-d": 12,
            "generic": 12,
        }
        assert (
            totals["sessions_started"] >= CHARGERS and totals["sessions_ended"] == totals["sessions_started"]
        )
        assert totals["sent_by_action"]["MeterValues"] > 0 and totals["energy_kwh"] > 0
        assert totals["disconnects"] == 0 and totals["callerrors_received"] == 0
        assert "OK: every charger booted Accepted" in output

        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            rows = (await api.get("/api/transactions", params={"limit": 10_000})).json()
            health = (await api.get("/api/health")).json()
            amina = (await api.get(f"/api/chargers/{AMINA}")).json()
        assert len(rows) == totals["sessions_started"] and all(row["stop_time"] for row in rows)
        assert len({row["charger_id"] for row in rows}) == CHARGERS
        assert health["open_transactions"] == 0  # the fleet stopped its sessions before it closed
        readings = {m["measurand"] for c in amina["connectors"] for m in c["meter"]}
        assert {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"} <= readings


@pytest.fixture
def mapping() -> Mapping:
    return load_mapping(EXAMPLE)


async def test_sigterm_stops_every_session_and_closes(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    fleet = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "gateway", "simulate", gateway.ws_url, "--rate", "50", "--interval", "0.2"),
        *("--session", "60", "--idle", "0.1", "--summary-every", "0.2"),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:

        async def open_transactions() -> int:
            count: int = (await api.get("/api/health")).json()["open_transactions"]
            return count

        # -n 4: one charger of each profile, 6 connectors, every one charging after its idle time
        assert await eventually(open_transactions, 6, timeout=15) == 6
        live = await asyncio.wait_for(_line_with(fleet, "charging 6 "), 15)
        fleet.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(fleet.communicate(), 30)
    finally:
        if fleet.returncode is None:
            fleet.kill()
            await fleet.wait()
    output = stdout.decode()
    assert fleet.returncode == 0, output + stderr.decode()
    assert (
        "connected 4/4  booted 4 (accepted 4, pending 0, rejected 0)  charging 6  sessions 6 started" in live
    )
    assert output.rstrip().endswith("OK: every charger booted Accepted, nothing unexpected")
    assert await open_transactions() == 0
    rows = (await api.get("/api/transactions")).json()
    assert len(rows) == 6 and {row["stop_reason"] for row in rows} == {"Local"}


async def _line_with(process: asyncio.subprocess.Process, text: str) -> str:
    """The first line of the process's output that holds `text`."""
    assert process.stdout is not None
    while line := (await process.stdout.readline()).decode():
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r}")


async def _slot(services: Any, pattern: str, charger_id: str, timeout: float = 10.0) -> int:
    """The slot the gateway gave a charger when it connected."""
    for _ in range(int(timeout / 0.05)):
        for slot, holder in services.slots.assigned(pattern).items():
            if holder == charger_id:
                return int(slot)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{charger_id} took no slot of {pattern}")


async def _moving(read: Any, timeout: float = 15.0) -> list[float]:
    """Two readings of a value, the second different from the first (a charging session moves it)."""
    seen: list[float] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await read()
        if value is not None and (not seen or value != seen[0]):
            seen.append(value)
            if len(seen) == 2:
                break
        await asyncio.sleep(0.2)
    return seen
