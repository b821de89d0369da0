"""Charger values as points, end to end: a charger from the `ocpp` package talks to the real gateway over a
WebSocket, and every result is read from the point database and from the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
from ocpp.routing import on as ocpp_on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from gateway.mapping import Mapping, load_mapping
from gateway.server import RunningGateway, running
from gateway.services import Services
from gateway.sources import CONNECTOR_STATUSES, ERROR_CODES
from points import Change, Kind, Point, Quality
from tests.conftest import Charger, ChargerFactory, _no_tasks_left, connect_charger, make_settings

ENERGY = "Energy.Active.Import.Register"
Handler = TypeVar("Handler", bound=Callable[..., Any])
on = cast(Callable[[Action], Callable[[Handler], Handler]], ocpp_on)  # the library's @on, typed


def services(gateway: RunningGateway) -> Services:
    found: Services = gateway.app.state.services
    return found


def point(gateway: RunningGateway, point_id: str) -> Point:
    found = services(gateway).points.get(point_id)
    assert found is not None, f"no point {point_id}"
    return found


async def api_point(api: httpx.AsyncClient, point_id: str) -> dict[str, Any]:
    answer = await api.get(f"/api/points/{point_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def until(condition: Callable[[], bool], timeout: float = 3) -> None:
    """Wait (without asserting on time) until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.01)


# -- 1. status -------------------------------------------------------------------------------------------------


async def test_status_notification_updates_points_and_subscribers(
    gateway: RunningGateway, charger: ChargerFactory, api: httpx.AsyncClient
) -> None:
    db = services(gateway).points
    async with charger("CP1") as cp, db.subscribe("CP1/") as changes:
        await cp.boot()

        async def status_change(number: int) -> Change:
            async for change in changes:
                if change.point.id == "CP1/1/status" and change.new.value == number:
                    return change
            raise AssertionError("subscription closed")

        charging = CONNECTOR_STATUSES.index("Charging") + 1
        waiting = asyncio.create_task(status_change(charging))  # blocked on the subscription, not polling
        await asyncio.sleep(0)
        await cp.call(
            call.StatusNotification(
                connector_id=1, error_code="NoError", status="Charging", timestamp="2026-03-05T09:00:00Z"
            )
        )
        change = await asyncio.wait_for(waiting, 2)
        assert change.new.quality is Quality.GOOD
        assert change.new.timestamp == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
        assert change.source == "ocpp"
        assert point(gateway, "CP1/1/error_code").value == ERROR_CODES.index("NoError") + 1
        assert point(gateway, "CP1/1/info").value == ""

        await cp.call(
            call.StatusNotification(
                connector_id=1,
                error_code="GroundFailure",
                status="Faulted",
                info="RCD tripped",
                timestamp="2026-03-05T09:07:01Z",
            )
        )
        faulted = await asyncio.wait_for(status_change(9), 2)
        assert faulted.old.value == charging

        status = point(gateway, "CP1/1/status")
        assert (status.spec.kind, status.spec.states) == (Kind.MULTISTATE, CONNECTOR_STATUSES)
        assert CONNECTOR_STATUSES.index("Faulted") + 1 == 9 and ERROR_CODES.index("GroundFailure") + 1 == 3
        moment = datetime(2026, 3, 5, 9, 7, 1, tzinfo=UTC)
        expected = {
            "status": (9, "Faulted"),
            "error_code": (3, "GroundFailure"),
            "info": ("RCD tripped",) * 2,
        }
        for source, (value, text) in expected.items():
            found = point(gateway, f"CP1/1/{source}")
            assert (found.value, found.timestamp, found.quality) == (value, moment, Quality.GOOD)
            body = await api_point(api, f"CP1/1/{source}")
            assert (body["value"], body["text"], body["quality"]) == (value, text, "good")
            assert datetime.fromisoformat(body["timestamp"]) == moment


# -- 2. meter values -------------------------------------------------------------------------------------------


