"""Commands a charger does not implement end as `not-supported` (OCPP-J 1.6 §4.2.3 CALLERROR NotImplemented and
NotSupported, and the NotImplemented status of TriggerMessage.conf, §6.52), and the CALLERROR descriptions the
gateway sends say what 1.6 means by each code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.v16.enums import Action

from gateway.ocpp16.charge_point import on
from gateway.server import RunningGateway
from tests.conftest import Charger, connect_charger, exchange, raw_socket
from tests.scripted import Scripted

TRIGGER = {"requested_message": "StatusNotification", "connector_id": 1}


async def trigger(api: httpx.AsyncClient) -> Any:
    response = await api.post("/api/chargers/CP1/commands/trigger-message", json=TRIGGER)
    assert response.status_code == 200, response.text
    return response.json()


class RaisesNotImplemented(Charger):
    @on(Action.trigger_message)
    async def on_trigger(self, **_: Any) -> Any:
        raise OcppNotImplemented(description="no trigger here")


@pytest.mark.parametrize("cls", [Charger, RaisesNotImplemented], ids=["no-handler", "raises"])
async def test_trigger_message_answered_with_callerror_not_implemented(
    gateway: RunningGateway, api: httpx.AsyncClient, cls: type[Charger]
) -> None:
    async with connect_charger(gateway, "CP1", cls=cls) as charger:
        await charger.boot()
        result = await trigger(api)
        history = (await api.get("/api/commands", params={"charger_id": "CP1"})).json()
        last = (await api.get("/api/points/CP1/last_command_status")).json()
    assert result["outcome"] == "not-supported" and "CALLERROR NotImplemented" in result["detail"]
    assert history[0]["outcome"] == "not-supported"
    assert last["text"] == "not-supported"


async def test_trigger_message_answered_with_status_not_implemented(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    """TriggerMessage.conf status NotImplemented: the charger cannot send the requested message."""
    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        assert isinstance(charger, Scripted)
        await charger.boot()
        charger.answers["TriggerMessage"] = "NotImplemented"
        result = await trigger(api)
        history = (await api.get("/api/commands", params={"charger_id": "CP1"})).json()
    assert (result["outcome"], result["status"]) == ("not-supported", "NotImplemented")
    assert history[0]["outcome"] == "not-supported"


@pytest.mark.parametrize(
    ("frame", "code", "description"),
    [
        (
            [2, "n-1", "FlyToTheMoon", {}],
            "NotImplemented",
            "Requested Action is not known by receiver",
        ),
        (
            [2, "n-2", "Reset", {"type": "Hard"}],
            "NotSupported",
            "Requested Action is recognized but not supported by the receiver",
        ),
    ],
)
async def test_callerror_descriptions_follow_ocpp_j_16(
    gateway: RunningGateway, frame: list[Any], code: str, description: str
) -> None:
    """OCPP-J 1.6 §4.2.3: NotImplemented is an action the receiver does not know, NotSupported one it knows but
    does not support (the `ocpp` package's default descriptions have them the other way round)."""
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(
            ws, [2, "boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
        )
        answer = await exchange(ws, frame)
    assert answer[:3] == [4, frame[1], code]
    assert answer[3].startswith(description)
