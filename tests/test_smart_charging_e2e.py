"""Smart charging (seed 003 §6.3) and the local authorization list over a real WebSocket: what the charger
receives when a limit is set through the API or written to its point, the fallback chain for a charger that
rejects ChargePointMaxProfile, and SendLocalList built from the mapping's lists with its version."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from tests.conftest import TEST_MAPPING, connect_charger, make_settings
from tests.scripted import Scripted

SMART = "/api/chargers/CP1/connectors/{}/smart-charging"


@pytest.fixture
async def scripted(gateway: RunningGateway) -> AsyncIterator[Scripted]:
    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        await charger.boot()
        yield charger


async def patch(api: httpx.AsyncClient, connector: int, **changes: Any) -> dict[str, Any]:
    response = await api.patch(SMART.format(connector), json=changes)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def profiles(charger: Scripted) -> list[tuple[int, str, float, int | None]]:
    """(connector, purpose, limit, transaction) of every SetChargingProfile received."""
    return [
        (
            p["connectorId"],
            p["csChargingProfiles"]["chargingProfilePurpose"],
            p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
            p["csChargingProfiles"].get("transactionId"),
        )
        for p in charger.calls("SetChargingProfile")
    ]


async def start_transaction(charger: Scripted, connector: int = 1) -> int:
    answer = await charger.call(
        call.StartTransaction(
            connector_id=connector, id_tag="TAG-OK", meter_start=0, timestamp="2026-11-22T10:00:00Z"
        )
    )
    transaction_id: int = answer.transaction_id
    return transaction_id


async def test_a_charger_limit_is_sent_rounded_and_shown(scripted: Scripted, api: httpx.AsyncClient) -> None:
    settings = await patch(api, 0, enabled=True, limit=16.04)
    sent = scripted.calls("SetChargingProfile")[0]
    profile = sent["csChargingProfiles"]
    assert sent["connectorId"] == 0
    assert (
        profile["chargingProfilePurpose"] == "ChargePointMaxProfile" and profile["chargingProfileId"] == 100
    )
    assert profile["chargingProfileKind"] == "Absolute" and "startSchedule" in profile["chargingSchedule"]
    assert profile["chargingSchedule"]["chargingRateUnit"] == "A"
    assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
    assert settings["send_status"] == "Accepted" and settings["limit"] == 16.0
    limit = (await api.get("/api/points/CP1/0/limit")).json()
    assert (limit["value"], limit["unit"], limit["quality"]) == (16.0, "A", "good")
    assert (await api.get("/api/points/CP1/0/limit_status")).json()["value"] == "Accepted"

    disabled = await patch(api, 0, enabled=False)
    assert scripted.calls("ClearChargingProfile") == [{"id": 100}]
    assert disabled["send_status"] == "Cleared"


async def test_fallback_when_charge_point_max_profile_is_rejected(
    scripted: Scripted, api: httpx.AsyncClient
) -> None:
    scripted.answers["ChargePointMaxProfile"] = "Rejected"
    transaction = await start_transaction(scripted, 2)
    settings = await patch(api, 0, enabled=True, limit=20)
    assert profiles(scripted) == [
        (0, "ChargePointMaxProfile", 20.0, None),
        (0, "TxDefaultProfile", 20.0, None),
        (2, "TxProfile", 20.0, transaction),
    ]
    assert (
        settings["send_status"] == "Accepted as TxDefaultProfile+TxProfile (ChargePointMaxProfile rejected)"
    )
    assert settings["sent_purpose"] == "TxDefaultProfile+TxProfile"
    ids = [p["csChargingProfiles"]["chargingProfileId"] for p in scripted.calls("SetChargingProfile")]
    assert ids == [100, 100, 1102]


async def test_a_rejected_tx_default_falls_back_to_the_running_transaction(
    scripted: Scripted, api: httpx.AsyncClient
) -> None:
    scripted.answers["TxDefaultProfile"] = "Rejected"
    rejected = await patch(api, 1, enabled=True, limit=10)
    assert rejected["send_status"].startswith("Rejected")
    transaction = await start_transaction(scripted, 1)
    settings = await patch(api, 1, limit=12)
    assert profiles(scripted)[-2:] == [
        (1, "TxDefaultProfile", 12.0, None),
        (1, "TxProfile", 12.0, transaction),
    ]
    assert settings["sent_purpose"] == "TxProfile"


async def test_a_tx_profile_waits_for_its_transaction(scripted: Scripted, api: httpx.AsyncClient) -> None:
    waiting = await patch(api, 1, enabled=True, limit=8, purpose="TxProfile")
    assert waiting["send_status"] == "Waiting for a transaction (TxProfile)" and not profiles(scripted)
    transaction = await start_transaction(scripted, 1)
    for _ in range(100):  # sent by a follow-up once the charger has its transaction id
        if profiles(scripted):
            break
        await asyncio.sleep(0.02)
    assert profiles(scripted) == [(1, "TxProfile", 8.0, transaction)]


async def test_a_limit_written_to_its_point_becomes_a_profile(
    scripted: Scripted, api: httpx.AsyncClient
) -> None:
    await patch(api, 1, enabled=True)  # no limit yet: nothing to send
    assert not profiles(scripted)
    written = await api.put("/api/points/CP1/1/limit", json={"value": 10.46})
    assert written.status_code == 200 and written.json()["accepted"] is True
    assert profiles(scripted) == [(1, "TxDefaultProfile", 10.5, None)]
    assert (await api.put("/api/points/CP1/1/limit", json={"value": -1})).status_code == 422
    assert (await api.put("/api/points/CP1/1/limit", json={"value": "lots"})).status_code == 422
    assert (await api.put("/api/points/CP1/1/status", json={"value": 1})).status_code == 409
    off = await api.put("/api/points/CP1/1/smart_charging", json={"value": False})
    assert off.json()["point"]["value"] is False and scripted.calls("ClearChargingProfile") == [{"id": 101}]


async def test_settings_that_cannot_be_sent_are_refused(scripted: Scripted, api: httpx.AsyncClient) -> None:
    bad = await api.patch(SMART.format(1), json={"purpose": "ChargePointMaxProfile"})
    assert bad.status_code == 422 and "connector 0" in bad.text
    assert (await api.patch(SMART.format(1), json={"unit": "kW"})).status_code == 422


async def test_the_unit_follows_the_chargers_allowed_rate_unit(tmp_path: Path, mapping: Mapping) -> None:
    settings = make_settings(tmp_path, read_configuration=True)
    async with (
        running(settings, mapping) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=Scripted) as charger,
    ):
        assert isinstance(charger, Scripted)
        charger.config["ChargingScheduleAllowedChargingRateUnit"] = "Power"
        await patch(api, 1, enabled=False, limit=16)  # set in amperes before the charger says otherwise
        await charger.boot()
        for _ in range(100):
            if (await api.get("/api/points/CP1/1/limit")).json()["unit"] == "W":
                break
            await asyncio.sleep(0.02)
        limit = (await api.get("/api/points/CP1/1/limit")).json()
        assert (limit["unit"], limit["value"], limit["maximum"]) == ("W", None, 1_000_000.0)
        refused = await api.patch(SMART.format(1), json={"unit": "A"})
        assert refused.status_code == 422 and "allows only W" in refused.text
        settings_now = await patch(api, 1, enabled=True, limit=7400)
        assert settings_now["send_status"] == "Accepted"
        sent = charger.calls("SetChargingProfile")[-1]["csChargingProfiles"]["chargingSchedule"]
        assert sent["chargingRateUnit"] == "W"


async def test_an_enabled_limit_is_sent_again_after_a_boot(
    scripted: Scripted, api: httpx.AsyncClient
) -> None:
    await patch(api, 0, enabled=True, limit=25)
    await scripted.boot()
    for _ in range(100):
        if len(profiles(scripted)) == 2:
            break
        await asyncio.sleep(0.02)
    assert profiles(scripted) == [(0, "ChargePointMaxProfile", 25.0, None)] * 2


# -- the local authorization list -------------------------------------------------------------------------------


async def test_send_local_list_full_follows_the_mode(scripted: Scripted, api: httpx.AsyncClient) -> None:
    """all-except-blacklist: the list holds the blacklisted tags; every other tag is accepted (the whitelist plays
    no part in this mode). tests/test_local_list_e2e.py covers every mode."""
    response = await api.post("/api/chargers/CP1/commands/send-local-list", json={"update_type": "Full"})
    assert response.json()["outcome"] == "accepted"
    sent = scripted.calls("SendLocalList")[0]
    assert sent["listVersion"] == 1 and sent["updateType"] == "Full"
    assert sent["localAuthorizationList"] == [{"idTag": "TAG-STOLEN", "idTagInfo": {"status": "Blocked"}}]
    assert (await api.get("/api/local-list", params={"charger_id": "CP1"})).json()["charger_version"] == 1


async def test_a_changed_list_gets_a_new_version_and_a_differential_update(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = Mapping.model_validate(TEST_MAPPING)
    async with running(settings, first) as gateway, httpx.AsyncClient(base_url=gateway.http_url) as api:
        async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
            assert isinstance(charger, Scripted)
            await charger.boot()
            await api.post("/api/chargers/CP1/commands/send-local-list", json={"update_type": "Full"})
            changed = dict(TEST_MAPPING)
            changed["authorization"] = {
                "mode": "none-except-whitelist",
                "whitelist": ["TAG-OK", {"id_tag": "FLEET-7", "parent_id_tag": "FLEET"}],
                "blacklist": ["TAG-STOLEN"],
            }
            gateway.central.apply_mapping(Mapping.model_validate(changed))
            again = await api.post(
                "/api/chargers/CP1/commands/send-local-list", json={"update_type": "Differential"}
            )
            assert again.json()["outcome"] == "accepted"
            same = (await api.get("/api/local-list")).json()
        sent = charger.calls("SendLocalList")[1]
    assert (sent["listVersion"], sent["updateType"]) == (2, "Differential")
    assert sent["localAuthorizationList"] == [  # TAG-STOLEN stays Blocked: unchanged, not sent
        {"idTag": "TAG-OK", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "FLEET-7", "idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}},
    ]
    assert same["version"] == 2  # the same content keeps its number


async def test_settings_configuration_and_list_versions_survive_a_restart(
    tmp_path: Path, mapping: Mapping
) -> None:
    settings = make_settings(tmp_path, read_configuration=True)
    async with (
        running(settings, mapping) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=Scripted) as charger,
    ):
        await charger.boot()
        await api.post("/api/chargers/CP1/commands/get-configuration", json={})
        await patch(api, 0, enabled=True, limit=11)
        await api.post("/api/chargers/CP1/commands/send-local-list", json={"update_type": "Full"})
    async with running(settings, mapping) as gateway, httpx.AsyncClient(base_url=gateway.http_url) as api:
        smart = (await api.get(SMART.format(0))).json()
        limit = (await api.get("/api/points/CP1/0/limit")).json()
        heartbeat = (await api.get("/api/points/CP1/config/HeartbeatInterval")).json()
        keys = {e["key"]: e for e in (await api.get("/api/chargers/CP1/configuration")).json()}
        listed = (await api.get("/api/local-list", params={"charger_id": "CP1"})).json()
    assert (smart["enabled"], smart["limit"], smart["send_status"]) == (True, 11.0, "Accepted")
    assert (limit["value"], limit["quality"]) == (11.0, "offline")  # kept, and the charger is not connected
    assert (heartbeat["value"], heartbeat["quality"]) == (300.0, "offline")
    assert (
        keys["HeartbeatInterval"]["readonly"] is False and keys["GetConfigurationMaxKeys"]["type"] == "number"
    )
    assert (listed["version"], listed["charger_version"]) == (1, 1)