def reading(*sampled: dict[str, str]) -> list[dict[str, Any]]:
    return [{"timestamp": "2026-03-05T09:10:00Z", "sampledValue": list(sampled)}]


async def test_meter_values_normalized_into_points(
    gateway: RunningGateway, charger: ChargerFactory, api: httpx.AsyncClient
) -> None:
    async with charger("CP1") as cp1, charger("CP2") as cp2:
        await cp1.boot()
        await cp2.boot()
        wh = {"value": "12345", "measurand": ENERGY, "unit": "Wh"}
        current = {"value": " 1.6e1 ", "measurand": "Current.Import", "phase": "L1"}
        voltage = {"value": "\t2.305E2 ", "measurand": "Voltage", "unit": "V"}
        await cp1.call(call.MeterValues(connector_id=1, meter_value=reading(wh, current, voltage)))
        kwh = {"value": "12.345", "measurand": ENERGY, "unit": "kWh"}
        await cp2.call(call.MeterValues(connector_id=1, meter_value=reading(kwh)))

        for charger_id in ("CP1", "CP2"):
            energy = point(gateway, f"{charger_id}/1/meter/{ENERGY}")
            assert (energy.value, energy.spec.unit, energy.quality) == (12345.0, "Wh", Quality.GOOD)
            assert energy.timestamp == datetime(2026, 3, 5, 9, 10, tzinfo=UTC)
            body = await api_point(api, f"{charger_id}/1/meter/{ENERGY}")
            assert (body["value"], body["unit"], body["kind"]) == (12345.0, "Wh", "analog")
        body = await api_point(api, "CP1/1/meter/Current.Import/L1")
        assert (body["value"], body["unit"], body["text"]) == (16.0, "A", "16")
        assert point(gateway, "CP1/1/meter/Voltage").value == 230.5

        listed = (await api.get("/api/points", params={"charger_id": "CP1"})).json()
        ids = {p["id"] for p in listed}
        assert {f"CP1/1/meter/{ENERGY}", "CP1/1/meter/Current.Import/L1", "CP1/1/meter/Voltage"} <= ids
        assert all(i.startswith("CP1/") for i in ids)
        meter_only = (await api.get("/api/points", params={"charger_id": "CP1", "prefix": "1/meter/"})).json()
        assert [p["id"] for p in meter_only] == sorted(
            [f"CP1/1/meter/{ENERGY}", "CP1/1/meter/Current.Import/L1", "CP1/1/meter/Voltage"]
        )

        # A value that is no number: the old value stays, marked stale; the message is still answered.
        bad = {"value": "abc", "measurand": ENERGY, "unit": "Wh"}
        answer = await cp1.call(call.MeterValues(connector_id=1, meter_value=reading(bad)))
        assert answer == call_result.MeterValues()
        energy = point(gateway, f"CP1/1/meter/{ENERGY}")
        assert (energy.value, energy.quality) == (12345.0, Quality.STALE)
        body = await api_point(api, f"CP1/1/meter/{ENERGY}")
        assert (body["value"], body["quality"]) == (12345.0, "stale")
        assert point(gateway, "CP1/1/meter/Current.Import/L1").quality is Quality.GOOD

        # The connection is still up, and the next good value makes the point good again.
        heartbeat = await cp1.call(call.Heartbeat())
        assert heartbeat.current_time
        good = {"value": "12400", "measurand": ENERGY}  # no unit: Wh
        await cp1.call(call.MeterValues(connector_id=1, meter_value=reading(good)))
        assert (energy.value, energy.quality) == (12400.0, Quality.GOOD)
        assert point(gateway, "CP1/online").value is True


# -- 3. transactions -------------------------------------------------------------------------------------------


