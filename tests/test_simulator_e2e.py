"""Simulated chargers against the real gateway, one test per profile's distinguishing behaviour: the gateway
admits them through the example mapping's patterns, and every command goes through its REST API (or its
command service), so the simulator is exercised by the central system it is meant to commission."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.mapping import Mapping, load_mapping
from gateway.server import RunningGateway, running
from gateway.simulator.charger import Behaviour, SimulatedCharger
from gateway.simulator.profiles import AC_SMART, AC_SMART_SENDS, AMINA, GENERIC, SICHARGE_D, ChargerProfile
from tests.conftest import eventually, make_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "mappings" / "example.yaml"
# No sessions of their own: the tests start them with RemoteStartTransaction. Meter values every 0.1 s.
QUIET = Behaviour(interval=0.1, session=3600, idle=None, unplug=0.05, reconnect=0.1, response_timeout=5)


@pytest.fixture
def mapping() -> Mapping:
    return load_mapping(EXAMPLE)


@asynccontextmanager
async def simulated(
    gateway: RunningGateway, profile: ChargerProfile, n: int = 1, behaviour: Behaviour = QUIET
) -> AsyncIterator[SimulatedCharger]:
    """A simulated charger running against the gateway, booted and with every connector reported."""
    charger = SimulatedCharger(profile, profile.charger_id(n), gateway.ws_url, behaviour, random.Random(n))
    stop = asyncio.Event()
    task = asyncio.create_task(charger.run(stop))

    async def ready() -> bool:
        return charger.stats.sent["StatusNotification"] >= profile.connectors + 1

    try:
        assert await eventually(ready, True), f"{charger.id} did not boot: {charger.stats}"
        yield charger
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def command(
    api: httpx.AsyncClient, charger_id: str, name: str, body: dict[str, Any] | None = None
) -> Any:
    response = await api.post(f"/api/chargers/{charger_id}/commands/{name}", json=body or {})
    assert response.status_code == 200, response.text
    return response.json()


async def smart(api: httpx.AsyncClient, charger_id: str, connector: int, **changes: Any) -> Any:
    response = await api.patch(
        f"/api/chargers/{charger_id}/connectors/{connector}/smart-charging", json=changes
    )
    assert response.status_code == 200, response.text
    return response.json()


async def point(api: httpx.AsyncClient, point_id: str) -> Any:
    response = await api.get(f"/api/points/{point_id}")
    return response.json()["value"] if response.status_code == 200 else None


async def connector(api: httpx.AsyncClient, charger_id: str, connector_id: int) -> dict[str, Any]:
    charger = (await api.get(f"/api/chargers/{charger_id}")).json()
    found: dict[str, Any] = next(c for c in charger["connectors"] if c["connector_id"] == connector_id)
    return found


async def status(api: httpx.AsyncClient, charger_id: str, connector_id: int) -> str | None:
    value: str | None = (await connector(api, charger_id, connector_id))["status"]
    return value


async def transactions(api: httpx.AsyncClient, charger_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await api.get("/api/transactions", params={"charger_id": charger_id})
    ).json()
    return rows


async def test_amina_rotary_switch_caps_any_limit(gateway: RunningGateway, api: httpx.AsyncClient) -> None:
    async with simulated(gateway, AMINA) as cp:
        assert re.fullmatch(r"C1-\d{10}", cp.id)
        admission = (await api.get(f"/api/chargers/{cp.id}")).json()["admission"]
        assert (admission["registration"], admission["pattern"]) == ("Accepted", "C1-*")
        assert cp.stats.boots == {"Accepted": 1}

        key = "Cst_MaxCurrentRotarySwitchSetting"
        read = await command(api, cp.id, "get-configuration", {"keys": [key]})
        assert read["response"]["configurationKey"] == [{"key": key, "readonly": True, "value": "16"}]
        changed = await command(api, cp.id, "change-configuration", {"key": key, "value": "32"})
        assert (changed["outcome"], changed["status"]) == ("rejected", "Rejected")

        assert (await smart(api, cp.id, 0, enabled=True, limit=32))["send_status"] == "Accepted"
        started = await command(
            api, cp.id, "remote-start-transaction", {"id_tag": "TAG-OK", "connector_id": 1}
        )
        assert started["outcome"] == "accepted"
        current = f"{cp.id}/1/meter/Current.Import/L1"
        assert await eventually(lambda: point(api, current), 16.0) == 16.0  # 32 A asked, the switch says 16
        assert cp.applied_limit(1) == 32.0
        assert await point(api, f"{cp.id}/1/meter/Power.Active.Import") == 16 * 230 * 3
        assert (await smart(api, cp.id, 0, limit=10))["send_status"] == "Accepted"
        assert await eventually(lambda: point(api, current), 10.0) == 10.0  # below the switch the limit rules
        body = {"connector_id": 1, "duration": 600, "charging_rate_unit": "A"}
        schedule = (await command(api, cp.id, "get-composite-schedule", body))["response"]["chargingSchedule"]
        # (the gateway hands the limits on as the text of the library's Decimals: float() reads either)
        periods = [(p["startPeriod"], float(p["limit"])) for p in schedule["chargingSchedulePeriod"]]
        assert periods == [(0, 10.0)]

        await smart(api, cp.id, 0, limit=0)  # pauses the session
        assert await eventually(lambda: status(api, cp.id, 1), "SuspendedEVSE") == "SuspendedEVSE"
        assert await eventually(lambda: point(api, current), 0.0) == 0.0
        await smart(
            api, cp.id, 0, enabled=False
        )  # ClearChargingProfile: full current again, the switch's 16 A
        assert await eventually(lambda: status(api, cp.id, 1), "Charging") == "Charging"
        assert await eventually(lambda: point(api, current), 16.0) == 16.0
        assert cp.applied_limit(1) is None and cp.stats.problem_count == 0


async def test_ac_smart_keys_cap_and_refusals(gateway: RunningGateway, api: httpx.AsyncClient) -> None:
    async with simulated(gateway, AC_SMART) as cp:
        read = await command(api, cp.id, "get-configuration")
        keys = {entry["key"] for entry in read["response"]["configurationKey"]}
        assert keys == {entry.key for entry in AC_SMART.configuration} and len(keys) == 16

        await command(api, cp.id, "remote-start-transaction", {"id_tag": "TAG-OK", "connector_id": 1})
        current = f"{cp.id}/1/meter/Current.Import/L1"
        assert await eventually(lambda: point(api, current), 32.0) == 32.0
        changed = await command(
            api, cp.id, "change-configuration", {"key": "ConnectorMaximumCurrent", "value": "10"}
        )
        assert changed["outcome"] == "accepted"
        assert await eventually(lambda: point(api, current), 10.0) == 10.0
        assert await point(api, f"{cp.id}/config/ConnectorMaximumCurrent") == 10
        readonly = await command(
            api, cp.id, "change-configuration", {"key": "NumberOfConnectors", "value": "2"}
        )
        unknown = await command(api, cp.id, "change-configuration", {"key": "Nope", "value": "2"})
        assert (readonly["status"], unknown["status"]) == ("Rejected", "NotSupported")
        sampling = await command(
            api, cp.id, "change-configuration", {"key": "MeterValueSampleInterval", "value": "1"}
        )
        assert sampling["outcome"] == "accepted" and cp.config["MeterValueSampleInterval"] == "1"

        # answered, but the AC SMART sends no DiagnosticsStatusNotification or FirmwareStatusNotification
        diagnostics = await command(api, cp.id, "get-diagnostics", {"location": "ftp://logs.example/"})
        firmware = await command(api, cp.id, "update-firmware", {"location": "https://fw.example/ac.bin"})
        assert diagnostics["outcome"] == firmware["outcome"] == "accepted"

        for name, body in (
            ("send-local-list", {"update_type": "Full"}),
            ("trigger-message", {"requested_message": "StatusNotification"}),
            ("clear-cache", {}),
            ("data-transfer", {"vendor_id": "com.weidmueller"}),
        ):
            refused = await command(api, cp.id, name, body)
            assert (
                refused["outcome"] == "not-supported" and "CALLERROR NotImplemented" in refused["detail"]
            ), name
        await command(api, cp.id, "remote-stop-transaction", {"connector_id": 1})
        assert await eventually(lambda: status(api, cp.id, 1), "Available") == "Available"
        assert set(cp.stats.sent) <= AC_SMART_SENDS
        assert cp.stats.errors_sent == {"NotImplemented": 4} and cp.stats.problem_count == 0
    logged = (await api.get("/api/messages", params={"charger_id": cp.id})).json()
    charger_calls = {"DataTransfer", "DiagnosticsStatusNotification", "FirmwareStatusNotification"}
    assert not charger_calls & {m["message_type"] for m in logged}


async def test_sicharge_d_dc_without_smart_charging(gateway: RunningGateway, api: httpx.AsyncClient) -> None:
    services = gateway.app.state.services
    async with simulated(gateway, SICHARGE_D) as cp:
        settings = await smart(api, cp.id, 0, enabled=True, limit=100)
        assert not settings["send_status"].startswith("Accepted")
        profile = {
            "charging_profile_id": 1,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_schedule": {
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 50000}],
            },
        }
        refused = await command(
            api, cp.id, "set-charging-profile", {"connector_id": 1, "charging_profile": profile}
        )
        assert refused["outcome"] == "not-supported" and "CALLERROR NotSupported" in refused["detail"]
        history = (await api.get("/api/commands", params={"charger_id": cp.id})).json()
        assert {(c["action"], c["outcome"]) for c in history} == {("SetChargingProfile", "not-supported")}

        full = {
            "list_version": 5,
            "update_type": "Full",
            "local_authorization_list": [{"id_tag": "TAG-OK", "id_tag_info": {"status": "Accepted"}}],
        }
        sent = await services.commands.send(cp.id, "SendLocalList", full, source="test")
        assert sent.outcome.value == "accepted"
        version = await command(api, cp.id, "get-local-list-version")
        assert version["response"] == {"listVersion": 5}
        older = {**full, "list_version": 4, "update_type": "Differential"}
        mismatch = await services.commands.send(cp.id, "SendLocalList", older, source="test")
        assert (mismatch.outcome.value, mismatch.status) == ("rejected", "VersionMismatch")
        listed = await command(
            api, cp.id, "send-local-list", {"update_type": "Full"}
        )  # the gateway's own list
        assert listed["outcome"] == "accepted"

        transfer = await command(api, cp.id, "data-transfer", {"vendor_id": "com.example", "message_id": "x"})
        assert (transfer["outcome"], transfer["status"]) == ("not-supported", "UnknownVendorId")

        for n in (1, 2):
            started = await command(
                api, cp.id, "remote-start-transaction", {"id_tag": "TAG-OK", "connector_id": n}
            )
            assert started["outcome"] == "accepted"
        for n in (1, 2):

            async def reported(n: int = n) -> bool:
                soc = await point(api, f"{cp.id}/{n}/meter/SoC")
                voltage = await point(api, f"{cp.id}/{n}/meter/Voltage")
                return soc is not None and voltage is not None

            assert await eventually(reported, True)
            soc, voltage = (
                await point(api, f"{cp.id}/{n}/meter/SoC"),
                await point(api, f"{cp.id}/{n}/meter/Voltage"),
            )
            assert 0 < soc <= 100 and 350 <= voltage <= 410
            assert await point(api, f"{cp.id}/{n}/meter/Current.Import") > 0
            assert await point(api, f"{cp.id}/{n}/transaction_active") is True
        ids = {cp.connectors[n].transaction_id for n in (1, 2)}
        assert len(ids) == 2 and None not in ids
        assert cp.stats.errors_sent == {"NotSupported": 2} and cp.stats.problem_count == 0


async def test_generic_connectors_remote_control_availability_and_reset(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    async with simulated(gateway, GENERIC) as cp:
        for n, tag in ((1, "TAG-A"), (2, "TAG-B")):
            started = await command(
                api, cp.id, "remote-start-transaction", {"id_tag": tag, "connector_id": n}
            )
            assert started["outcome"] == "accepted"
        for n in (1, 2):
            assert await eventually(lambda n=n: status(api, cp.id, n), "Charging") == "Charging"  # type: ignore[misc]
        first, second = cp.connectors[1].transaction_id, cp.connectors[2].transaction_id
        assert first is not None and second is not None and first != second
        busy = await command(api, cp.id, "remote-start-transaction", {"id_tag": "TAG-C", "connector_id": 1})
        assert busy["status"] == "Rejected"

        stopped = await command(api, cp.id, "remote-stop-transaction", {"connector_id": 1})
        assert stopped["outcome"] == "accepted"
        assert await eventually(lambda: status(api, cp.id, 1), "Available") == "Available"
        rows = {row["transaction_id"]: row for row in await transactions(api, cp.id)}
        assert rows[first]["stop_reason"] == "Remote" and rows[first]["energy_wh"] >= 0
        assert rows[second]["stop_time"] is None and cp.connectors[2].transaction_id == second
        unknown = await command(api, cp.id, "remote-stop-transaction", {"transaction_id": 999_999})
        assert unknown["status"] == "Rejected"

        scheduled = await command(
            api, cp.id, "change-availability", {"connector_id": 2, "type": "Inoperative"}
        )
        assert scheduled["status"] == "Scheduled"
        now = await command(api, cp.id, "change-availability", {"connector_id": 1, "type": "Inoperative"})
        assert now["status"] == "Accepted"
        assert await eventually(lambda: status(api, cp.id, 1), "Unavailable") == "Unavailable"
        refused = await command(
            api, cp.id, "remote-start-transaction", {"id_tag": "TAG-C", "connector_id": 1}
        )
        assert refused["status"] == "Rejected"
        await command(api, cp.id, "remote-stop-transaction", {"connector_id": 2})
        assert await eventually(lambda: status(api, cp.id, 2), "Unavailable") == "Unavailable"  # as scheduled

        back = await command(api, cp.id, "change-availability", {"connector_id": 0, "type": "Operative"})
        assert back["status"] == "Accepted"
        assert await eventually(lambda: status(api, cp.id, 1), "Available") == "Available"
        await command(api, cp.id, "remote-start-transaction", {"id_tag": "TAG-D", "connector_id": 1})
        assert await eventually(lambda: status(api, cp.id, 1), "Charging") == "Charging"
        third = cp.connectors[1].transaction_id

        reset = await command(api, cp.id, "reset", {"type": "Soft"})
        assert reset["outcome"] == "accepted"

        async def booted_again() -> int:
            return cp.stats.boots["Accepted"]

        assert await eventually(booted_again, 2) == 2
        rows = {row["transaction_id"]: row for row in await transactions(api, cp.id)}
        assert rows[third]["stop_reason"] == "SoftReset"
        assert await eventually(lambda: status(api, cp.id, 1), "Available") == "Available"
        assert (cp.stats.reconnects, cp.stats.disconnects, cp.stats.problem_count) == (1, 0, 0)
        boots = [m for m in (await api.get("/api/messages", params={"charger_id": cp.id})).json()
                 if m["message_type"] == "BootNotification"]  # fmt: skip
        assert len(boots) == 2


async def test_generic_trigger_reservation_unlock_and_firmware(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    async with simulated(gateway, GENERIC, behaviour=replace(QUIET, step=0.02)) as cp:
        for message, counted in (("Heartbeat", "Heartbeat"), ("MeterValues", "MeterValues")):
            triggered = await command(
                api, cp.id, "trigger-message", {"requested_message": message, "connector_id": 1}
            )
            assert triggered["outcome"] == "accepted"
            assert await eventually(lambda counted=counted: _sent(cp, counted), 1) == 1  # type: ignore[misc]

        reserved = await command(api, cp.id, "reserve-now", {"connector_id": 2, "id_tag": "TAG-R"})
        assert reserved["outcome"] == "accepted"
        assert await eventually(lambda: status(api, cp.id, 2), "Reserved") == "Reserved"
        taken = await command(api, cp.id, "reserve-now", {"connector_id": 2, "id_tag": "TAG-S"})
        stranger = await command(
            api, cp.id, "remote-start-transaction", {"id_tag": "TAG-X", "connector_id": 2}
        )
        assert (taken["status"], stranger["status"]) == ("Occupied", "Rejected")
        cancelled = await command(
            api, cp.id, "cancel-reservation", {"reservation_id": reserved["request"]["reservationId"]}
        )
        assert cancelled["outcome"] == "accepted"
        assert await eventually(lambda: status(api, cp.id, 2), "Available") == "Available"
        await command(api, cp.id, "reserve-now", {"connector_id": 2, "id_tag": "TAG-R"})
        holder = await command(api, cp.id, "remote-start-transaction", {"id_tag": "TAG-R", "connector_id": 2})
        assert holder["outcome"] == "accepted"  # the reservation's own tag
        assert await eventually(lambda: status(api, cp.id, 2), "Charging") == "Charging"
        assert cp.connectors[2].reservation is None

        await command(api, cp.id, "remote-start-transaction", {"id_tag": "TAG-OK", "connector_id": 1})
        assert await eventually(lambda: status(api, cp.id, 1), "Charging") == "Charging"
        running_on_1 = cp.connectors[1].transaction_id
        unlocked = await command(api, cp.id, "unlock-connector", {"connector_id": 1})
        assert unlocked["status"] == "Unlocked"

        async def stop_reason() -> str | None:
            rows = {row["transaction_id"]: row for row in await transactions(api, cp.id)}
            reason: str | None = rows[running_on_1]["stop_reason"]
            return reason

        assert await eventually(stop_reason, "UnlockCommand") == "UnlockCommand"

        await command(api, cp.id, "get-diagnostics", {"location": "ftp://logs.example/"})
        await command(api, cp.id, "update-firmware", {"location": "https://fw.example/sim.bin"})

        async def notified() -> tuple[str | None, str | None]:
            charger = (await api.get(f"/api/chargers/{cp.id}")).json()
            return charger["diagnostics_status"], charger["firmware_status"]

        assert await eventually(notified, ("Uploaded", "Installed")) == ("Uploaded", "Installed")
        known = await command(api, cp.id, "data-transfer", {"vendor_id": "ocpp-gateway", "data": "ping"})
        other = await command(api, cp.id, "data-transfer", {"vendor_id": "com.example"})
        assert (known["status"], known["response"]["data"], other["status"]) == (
            "Accepted",
            "ping",
            "UnknownVendorId",
        )
        assert cp.stats.problem_count == 0 and not cp.stats.errors_sent


async def _sent(cp: SimulatedCharger, action: str) -> int:
    return cp.stats.sent[action]


async def test_a_pending_charger_boots_again_until_accepted(tmp_path: Path, mapping: Mapping) -> None:
    settings = make_settings(tmp_path, guest_response="Pending", guest_retry_interval=1)
    async with running(settings, mapping) as gateway, httpx.AsyncClient(base_url=gateway.http_url) as api:
        charger_id = GENERIC.charger_id(1, "NEW-")  # no pattern of the example's takes it: a guest
        cp = SimulatedCharger(GENERIC, charger_id, gateway.ws_url, QUIET, random.Random(1))
        stop = asyncio.Event()
        task = asyncio.create_task(cp.run(stop))
        try:

            async def registration() -> str | None:
                return cp.registration

            assert await eventually(registration, "Pending") == "Pending"
            # while Pending it answers the central system, and sends what was triggered (the charger's status)
            body = {"requested_message": "StatusNotification", "connector_id": 0}
            triggered = await command(api, charger_id, "trigger-message", body)
            assert triggered["outcome"] == "accepted"
            assert await eventually(lambda: _sent(cp, "StatusNotification"), 1) == 1
            assert cp.registration == "Pending" and not cp.stats.errors_received
            added = await api.put(f"/api/chargers/{charger_id}/known", json={"registration": "Accepted"})
            assert added.status_code in (200, 201), added.text
            assert await eventually(registration, "Accepted") == "Accepted"  # at its next boot, 1 s on
            assert cp.stats.boots["Pending"] >= 1 and cp.stats.boots["Accepted"] == 1
            assert await eventually(lambda: status(api, charger_id, 2), "Available") == "Available"
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
