"""Every central-system command over a real WebSocket: the payload as the charger receives it, and the recorded
outcome for accepted, rejected, not supported, timed-out and offline answers. Chargers are the `ocpp` package's
ChargePoint answering from a script."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.exceptions import SecurityError
from ocpp.v16 import call, call_result

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from tests.conftest import TEST_MAPPING, connect_charger, make_settings
from tests.scripted import Scripted


@pytest.fixture
async def scripted(gateway: RunningGateway) -> AsyncIterator[Scripted]:
    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        await charger.boot()
        yield charger


async def command(
    api: httpx.AsyncClient, name: str, body: dict[str, Any] | None = None, charger: str = "CP1"
) -> Any:
    response = await api.post(f"/api/chargers/{charger}/commands/{name}", json=body or {})
    assert response.status_code == 200, response.text
    return response.json()


# (endpoint, body, action, what the charger receives)
COMMANDS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("reset", {"type": "Hard"}, "Reset", {"type": "Hard"}),
    ("clear-cache", {}, "ClearCache", {}),
    ("unlock-connector", {"connector_id": 2}, "UnlockConnector", {"connectorId": 2}),
    (
        "remote-start-transaction",
        {"id_tag": "TAG-OK", "connector_id": 1},
        "RemoteStartTransaction",
        {"idTag": "TAG-OK", "connectorId": 1},
    ),
    ("remote-stop-transaction", {"transaction_id": 42}, "RemoteStopTransaction", {"transactionId": 42}),
    (
        "change-availability",
        {"connector_id": 0, "type": "Inoperative"},
        "ChangeAvailability",
        {"connectorId": 0, "type": "Inoperative"},
    ),
    (
        "change-configuration",
        {"key": "HeartbeatInterval", "value": "60"},
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "60"},
    ),
    ("clear-charging-profile", {"id": 101}, "ClearChargingProfile", {"id": 101}),
    (
        "get-composite-schedule",
        {"connector_id": 1, "duration": 3600, "charging_rate_unit": "A"},
        "GetCompositeSchedule",
        {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"},
    ),
    (
        "trigger-message",
        {"requested_message": "StatusNotification", "connector_id": 1},
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
    ),
    ("get-local-list-version", {}, "GetLocalListVersion", {}),
    ("cancel-reservation", {"reservation_id": 5}, "CancelReservation", {"reservationId": 5}),
    (
        "update-firmware",
        {"location": "https://fw.example/cc612.bin", "retrieve_date": "2030-01-01T00:00:00Z", "retries": 3},
        "UpdateFirmware",
        {
            "location": "https://fw.example/cc612.bin",
            "retrieveDate": "2030-01-01T00:00:00.000Z",
            "retries": 3,
        },
    ),
    (
        "get-diagnostics",
        {"location": "ftp://logs.example/", "retries": 2, "retry_interval": 30},
        "GetDiagnostics",
        {"location": "ftp://logs.example/", "retries": 2, "retryInterval": 30},
    ),
    (
        "data-transfer",
        {"vendor_id": "com.bender", "message_id": "ping", "data": "x"},
        "DataTransfer",
        {"vendorId": "com.bender", "messageId": "ping", "data": "x"},
    ),
]


@pytest.mark.parametrize(("endpoint", "body", "action", "wire"), COMMANDS, ids=[c[0] for c in COMMANDS])
async def test_command_reaches_the_charger_and_is_recorded(
    scripted: Scripted,
    api: httpx.AsyncClient,
    endpoint: str,
    body: dict[str, Any],
    action: str,
    wire: dict[str, Any],
) -> None:
    result = await command(api, endpoint, body)
    assert result["outcome"] == "accepted" and result["action"] == action
    assert scripted.calls(action) == [wire]
    history = (await api.get("/api/commands", params={"charger_id": "CP1"})).json()
    assert (
        history[0]["action"] == action
        and history[0]["outcome"] == "accepted"
        and history[0]["request"] == wire
    )
    last = (await api.get("/api/points/CP1/last_command_status")).json()
    assert last["text"] == "accepted"


async def test_remote_start_with_profile_and_set_charging_profile_round_limits(
    scripted: Scripted, api: httpx.AsyncClient
) -> None:
    profile = {
        "charging_profile_id": 7,
        "charging_profile_purpose": "TxProfile",
        "charging_schedule": {
            "charging_rate_unit": "A",
            "charging_schedule_period": [{"start_period": 0, "limit": 15.96}],
        },
    }
    await command(api, "remote-start-transaction", {"id_tag": "TAG-OK", "charging_profile": profile})
    sent = scripted.calls("RemoteStartTransaction")[0]["chargingProfile"]
    assert sent["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16.0}]
    assert sent["chargingProfileKind"] == "Absolute" and sent["stackLevel"] == 0
    profile["charging_profile_purpose"] = "TxDefaultProfile"
    result = await command(api, "set-charging-profile", {"connector_id": 1, "charging_profile": profile})
    assert result["outcome"] == "accepted"
    assert (
        scripted.calls("SetChargingProfile")[0]["csChargingProfiles"]["chargingProfilePurpose"]
        == "TxDefaultProfile"
    )


async def test_reserve_now_numbers_the_reservation(scripted: Scripted, api: httpx.AsyncClient) -> None:
    first = await command(
        api, "reserve-now", {"connector_id": 1, "id_tag": "TAG-OK", "expiry_date": "2030-01-01T10:00:00Z"}
    )
    scripted.answers["ReserveNow"] = "Occupied"
    second = await command(api, "reserve-now", {"connector_id": 1, "id_tag": "TAG-OK"})
    sent = scripted.calls("ReserveNow")
    assert sent[0] == {
        "connectorId": 1,
        "idTag": "TAG-OK",
        "expiryDate": "2030-01-01T10:00:00.000Z",
        "reservationId": 1,
    }
    assert sent[1]["reservationId"] == 2
    assert first["outcome"] == "accepted" and (second["outcome"], second["status"]) == (
        "rejected",
        "Occupied",
    )


@pytest.mark.parametrize(
    ("endpoint", "body", "action", "status", "outcome"),
    [
        ("reset", {"type": "Soft"}, "Reset", "Rejected", "rejected"),
        ("unlock-connector", {"connector_id": 1}, "UnlockConnector", "UnlockFailed", "rejected"),
        ("unlock-connector", {"connector_id": 1}, "UnlockConnector", "NotSupported", "not-supported"),
        ("change-availability", {"type": "Inoperative"}, "ChangeAvailability", "Scheduled", "accepted"),
        (
            "change-configuration",
            {"key": "X", "value": "1"},
            "ChangeConfiguration",
            "RebootRequired",
            "accepted",
        ),
        (
            "change-configuration",
            {"key": "X", "value": "1"},
            "ChangeConfiguration",
            "NotSupported",
            "not-supported",
        ),
        ("data-transfer", {"vendor_id": "acme"}, "DataTransfer", "UnknownVendorId", "not-supported"),
        ("clear-charging-profile", {}, "ClearChargingProfile", "Unknown", "rejected"),
    ],
)
async def test_answers_become_outcomes(
    scripted: Scripted,
    api: httpx.AsyncClient,
    endpoint: str,
    body: dict[str, Any],
    action: str,
    status: str,
    outcome: str,
) -> None:
    scripted.answers[action] = status
    result = await command(api, endpoint, body)
    assert (result["outcome"], result["status"]) == (outcome, status)


async def test_a_callerror_not_implemented_is_not_supported(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    async with connect_charger(gateway, "CP2") as charger:  # the library's charger has no Reset handler
        await charger.boot()
        result = await command(api, "reset", {"type": "Soft"}, charger="CP2")
    assert result["outcome"] == "not-supported" and "NotImplemented" in result["detail"]


async def test_offline_unknown_and_invalid(gateway: RunningGateway, api: httpx.AsyncClient) -> None:
    result = await command(api, "clear-cache", charger="CP2")
    assert (result["outcome"], result["detail"]) == ("offline", "not connected")
    assert (await api.post("/api/chargers/NOPE/commands/clear-cache", json={})).status_code == 404
    bad = await api.post("/api/chargers/CP2/commands/reset", json={"type": "Medium"})
    assert bad.status_code == 422
    long_tag = await api.post(
        "/api/chargers/CP2/commands/remote-start-transaction", json={"id_tag": "X" * 21}
    )
    assert long_tag.status_code == 422


async def test_an_unanswered_command_times_out(tmp_path: Path, mapping: Mapping) -> None:
    settings = make_settings(tmp_path, response_timeout=0.3)
    async with (
        running(settings, mapping) as gateway,
        connect_charger(gateway, "CP1", cls=Scripted) as charger,
    ):
        await charger.boot()
        assert isinstance(charger, Scripted)
        charger.hold["Reset"] = asyncio.Event()
        services = gateway.app.state.services
        result = await services.commands.send("CP1", "Reset", {"type": "Soft"}, source="test")
        charger.hold["Reset"].set()
    assert result.outcome.value == "timed-out" and "0.3 s" in result.detail


async def test_a_charger_that_drops_fails_pending_and_queued_calls_at_once(
    tmp_path: Path, mapping: Mapping
) -> None:
    settings = make_settings(
        tmp_path, response_timeout=60
    )  # far longer than the test: only the drop can end it
    async with running(settings, mapping) as gateway:
        services = gateway.app.state.services
        async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
            await charger.boot()
            assert isinstance(charger, Scripted)
            charger.hold["Reset"] = asyncio.Event()
            pending = asyncio.create_task(
                services.commands.send("CP1", "Reset", {"type": "Soft"}, source="test")
            )
            queued = asyncio.create_task(services.commands.send("CP1", "ClearCache", {}, source="test"))
            await asyncio.wait_for(charger.arrived.wait(), 5)
            assert [name for name, _ in charger.received] == ["Reset"]  # the second waits its turn
            await charger._connection.close()
            results = await asyncio.wait_for(asyncio.gather(pending, queued), 5)
    assert [r.outcome.value for r in results] == ["offline", "offline"]
    assert results[0].detail == "the connection closed before the answer"


async def test_calls_to_one_charger_queue_and_other_chargers_go_on(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    async with (
        connect_charger(gateway, "CP1", cls=Scripted) as first,
        connect_charger(gateway, "CP2", cls=Scripted) as second,
    ):
        assert isinstance(first, Scripted) and isinstance(second, Scripted)
        await first.boot()
        await second.boot()
        release = first.hold["Reset"] = asyncio.Event()
        held = asyncio.create_task(command(api, "reset", {"type": "Soft"}))
        queued = asyncio.create_task(command(api, "clear-cache"))
        await asyncio.wait_for(first.arrived.wait(), 5)
        other = await command(api, "clear-cache", charger="CP2")  # not held up by CP1
        assert other["outcome"] == "accepted"
        assert [name for name, _ in first.received] == ["Reset"]
        release.set()
        assert (await held)["outcome"] == "accepted" and (await queued)["outcome"] == "accepted"
        assert [name for name, _ in first.received] == ["Reset", "ClearCache"]


async def test_get_configuration_respects_max_keys(scripted: Scripted, api: httpx.AsyncClient) -> None:
    await command(api, "get-configuration")  # learns GetConfigurationMaxKeys = 2
    result = await command(
        api, "get-configuration", {"keys": ["HeartbeatInterval", "GetConfigurationMaxKeys", "Nope"]}
    )
    batches = [payload.get("key") for payload in scripted.calls("GetConfiguration")]
    assert batches == [None, ["HeartbeatInterval", "GetConfigurationMaxKeys"], ["Nope"]]
    assert {item["key"] for item in result["response"]["configurationKey"]} == {
        "HeartbeatInterval",
        "GetConfigurationMaxKeys",
    }
    assert result["response"]["unknownKey"] == ["Nope"]


async def test_get_configuration_without_max_keys_is_one_call(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    """OCPP 1.6 §5.8 GetConfiguration: a charger that does not report GetConfigurationMaxKeys is asked for N keys
    in one call, not N; an empty list reads every key."""
    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        assert isinstance(charger, Scripted)
        charger.config = {
            "HeartbeatInterval": "300",
            "MeterValueSampleInterval": "60",
            "NumberOfConnectors": "2",
        }
        await charger.boot()
        await command(api, "get-configuration")  # learns no GetConfigurationMaxKeys
        wanted = ["HeartbeatInterval", "MeterValueSampleInterval", "NumberOfConnectors", "Nope"]
        result = await command(api, "get-configuration", {"keys": wanted})
        everything = await command(api, "get-configuration", {"keys": []})
    batches = [payload.get("key") for payload in charger.calls("GetConfiguration")]
    assert batches == [None, wanted, None]
    assert result["outcome"] == "accepted" and result["response"]["unknownKey"] == ["Nope"]
    assert len(everything["response"]["configurationKey"]) == 3


class SmallerLimit(Scripted):
    """A charger that does not report its limit of 2 keys and answers more with a CALLERROR."""

    async def route_message(self, raw: str) -> None:
        frame = json.loads(raw)
        if frame[0] == 2 and frame[2] == "GetConfiguration" and len(frame[3].get("key", [])) > 2:
            self.received.append((frame[2], frame[3]))
            error = [4, frame[1], "OccurenceConstraintViolation", "at most 2 keys", {}]
            await self._connection.send(json.dumps(error))
            return
        await super().route_message(raw)


async def test_get_configuration_falls_back_to_halves_when_the_limit_is_smaller(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    """A charger whose unreported limit is smaller answers the one call with a CALLERROR: the keys are asked for
    again in halves until each part is answered."""
    async with connect_charger(gateway, "CP1", cls=SmallerLimit) as charger:
        assert isinstance(charger, SmallerLimit)
        charger.config = {f"K{n}": str(n) for n in range(5)}
        await charger.boot()
        result = await command(api, "get-configuration", {"keys": [f"K{n}" for n in range(5)]})
    batches = [payload.get("key") for payload in charger.calls("GetConfiguration")]
    assert batches == [["K0", "K1", "K2", "K3", "K4"], ["K0", "K1"], ["K2", "K3", "K4"], ["K2"], ["K3", "K4"]]
    assert result["outcome"] == "accepted"
    assert [item["key"] for item in result["response"]["configurationKey"]] == [f"K{n}" for n in range(5)]


async def test_trigger_message_lets_a_pending_charger_send_it(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    async with connect_charger(gateway, "WAIT-1", cls=Scripted) as charger:
        assert (await charger.boot()).status == "Pending"
        result = await command(
            api, "trigger-message", {"requested_message": "StatusNotification"}, charger="WAIT-1"
        )
        assert result["outcome"] == "accepted"
        answer = await charger.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available"), suppress=False
        )
        assert isinstance(answer, call_result.StatusNotification)  # answered, not refused
        with pytest.raises(SecurityError):  # one triggered message, not a way in
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                suppress=False,
            )


async def test_keys_the_mapping_needs_are_asked_for_by_name(tmp_path: Path) -> None:
    """A full read that leaves out keys the charger's template binds is followed by reads of those keys, in
    batches of GetConfigurationMaxKeys (here 2)."""
    template = {
        "points": [
            {"source": "config/ConnectorMaximumCurrent"},
            {"source": "config/Cst_MaxCurrentRotarySwitchSetting"},
            {"source": "config/MeterValueSampleInterval"},
            {"source": "config/HeartbeatInterval"},
        ]
    }
    raw = {**TEST_MAPPING, "templates": {"vendor-keys": template}}
    raw["chargers"] = [{**raw["chargers"][0], "template": "vendor-keys"}, *raw["chargers"][1:]]
    settings = make_settings(tmp_path, read_configuration=True)
    async with (
        running(settings, Mapping.model_validate(raw)) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1", cls=Scripted) as charger,
    ):
        assert isinstance(charger, Scripted)
        charger.hidden = {"ConnectorMaximumCurrent": "16", "Cst_MaxCurrentRotarySwitchSetting": "32"}
        await charger.boot()
        for _ in range(100):
            if len(charger.calls("GetConfiguration")) == 3:
                break
            await asyncio.sleep(0.02)
        points = {p["id"]: p for p in (await api.get("/api/points", params={"prefix": "CP1/config/"})).json()}
    batches = [payload.get("key") for payload in charger.calls("GetConfiguration")]
    assert batches == [
        None,
        ["ConnectorMaximumCurrent", "Cst_MaxCurrentRotarySwitchSetting"],
        ["MeterValueSampleInterval"],
    ]
    assert points["CP1/config/ConnectorMaximumCurrent"]["value"] == 16.0
    assert points["CP1/config/Cst_MaxCurrentRotarySwitchSetting"]["value"] == 32.0
    assert (
        points["CP1/config/MeterValueSampleInterval"]["quality"] == "unknown"
    )  # the charger does not have it