async def test_transaction_points(
    gateway: RunningGateway, charger: ChargerFactory, api: httpx.AsyncClient
) -> None:
    def value(source: str) -> Any:
        return point(gateway, f"CP1/1/{source}").value

    async with charger("CP1") as cp:
        await cp.boot()
        start = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="TAG-OK", meter_start=1000, timestamp="2026-03-05T09:00:00Z"
            )
        )
        assert value("transaction_active") is True
        assert value("id_tag") == "TAG-OK"
        assert value("transaction_id") == float(start.transaction_id)
        assert value("session_energy") == 0.0
        body = await api_point(api, "CP1/1/transaction_active")
        assert (body["value"], body["text"], body["quality"]) == (True, "charging session", "good")

        sample = {"value": "1.75", "measurand": ENERGY, "unit": "kWh"}
        await cp.call(
            call.MeterValues(connector_id=1, transaction_id=start.transaction_id, meter_value=reading(sample))
        )
        assert value("session_energy") == 750.0
        body = await api_point(api, "CP1/1/session_energy")
        assert (body["value"], body["unit"]) == (750.0, "Wh")

        await cp.call(
            call.StopTransaction(
                meter_stop=2500, timestamp="2026-03-05T09:30:00Z", transaction_id=start.transaction_id
            )
        )
        assert value("transaction_active") is False
        assert value("session_energy") == 1500.0
        assert value("transaction_id") == 0.0
        assert value("id_tag") == ""
        body = await api_point(api, "CP1/1/transaction_active")
        assert (body["value"], body["text"]) == (False, "idle")


# -- 4. configuration ------------------------------------------------------------------------------------------

CONFIG: dict[str, tuple[str, bool]] = {  # key -> (value, readonly)
    "HeartbeatInterval": ("300", False),
    "NumberOfConnectors": ("2", True),
    "Cst_MaxCurrentRotarySwitchSetting": ("32", True),
    "ConnectorMaximumCurrent": ("16", False),
    "AuthorizeRemoteTxRequests": ("true", False),
    "MeterValuesSampledData": (f"{ENERGY},Current.Import", False),
}
CHANGE_ANSWERS = {"HeartbeatInterval": "Accepted", "AuthorizeRemoteTxRequests": "RebootRequired"}


class ConfiguredCharger(Charger):
    """Answers GetConfiguration from `CONFIG` and ChangeConfiguration from `CHANGE_ANSWERS` (else Rejected);
    records every ChangeConfiguration it received."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.values = {key: value for key, (value, _) in CONFIG.items()}
        self.changes: list[tuple[str, str]] = []

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        names = key if key is not None else list(CONFIG)
        known = [{"key": k, "readonly": CONFIG[k][1], "value": self.values[k]} for k in names if k in CONFIG]
        unknown = [k for k in names if k not in CONFIG]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> Any:
        self.changes.append((key, value))
        status = CHANGE_ANSWERS.get(key, "Rejected")
        if status != "Rejected":
            self.values[key] = value
        return call_result.ChangeConfiguration(status=status)


@pytest.fixture
async def reading_gateway(tmp_path: Path, mapping: Mapping) -> AsyncIterator[RunningGateway]:
    """A gateway that reads a charger's configuration after its boot."""
    async with running(make_settings(tmp_path, read_configuration=True), mapping) as running_gateway:
        yield running_gateway
    await _no_tasks_left()


