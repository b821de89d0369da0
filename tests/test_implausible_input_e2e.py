"""Values no charger can mean, over a raw WebSocket: each gets the CALLERROR OCPP-J 1.6 §4.2.3 gives for it
(PropertyConstraintViolation: "a field contains an invalid value"), nothing is stored, the connection stays up,
and the gateway starts again on the same database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from gateway.state import iso, utcnow
from tests.conftest import connect_charger, exchange, make_settings, raw_socket
from tests.scripted import Scripted

BOOT = [2, "boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
NOW = iso(utcnow()) or ""


def _status(connector: int, **extra: Any) -> dict[str, Any]:
    return {"connectorId": connector, "errorCode": "NoError", "status": "Available", **extra}


def _meter(connector: int, value: str = "1200", timestamp: str = NOW, **extra: Any) -> dict[str, Any]:
    sample = {"value": value, "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    return {
        "connectorId": connector,
        "meterValue": [{"timestamp": timestamp, "sampledValue": [sample]}],
        **extra,
    }


def _start(connector: int = 1, meter: int = 0, timestamp: str = NOW, tag: str = "T1") -> dict[str, Any]:
    return {"connectorId": connector, "idTag": tag, "meterStart": meter, "timestamp": timestamp}


def _stop(transaction: int = 1, meter: int = 10, timestamp: str = NOW) -> dict[str, Any]:
    return {"transactionId": transaction, "meterStop": meter, "timestamp": timestamp}


def _later(**delta: float) -> str:
    return iso(utcnow() + timedelta(**delta)) or ""


REFUSED = [
    pytest.param("StatusNotification", _status(-1), "connectorId", id="status-connector-negative"),
    pytest.param("StatusNotification", _status(11), "connectorId", id="status-connector-beyond-default-10"),
    pytest.param("MeterValues", _meter(-1), "connectorId", id="meter-connector-negative"),
    pytest.param("MeterValues", _meter(99), "connectorId", id="meter-connector-too-high"),
    pytest.param("StartTransaction", _start(connector=-1), "connectorId", id="start-connector-negative"),
    pytest.param("StartTransaction", _start(connector=0), "connectorId", id="start-on-connector-0"),
    pytest.param("StartTransaction", _start(meter=-5), "meterStart", id="start-meter-negative"),
    pytest.param("StartTransaction", _start(meter=2**63), "meterStart", id="start-meter-beyond-2^53"),
    pytest.param("StopTransaction", _stop(meter=-1), "meterStop", id="stop-meter-negative"),
    pytest.param("StopTransaction", _stop(transaction=2**64), "transactionId", id="stop-id-beyond-2^53"),
    pytest.param("MeterValues", _meter(1, transactionId=-(2**60)), "transactionId", id="meter-tx-id-huge"),
    pytest.param("MeterValues", _meter(1, value="-3.5"), "value", id="energy-register-negative"),
    pytest.param("Authorize", {"idTag": "T\ud800"}, "idTag", id="lone-surrogate-id-tag"),
    pytest.param("StatusNotification", _status(1, info="i\udfff"), "info", id="lone-surrogate-info"),
    pytest.param("DataTransfer", {"vendorId": "v", "data": "\ud83d"}, "data", id="lone-surrogate-data"),
    pytest.param(
        "StartTransaction",
        _start(timestamp="9999-12-31T23:59:59-14:00"),
        "timestamp",
        id="date-overflows-utc",
    ),
    pytest.param(
        "StatusNotification",
        _status(1, timestamp="0001-01-01T00:00:00+14:00"),
        "timestamp",
        id="date-before-the-calendar",
    ),
    pytest.param(
        "StartTransaction", _start(timestamp="1970-01-01T00:00:00Z"), "timestamp", id="clock-in-1970"
    ),
    pytest.param("StopTransaction", _stop(timestamp=_later(days=3)), "timestamp", id="three-days-ahead"),
    pytest.param("MeterValues", _meter(1, timestamp=_later(days=400)), "timestamp", id="meter-far-ahead"),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The real window around now (a year back, a day ahead), not the tests' wide one.
    return make_settings(tmp_path, timestamp_max_age_days=365)


async def _stored(gateway: RunningGateway) -> dict[str, int]:
    store = gateway.central.store
    await store.flush()
    counts = {}
    for table in ("transactions", "meter_values", "connectors"):
        counts[table] = (await store.fetch_all(f"SELECT COUNT(*) AS n FROM {table}"))[0]["n"]
    return counts


@pytest.mark.parametrize(("action", "payload", "field"), REFUSED)
async def test_implausible_value_is_refused_and_nothing_is_stored(
    gateway: RunningGateway, action: str, payload: dict[str, Any], field: str
) -> None:
    async with raw_socket(gateway, "CP1") as ws:
        assert (await exchange(ws, BOOT))[2]["status"] == "Accepted"
        before = await _stored(gateway)
        # json.dumps writes a lone surrogate as the \ud800 escape a charger's JSON would carry
        answer = await exchange(ws, json.dumps([2, "bad", action, payload]))
        assert answer[:3] == [4, "bad", "PropertyConstraintViolation"], answer
        assert field in answer[3]
        assert (await exchange(ws, [2, "alive", "Heartbeat", {}]))[:2] == [3, "alive"]
    assert await _stored(gateway) == before
    assert not [p.id for p in gateway.central.points.db if p.id.startswith(("CP1/-", "CP1/0/transaction"))]
    assert not gateway.central.open_transactions


async def test_connector_beyond_the_chargers_own_count(gateway: RunningGateway) -> None:
    """Once a charger has said NumberOfConnectors, that is its highest connector id (OCPP 1.6 §9.1.19)."""
    gateway.central.connector_count = lambda charger_id: 2
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        assert (await exchange(ws, [2, "ok", "StatusNotification", _status(2)]))[0] == 3
        answer = await exchange(ws, [2, "no", "StatusNotification", _status(3)])
        assert answer[:3] == [4, "no", "PropertyConstraintViolation"]
        assert "outside 0..2" in answer[3]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        pytest.param(
            '[2,"nan","MeterValues",{"connectorId":NaN,"meterValue":[]}]', "FormationViolation", id="NaN"
        ),
        pytest.param('[2,"inf","Heartbeat",{"x":Infinity}]', "FormationViolation", id="Infinity"),
        pytest.param(
            '[2,"e400","StatusNotification",{"connectorId":1e400,"errorCode":"NoError","status":"Available"}]',
            "TypeConstraintViolation",
            id="1e400",
        ),
    ],
)
async def test_numbers_json_does_not_have(gateway: RunningGateway, frame: str, code: str) -> None:
    """RFC 8259 §6: NaN and Infinity are not JSON; Python's parser would take them."""
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        answer = await exchange(ws, frame)
        assert answer[0] == 4 and answer[2] == code


