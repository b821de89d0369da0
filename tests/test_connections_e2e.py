"""The WebSocket endpoint: URL forms, subprotocol negotiation, refused ids, replacement, online/offline."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import websockets
from ocpp.v16 import call
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from gateway.state import utcnow
from gateway.store import Store
from tests.conftest import ChargerFactory, connect_charger, exchange, make_settings, raw_socket


async def _wait_for(condition: object, timeout: float = 5) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_id_after_a_path_prefix(gateway: RunningGateway) -> None:
    async with connect_charger(gateway, "CP1", path_prefix="ocpp/v16/site-a/") as cp:
        assert (await cp.boot()).status == "Accepted"
    assert "CP1" in gateway.central.chargers


async def test_subprotocol_negotiated(gateway: RunningGateway) -> None:
    offered = [websockets.Subprotocol("ocpp2.0.1"), websockets.Subprotocol("ocpp1.6")]
    async with websockets.connect(f"{gateway.ws_url}/CP1", subprotocols=offered) as ws:
        assert ws.subprotocol == "ocpp1.6"


@pytest.mark.parametrize("offered", [[], ["ocpp1.5"], ["ocpp2.0.1"]])
async def test_connection_without_supported_subprotocol_refused(
    gateway: RunningGateway, offered: list[str]
) -> None:
    """OCPP-J 1.6 §4.1.2: a central system that agrees to none of the offered subprotocols completes the
    handshake without a Sec-WebSocket-Protocol header and then closes the connection at once."""
    async with websockets.connect(
        f"{gateway.ws_url}/CP1", subprotocols=[websockets.Subprotocol(p) for p in offered] or None
    ) as ws:
        assert ws.response is not None and ws.response.status_code == 101
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002
    assert "no supported OCPP subprotocol" in closed.value.rcvd.reason
    # it tried to connect, so it is discovered: offline, with the offered list and the reason in its message log
    charger = gateway.central.chargers["CP1"]
    assert not charger.online and charger.protocol is None
    async with httpx.AsyncClient(base_url=gateway.http_url) as api:
        log = (await api.get("/api/messages", params={"charger_id": "CP1"})).json()
        listed = (await api.get("/api/chargers")).json()
    assert log[0]["message_type"] == "Refused" and "no supported OCPP subprotocol" in log[0]["summary"]
    assert f"offered: {', '.join(offered) or 'none'}" in log[0]["summary"]
    assert any(c["id"] == "CP1" and c["discovered"] for c in listed)


@pytest.mark.parametrize("charger_id", ["bad%20id", "a" * 49, "caf%C3%A9", "semi;colon"])
async def test_invalid_charge_point_id_refused(gateway: RunningGateway, charger_id: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            f"{gateway.ws_url}/{charger_id}", subprotocols=[websockets.Subprotocol("ocpp1.6")]
        ):
            pass
    assert refused.value.response.status_code == 400
    assert b"charge point id" in refused.value.response.body


async def test_plain_http_get_explains_the_endpoint(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.http_url) as api:
        at_path = await api.get("/ocpp/CP1")
        root = await api.get("/")
        docs = await api.get("/docs")
        openapi = (await api.get("/openapi.json")).json()
    assert at_path.status_code == 426
    assert "OCPP-J WebSocket endpoint" in at_path.text
    assert f"ws://127.0.0.1:{gateway.port}/<chargePointId>" in at_path.text
    assert root.status_code == 200 and "ocpp1.6" in root.text
    assert docs.status_code == 200
    assert {"/api/chargers", "/api/transactions", "/api/transactions.csv", "/api/messages"} <= set(
        openapi["paths"]
    )


async def test_second_connection_replaces_the_first(gateway: RunningGateway) -> None:
    async with raw_socket(gateway, "CP1") as first:
        await exchange(
            first, [2, "b1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]
        )
        async with raw_socket(gateway, "CP1") as second:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(first.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
            answer = await exchange(second, [2, "h1", "Heartbeat", {}])
            assert answer[:2] == [3, "h1"]
            charger = gateway.central.chargers["CP1"]
            assert (
                charger.connected and charger.online
            )  # the old session's end did not take the new one offline
            assert gateway.app.state.connections.get("CP1") is not None
    await _wait_for(lambda: not gateway.central.chargers["CP1"].connected)


async def test_offline_when_socket_closes(gateway: RunningGateway, charger: ChargerFactory) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        assert gateway.central.chargers["CP1"].online
    await _wait_for(lambda: not gateway.central.chargers["CP1"].online)


async def test_socket_close_not_offline_when_configured(tmp_path: Path, mapping: Mapping) -> None:
    settings = make_settings(
        tmp_path, socket_closed_offline=False, heartbeat_interval=60, offline_after_heartbeats=2
    )
    async with running(settings, mapping) as gateway:
        async with connect_charger(gateway, "CP1") as cp:
            await cp.boot()
        central = gateway.central
        await _wait_for(lambda: not central.chargers["CP1"].connected)
        assert central.chargers["CP1"].online  # until nothing has arrived for 2 heartbeat intervals
        assert central.check_liveness(utcnow() + timedelta(seconds=119)) == []
        assert central.check_liveness(utcnow() + timedelta(seconds=121)) == ["CP1"]
        assert not central.chargers["CP1"].online


async def test_silent_charger_goes_offline_then_online_again(tmp_path: Path, mapping: Mapping) -> None:
    settings = make_settings(tmp_path, heartbeat_interval=1, offline_after_heartbeats=1.5)
    async with running(settings, mapping) as gateway, connect_charger(gateway, "CP1") as cp:
        await cp.boot()
        central = gateway.central
        # the housekeeping job notices within about a second and a half of silence
        await _wait_for(lambda: not central.chargers["CP1"].online, timeout=10)
        await cp.call(call.Heartbeat())
        assert central.chargers["CP1"].online
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            log = (await api.get("/api/messages", params={"charger_id": "CP1"})).json()
    types = [entry["message_type"] for entry in log]
    assert "Offline" in types and "Online" in types


async def test_many_chargers_at_once(gateway: RunningGateway) -> None:
    async def one(index: int) -> str:
        async with connect_charger(gateway, f"C1-{index:010d}") as cp:
            answer = await cp.boot()
            await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
            status: str = answer.status
            return status

    statuses = await asyncio.gather(*(one(i) for i in range(50)))
    assert statuses == ["Accepted"] * 50
    assert len([c for c in gateway.central.chargers if c.startswith("C1-")]) == 50


async def test_shutdown_records_every_open_connection_end(settings: Settings, mapping: Mapping) -> None:
    async with running(settings, mapping) as gateway:
        chargers = [connect_charger(gateway, f"CP{i}") for i in (1, 2)]
        for connection in chargers:
            await (await connection.__aenter__()).boot()
    # the gateway stopped while both chargers were still connected
    for connection in chargers:
        await connection.__aexit__(None, None, None)
    store = Store(settings.database)
    await store.start()
    rows = await store.fetch_all(
        "SELECT charger_id FROM message_log WHERE message_type = 'Disconnected' ORDER BY charger_id"
    )
    await store.stop()
    assert [row["charger_id"] for row in rows] == ["CP1", "CP2"]