async def test_configuration_points_read_after_boot_and_written(reading_gateway: RunningGateway) -> None:
    gateway = reading_gateway
    db = services(gateway).points
    async with (
        httpx.AsyncClient(base_url=gateway.http_url, timeout=10) as api,
        connect_charger(gateway, "CP1", cls=ConfiguredCharger) as cp,
    ):
        assert isinstance(cp, ConfiguredCharger)
        assert (await cp.boot()).status == "Accepted"
        await until(lambda: all(f"CP1/config/{key}" in db for key in CONFIG))

        seen = {
            key: (p.spec.kind, p.value, p.spec.writable, p.quality)
            for key in CONFIG
            if (p := point(gateway, f"CP1/config/{key}"))
        }
        assert seen == {
            "HeartbeatInterval": (Kind.ANALOG, 300.0, True, Quality.GOOD),
            "NumberOfConnectors": (Kind.ANALOG, 2.0, False, Quality.GOOD),
            "Cst_MaxCurrentRotarySwitchSetting": (Kind.ANALOG, 32.0, False, Quality.GOOD),
            "ConnectorMaximumCurrent": (Kind.ANALOG, 16.0, True, Quality.GOOD),
            "AuthorizeRemoteTxRequests": (Kind.BINARY, True, True, Quality.GOOD),
            "MeterValuesSampledData": (Kind.STRING, f"{ENERGY},Current.Import", True, Quality.GOOD),
        }

        entries = {e["key"]: e for e in (await api.get("/api/chargers/CP1/configuration")).json()}
        assert {key: (e["value"], e["readonly"], e["type"]) for key, e in entries.items()} == {
            "HeartbeatInterval": ("300", False, "number"),
            "NumberOfConnectors": ("2", True, "number"),
            "Cst_MaxCurrentRotarySwitchSetting": ("32", True, "number"),
            "ConnectorMaximumCurrent": ("16", False, "number"),
            "AuthorizeRemoteTxRequests": ("true", False, "boolean"),
            "MeterValuesSampledData": (f"{ENERGY},Current.Import", False, "list"),
        }
        assert all(e["write_status"] is None for e in entries.values())
        body = await api_point(api, "CP1/config/NumberOfConnectors")
        assert (body["writable"], body["value"]) == (False, 2.0)

        # An accepted write reaches the charger as text and the point takes the new value.
        answer = await api.put("/api/points/CP1/config/HeartbeatInterval", json={"value": 60})
        assert answer.status_code == 200, answer.text
        written = answer.json()
        assert (written["accepted"], written["status"]) == (True, "Accepted")
        assert (written["point"]["value"], written["point"]["quality"]) == (60.0, "good")
        assert cp.changes == [("HeartbeatInterval", "60")]
        assert point(gateway, "CP1/config/HeartbeatInterval").value == 60.0
        entries = {e["key"]: e for e in (await api.get("/api/chargers/CP1/configuration")).json()}
        assert (entries["HeartbeatInterval"]["value"], entries["HeartbeatInterval"]["write_status"]) == (
            "60",
            "Accepted",
        )
        assert entries["HeartbeatInterval"]["write_time"] is not None

        # A write the charger rejects leaves the value.
        answer = await api.put("/api/points/CP1/config/ConnectorMaximumCurrent", json={"value": 10})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["accepted"], answer.json()["status"]) == (False, "Rejected")
        assert cp.changes[-1] == ("ConnectorMaximumCurrent", "10")
        assert point(gateway, "CP1/config/ConnectorMaximumCurrent").value == 16.0
        entry = {e["key"]: e for e in (await api.get("/api/chargers/CP1/configuration")).json()}[
            "ConnectorMaximumCurrent"
        ]
        assert (entry["value"], entry["write_status"]) == ("16", "Rejected")

        # RebootRequired: the charger took the value.
        answer = await api.put("/api/points/CP1/config/AuthorizeRemoteTxRequests", json={"value": False})
        assert (answer.json()["accepted"], answer.json()["status"]) == (True, "RebootRequired")
        assert cp.changes[-1] == ("AuthorizeRemoteTxRequests", "false")
        assert point(gateway, "CP1/config/AuthorizeRemoteTxRequests").value is False

        # Refused before anything is sent: a read-only key (409) and a value of the wrong type (422).
        sent = len(cp.changes)
        answer = await api.put("/api/points/CP1/config/NumberOfConnectors", json={"value": 3})
        assert answer.status_code == 409, answer.text
        answer = await api.put("/api/points/CP1/config/HeartbeatInterval", json={"value": "often"})
        assert answer.status_code == 422, answer.text
        answer = await api.put("/api/points/CP1/config/AuthorizeRemoteTxRequests", json={"value": "maybe"})
        assert answer.status_code == 422, answer.text
        assert len(cp.changes) == sent
        assert point(gateway, "CP1/config/NumberOfConnectors").value == 2.0
        assert point(gateway, "CP1/config/HeartbeatInterval").value == 60.0


# -- 5. offline ------------------------------------------------------------------------------------------------


