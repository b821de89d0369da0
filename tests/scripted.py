"""A scripted 1.6 charger for command tests: the `ocpp` package's ChargePoint answering every central-system
command from a script, recording each CALL as it arrived on the wire."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from gateway.ocpp16.charge_point import on
from tests.conftest import Charger


class Scripted(Charger):
    """Answers every 1.6 command; records each CALL as it arrived on the wire. `answers` sets the status an
    action answers with; an action in `hold` waits until its event is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, str] = {}
        self.hold: dict[str, asyncio.Event] = {}
        self.config = {"GetConfigurationMaxKeys": "2", "HeartbeatInterval": "300"}
        self.hidden: dict[str, str] = {}  # keys a full read leaves out; answered when asked for by name
        self.arrived = asyncio.Event()

    async def route_message(self, raw: str) -> None:
        frame = json.loads(raw)
        if frame[0] == 2:
            self.received.append((frame[2], frame[3]))
            self.arrived.set()
        await super().route_message(raw)

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.received if name == action]

    async def _answer(self, action: str, default: str = "Accepted") -> str:
        if action in self.hold:
            await self.hold[action].wait()
        return self.answers.get(action, default)

    @on(Action.reset)
    async def on_reset(self, **_: Any) -> Any:
        return call_result.Reset(status=await self._answer("Reset"))

    @on(Action.clear_cache)
    async def on_clear_cache(self, **_: Any) -> Any:
        return call_result.ClearCache(status=await self._answer("ClearCache"))

    @on(Action.unlock_connector)
    async def on_unlock(self, **_: Any) -> Any:
        return call_result.UnlockConnector(status=await self._answer("UnlockConnector", "Unlocked"))

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, **_: Any) -> Any:
        return call_result.RemoteStartTransaction(status=await self._answer("RemoteStartTransaction"))

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, **_: Any) -> Any:
        return call_result.RemoteStopTransaction(status=await self._answer("RemoteStopTransaction"))

    @on(Action.change_availability)
    async def on_availability(self, **_: Any) -> Any:
        return call_result.ChangeAvailability(status=await self._answer("ChangeAvailability"))

    @on(Action.get_configuration)
    async def on_get_configuration(self, key: list[str] | None = None) -> Any:
        await self._answer("GetConfiguration")
        every = {**self.config, **self.hidden} if key is not None else self.config
        names = key if key is not None else list(self.config)
        known = [
            {"key": k, "readonly": k != "HeartbeatInterval", "value": every[k]} for k in names if k in every
        ]
        unknown = [k for k in names if k not in every]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    async def on_change_configuration(self, key: str, value: str) -> Any:
        return call_result.ChangeConfiguration(status=await self._answer("ChangeConfiguration"))

    @on(Action.set_charging_profile)
    async def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        purpose = cs_charging_profiles["charging_profile_purpose"]
        status = self.answers.get(purpose) or await self._answer("SetChargingProfile")
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    async def on_clear_profile(self, **_: Any) -> Any:
        return call_result.ClearChargingProfile(status=await self._answer("ClearChargingProfile"))

    @on(Action.get_composite_schedule)
    async def on_composite(self, connector_id: int, **_: Any) -> Any:
        return call_result.GetCompositeSchedule(
            status=await self._answer("GetCompositeSchedule"), connector_id=connector_id
        )

    @on(Action.trigger_message)
    async def on_trigger(self, **_: Any) -> Any:
        return call_result.TriggerMessage(status=await self._answer("TriggerMessage"))

    @on(Action.send_local_list)
    async def on_send_local_list(self, **_: Any) -> Any:
        return call_result.SendLocalList(status=await self._answer("SendLocalList"))

    @on(Action.get_local_list_version)
    async def on_local_list_version(self) -> Any:
        await self._answer("GetLocalListVersion")
        return call_result.GetLocalListVersion(list_version=7)

    @on(Action.reserve_now)
    async def on_reserve(self, **_: Any) -> Any:
        return call_result.ReserveNow(status=await self._answer("ReserveNow"))

    @on(Action.cancel_reservation)
    async def on_cancel(self, **_: Any) -> Any:
        return call_result.CancelReservation(status=await self._answer("CancelReservation"))

    @on(Action.update_firmware)
    async def on_firmware(self, **_: Any) -> Any:
        await self._answer("UpdateFirmware")
        return call_result.UpdateFirmware()

    @on(Action.get_diagnostics)
    async def on_diagnostics(self, **_: Any) -> Any:
        await self._answer("GetDiagnostics")
        return call_result.GetDiagnostics(file_name="diag.zip")

    @on(Action.data_transfer)
    async def on_data_transfer(self, **_: Any) -> Any:
        return call_result.DataTransfer(status=await self._answer("DataTransfer"), data="pong")
