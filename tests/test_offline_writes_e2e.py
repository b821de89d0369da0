"""A limit written while its charger is offline reaches the charger when it is back: after a BootNotification,
and also when it reconnects without one (as chargers do after a network drop or a gateway restart), once its
first message shows it is up (OCPP 1.6 §4.2: a charger already Accepted need not boot again)."""

from __future__ import annotations

import asyncio

import httpx
from ocpp.v16 import call

from gateway.server import RunningGateway
from tests.conftest import connect_charger, eventually
from tests.scripted import Scripted

SMART = "/api/chargers/CP1/connectors/0/smart-charging"


def _limits(charger: Scripted) -> list[float]:
    return [
        p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        for p in charger.calls("SetChargingProfile")
    ]


async def _offline_write(gateway: RunningGateway, api: httpx.AsyncClient, how: str) -> None:
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await cp.boot()
        await cp.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available"))
    await eventually(lambda: _online(api), False)
    if how == "api":
        answer = await api.patch(SMART, json={"enabled": True, "limit": 16})
        assert answer.json()["send_status"] == "Offline"
    else:  # the same write a BMS makes over BACnet or Modbus
        assert (await api.put("/api/points/CP1/0/smart_charging", json={"value": True})).status_code == 200
        answer = await api.put("/api/points/CP1/0/limit", json={"value": 16})
        assert answer.json()["status"].lower().startswith("offline")


async def _online(api: httpx.AsyncClient) -> bool:
    online: bool = (await api.get("/api/chargers/CP1")).json()["online"]
    return online


async def test_a_limit_written_offline_goes_out_on_reconnection_without_boot(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    await _offline_write(gateway, api, "api")
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await asyncio.sleep(0.2)
        assert cp.calls("SetChargingProfile") == []  # nothing before the charger shows it is up
        await cp.call(call.Heartbeat())
        assert await eventually(lambda: _async(_limits(cp)), [16.0]) == [16.0]
        assert (await api.get(SMART)).json()["send_status"] == "Accepted"
        await cp.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available"))
        await asyncio.sleep(0.2)
        assert _limits(cp) == [16.0]  # sent once: the charger took it


async def test_a_bms_write_while_offline_goes_out_on_reconnection_without_boot(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    await _offline_write(gateway, api, "point")
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        assert await eventually(lambda: _async(_limits(cp)), [16.0]) == [16.0]
        status = (await api.get("/api/points/CP1/0/limit_status")).json()["value"]
        assert status == "Accepted"


async def test_a_limit_written_offline_goes_out_after_a_boot(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    await _offline_write(gateway, api, "api")
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await cp.boot()
        assert await eventually(lambda: _async(_limits(cp)), [16.0]) == [16.0]


async def _async(value: list[float]) -> list[float]:
    return value