async def test_points_go_offline_and_come_back(
    gateway: RunningGateway, charger: ChargerFactory, api: httpx.AsyncClient
) -> None:
    online = point(gateway, "CP1/online")  # listed in the mapping: defined at start, not yet connected
    async with charger("CP1") as cp:
        await cp.boot()
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        await cp.call(call.MeterValues(connector_id=1, meter_value=reading({"value": "500"})))
        assert (online.value, online.quality) == (True, Quality.GOOD)
    await until(lambda: online.value is False)

    assert online.quality is Quality.GOOD
    status, energy = point(gateway, "CP1/1/status"), point(gateway, f"CP1/1/meter/{ENERGY}")
    assert (status.value, status.quality) == (3, Quality.OFFLINE)
    assert (energy.value, energy.quality) == (500.0, Quality.OFFLINE)
    assert point(gateway, "CP1/vendor").quality is Quality.OFFLINE
    body = await api_point(api, "CP1/online")
    assert (body["value"], body["quality"]) == (False, "good")
    body = await api_point(api, "CP1/1/status")
    assert (body["value"], body["text"], body["quality"]) == (3, "Charging", "offline")
    # another charger's points are untouched: CP2, never connected, is known offline, its status unknown
    cp2_online = point(gateway, "CP2/online")
    assert (cp2_online.value, cp2_online.quality) == (False, Quality.GOOD)
    assert point(gateway, "CP2/registration").quality is Quality.UNKNOWN

    async with charger("CP1") as cp:
        await until(lambda: online.value is True)
        assert (status.value, status.quality) == (3, Quality.GOOD)
        assert (energy.value, energy.quality) == (500.0, Quality.GOOD)
        body = await api_point(api, f"CP1/1/meter/{ENERGY}")
        assert (body["value"], body["quality"]) == (500.0, "good")
        body = await api_point(api, "CP1/online")
        assert (body["value"], body["quality"]) == (True, "good")
        await cp.call(call.Heartbeat())


async def test_a_stale_value_stays_stale_across_a_reconnect(
    gateway: RunningGateway, charger: ChargerFactory
) -> None:
    energy_id = f"CP1/1/meter/{ENERGY}"
    async with charger("CP1") as cp:
        await cp.boot()
        await cp.call(call.MeterValues(connector_id=1, meter_value=reading({"value": "500"})))
        await cp.call(call.MeterValues(connector_id=1, meter_value=reading({"value": "abc"})))
        assert point(gateway, energy_id).quality is Quality.STALE
    await until(lambda: point(gateway, "CP1/online").value is False)
    async with charger("CP1"):
        await until(lambda: point(gateway, "CP1/online").value is True)
        assert (point(gateway, energy_id).value, point(gateway, energy_id).quality) == (500.0, Quality.STALE)


async def test_the_example_mappings_templates_name_and_bound_the_points(tmp_path: Path) -> None:
    """Chargers the example lists by id have their template's points from the start (unknown until they talk),
    named and bounded as the mapping says; a writable point refuses a write outside the mapping's limits."""
    example = load_mapping(Path(__file__).parent.parent / "mappings" / "example.yaml")
    async with (
        running(make_settings(tmp_path), example) as running_gateway,
        httpx.AsyncClient(base_url=running_gateway.http_url) as api,
    ):
        points = {
            p["id"]: p for p in (await api.get("/api/points", params={"charger_id": "ACSMART-01"})).json()
        }
        limit = points["ACSMART-01/1/limit"]
        assert (limit["name"], limit["minimum"], limit["maximum"]) == ("ACSMART-01/C1 Limit", 0, 32)
        assert limit["quality"] == "unknown" and limit["writable"] is True
        assert points["ACSMART-01/config/ConnectorMaximumCurrent"]["kind"] == "analog"
        assert "ACSMART-01/1/meter/Current.Import/L3" in points  # mapped before the charger ever reports it
        too_high = await api.put("/api/points/ACSMART-01/1/limit", json={"value": 40})
        assert too_high.status_code == 422 and "32" in too_high.text