async def test_a_frame_with_a_byte_order_mark_is_answered(gateway: RunningGateway) -> None:
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        answer = await exchange(ws, '\ufeff[2,"bom","Heartbeat",{}]')
        assert answer[:2] == [3, "bom"]
        assert "currentTime" in answer[2]


async def test_the_gateway_starts_again_after_every_refused_frame(
    settings: Settings, mapping: Mapping
) -> None:
    """The defect that started this: a StartTransaction on connector -1 was committed, answered InternalError,
    and the gateway refused to start from then on."""
    async with running(settings, mapping) as gateway, raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        for index, case in enumerate(REFUSED):
            action, payload, _ = case.values
            answer = await exchange(ws, json.dumps([2, f"x{index}", action, payload]))
            assert answer[2] != "InternalError"
    async with running(settings, mapping) as again, httpx.AsyncClient(base_url=again.http_url) as api:
        assert (await api.get("/api/chargers")).status_code == 200
        assert (await api.get("/api/health")).json()["open_transactions"] == 0


async def test_a_bad_string_never_breaks_the_api(gateway: RunningGateway, api: httpx.AsyncClient) -> None:
    """One charger's invalid text is refused, and what the log keeps of it is escaped: every list still answers."""
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        answer = await exchange(ws, json.dumps([2, "s1", "StatusNotification", _status(1, info="i\ud800")]))
        assert answer[2] == "PropertyConstraintViolation"
        assert "i\\ud800" in answer[3]
    await gateway.central.store.flush()
    assert (await api.get("/api/chargers")).status_code == 200
    assert (await api.get("/api/chargers/CP1")).status_code == 200
    log = await api.get("/api/messages", params={"charger_id": "CP1"})
    assert log.status_code == 200
    assert any("i\\ud800" in entry["summary"] for entry in log.json())
    assert (await api.get("/api/messages.csv")).status_code == 200


async def test_a_bad_string_in_a_chargers_answer_never_breaks_the_api(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    """The answers to the gateway's own calls are kept and shown as they came, with invalid text escaped."""
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await cp.boot()
        cp.config["Greeting"] = "hi\ud800"
        read = await api.post("/api/chargers/CP1/commands/get-configuration", json={})
        assert read.status_code == 200 and read.json()["outcome"] == "accepted"
        keys = await api.get("/api/chargers/CP1/configuration")
        assert keys.status_code == 200
        assert {"key": "Greeting", "value": "hi\\ud800"}.items() <= next(
            k for k in keys.json() if k["key"] == "Greeting"
        ).items()
        assert (await api.get("/api/points", params={"charger_id": "CP1"})).status_code == 200
        assert (await api.get("/api/commands")).status_code == 200


async def test_a_configuration_key_no_point_can_carry_is_kept_without_a_point(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    """A charger's own key may hold characters a point id cannot ('/', spaces): the key is kept and shown, the
    keys after it still get their points."""
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await cp.boot()
        cp.config = {"Odd Key/1": "7", "GetConfigurationMaxKeys": "2", "HeartbeatInterval": "300"}
        read = await api.post("/api/chargers/CP1/commands/get-configuration", json={})
        assert read.json()["outcome"] == "accepted"
    keys = {k["key"]: k["value"] for k in (await api.get("/api/chargers/CP1/configuration")).json()}
    assert keys["Odd Key/1"] == "7" and keys["HeartbeatInterval"] == "300"
    assert (await api.get("/api/points/CP1/config/HeartbeatInterval")).json()["value"] == 300


async def test_a_limit_no_charger_can_take_is_refused_by_the_api(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    async with connect_charger(gateway, "CP1", cls=Scripted) as cp:
        await cp.boot()
        answer = await api.patch(
            "/api/chargers/CP1/connectors/1/smart-charging", json={"enabled": True, "limit": 1e308}
        )
        assert answer.status_code == 422, answer.text
        assert (await api.get("/api/chargers/CP1/connectors/1/smart-charging")).json()["limit"] is None
