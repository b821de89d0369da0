"""Transactions under the retries and lost answers of real chargers (OCPP 1.6 §4.8 StartTransaction, §4.10
StopTransaction, §4.7 MeterValues; §3.3 transaction-related messages are resent until answered). After every
sequence the gateway's memory and SQLite agree: `/api/health`, the connector, its points and the stored rows say
the same, before and after a restart on the same database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from ocpp.v16 import call

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from tests.conftest import Charger, connect_charger

T0 = "2026-11-30T10:00:00Z"


def _time(minute: int, second: int = 0) -> str:
    return f"2026-11-30T10:{minute:02d}:{second:02d}Z"


def _meter(connector: int, wh: int, at: str, transaction: int | None = None, **sample: Any) -> Any:
    return call.MeterValues(
        connector_id=connector,
        transaction_id=transaction,
        meter_value=[{"timestamp": at, "sampledValue": [{"value": str(wh), **sample}]}],
    )


async def _start(cp: Charger, connector: int = 1, meter: int = 1000, at: str = T0, tag: str = "TAG-1") -> int:
    answer = await cp.call(
        call.StartTransaction(connector_id=connector, id_tag=tag, meter_start=meter, timestamp=at),
        suppress=False,
    )
    transaction_id: int = answer.transaction_id
    return transaction_id


async def _stop(cp: Charger, transaction: int, meter: int, at: str, **extra: Any) -> Any:
    return await cp.call(
        call.StopTransaction(transaction_id=transaction, meter_stop=meter, timestamp=at, **extra),
        suppress=False,
    )


async def _rows(gateway: RunningGateway, sql: str, *parameters: Any) -> list[dict[str, Any]]:
    await gateway.central.store.flush()
    return await gateway.central.store.fetch_all(sql, parameters)


async def _point(api: httpx.AsyncClient, point_id: str) -> Any:
    answer = await api.get(f"/api/points/{point_id}")
    return answer.json()["value"] if answer.status_code == 200 else None


async def _agree(gateway: RunningGateway) -> dict[int, int]:
    """Memory and SQLite say the same of CP1's open transactions; returns them (connector -> transaction)."""
    stored = await _rows(
        gateway,
        "SELECT id, connector_id FROM transactions WHERE orphan_transaction_id IS NULL AND stop_time IS NULL "
        "AND charger_id = 'CP1'",
    )
    open_by_connector = {row["connector_id"]: row["id"] for row in stored}
    assert len(open_by_connector) == len(stored), "two open transactions on one connector"
    async with httpx.AsyncClient(base_url=gateway.http_url) as api:
        health = (await api.get("/api/health")).json()
        assert health["open_transactions"] == len(stored)
        connectors = (await api.get("/api/chargers/CP1/connectors")).json()
        shown = {
            c["connector_id"]: c["transaction_id"] for c in connectors if c["transaction_id"] is not None
        }
        assert shown == open_by_connector
        for connector in (c["connector_id"] for c in connectors if c["connector_id"] > 0):
            running_id = open_by_connector.get(connector)
            assert await _point(api, f"CP1/{connector}/transaction_active") is (running_id is not None)
            assert await _point(api, f"CP1/{connector}/transaction_id") == float(running_id or 0)
    return open_by_connector


@asynccontextmanager
async def _site(settings: Settings, mapping: Mapping) -> AsyncIterator[tuple[RunningGateway, Charger]]:
    async with running(settings, mapping) as gateway, connect_charger(gateway, "CP1") as cp:
        await cp.boot()
        for connector in (1, 2):
            await cp.call(
                call.StatusNotification(connector_id=connector, error_code="NoError", status="Available")
            )
        yield gateway, cp


async def _agree_after_restart(settings: Settings, mapping: Mapping, before: dict[int, int]) -> None:
    async with running(settings, mapping) as gateway:
        assert await _agree(gateway) == before


async def test_a_start_on_a_busy_connector_closes_the_open_transaction(
    settings: Settings, mapping: Mapping
) -> None:
    async with _site(settings, mapping) as (gateway, cp):
        first = await _start(cp, meter=1000, at=_time(0))
        await cp.call(_meter(1, 1400, _time(5), first))
        await cp.call(_meter(1, 1500, _time(10), first))
        second = await _start(cp, meter=1600, at=_time(30))
        [old] = await _rows(gateway, "SELECT * FROM transactions WHERE id = ?", first)
        assert (old["stop_reason"], old["meter_stop_wh"], old["energy_wh"]) == ("Superseded", 1500, 500)
        assert (old["stop_time"], old["minutes_charged"]) == ("2026-11-30T10:10:00.000Z", 10)
        assert "closed by a new start on connector 1" in old["flag"]
        [log] = await _rows(
            gateway, "SELECT summary FROM message_log WHERE message_type = 'TransactionSuperseded'"
        )
        assert f"transaction {first}" in log["summary"] and f"transaction {second}" in log["summary"]
        assert await _agree(gateway) == {1: second}
    await _agree_after_restart(settings, mapping, {1: second})


async def test_a_start_resent_after_its_stop_opens_nothing(settings: Settings, mapping: Mapping) -> None:
    async with _site(settings, mapping) as (gateway, cp):
        transaction = await _start(cp, meter=1000, at=_time(0))
        await _stop(cp, transaction, 3000, _time(20))
        assert await _start(cp, meter=1000, at=_time(0)) == transaction  # the charger's retry, late
        [row] = await _rows(gateway, "SELECT stop_time, energy_wh FROM transactions")
        assert row == {"stop_time": "2026-11-30T10:20:00.000Z", "energy_wh": 2000}
        assert await _agree(gateway) == {}
    await _agree_after_restart(settings, mapping, {})


async def test_a_stop_without_a_reason_is_local(settings: Settings, mapping: Mapping) -> None:
    """OCPP 1.6 §7.40 Reason: "Local" is the default when the reason is left out."""
    async with _site(settings, mapping) as (gateway, cp):
        transaction = await _start(cp)
        await _stop(cp, transaction, 2000, _time(5))
        [row] = await _rows(gateway, "SELECT stop_reason FROM transactions")
        assert row["stop_reason"] == "Local"
        assert await _agree(gateway) == {}


async def test_a_retried_stop_of_an_unknown_transaction_is_stored_once(
    settings: Settings, mapping: Mapping
) -> None:
    async with _site(settings, mapping) as (gateway, cp):
        for _ in range(3):
            await _stop(cp, 77777, 5000, _time(5), reason="Local")
        rows = await _rows(gateway, "SELECT orphan_transaction_id FROM transactions")
        assert rows == [{"orphan_transaction_id": 77777}]
        log = await _rows(gateway, "SELECT summary FROM message_log WHERE message_type = 'StopTransaction'")
        assert ["already recorded" in entry["summary"] for entry in log] == [False, True, True]
        assert await _agree(gateway) == {}


async def test_meter_values_for_another_transaction_stay_the_connectors(
    settings: Settings, mapping: Mapping
) -> None:
    async with _site(settings, mapping) as (gateway, cp):
        on_one = await _start(cp, connector=1, meter=1000, at=_time(0))
        on_two = await _start(cp, connector=2, meter=0, at=_time(0), tag="TAG-2")
        await cp.call(_meter(1, 1100, _time(1), on_one))
        await cp.call(_meter(1, 1200, _time(2), on_two))  # connector 2's transaction, sent on connector 1
        await cp.call(_meter(1, 1300, _time(3), 999999))  # no such transaction
        rows = await _rows(gateway, "SELECT value, transaction_id FROM meter_values ORDER BY timestamp")
        assert rows == [
            {"value": "1100", "transaction_id": on_one},
            {"value": "1200", "transaction_id": None},
            {"value": "1300", "transaction_id": None},
        ]
        # the connector's own reading still counts for its running session
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            assert await _point(api, "CP1/1/session_energy") == 300
            assert await _point(api, "CP1/2/session_energy") == 0
        assert await _agree(gateway) == {1: on_one, 2: on_two}


async def test_a_stop_resent_with_a_higher_meter_updates_the_totals(
    settings: Settings, mapping: Mapping
) -> None:
    async with _site(settings, mapping) as (gateway, cp):
        transaction = await _start(cp, meter=1000, at=_time(0))
        await _stop(cp, transaction, 3000, _time(10))
        await _stop(cp, transaction, 3500, _time(12))  # it never saw our answer and kept counting
        await _stop(cp, transaction, 3200, _time(11))  # a lower one changes nothing
        [row] = await _rows(
            gateway, "SELECT meter_stop_wh, energy_wh, stop_time, minutes_charged FROM transactions"
        )
        assert row == {
            "meter_stop_wh": 3500,
            "energy_wh": 2500,
            "stop_time": "2026-11-30T10:12:00.000Z",
            "minutes_charged": 12,
        }
        log = await _rows(gateway, "SELECT summary FROM message_log WHERE message_type = 'StopTransaction'")
        assert any("higher meter (was 3000 Wh): now 2500 Wh" in entry["summary"] for entry in log)
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            assert await _point(api, "CP1/1/session_energy") == 2500
        assert await _agree(gateway) == {}


async def test_a_meter_that_goes_backwards_gives_no_negative_energy(
    settings: Settings, mapping: Mapping
) -> None:
    async with _site(settings, mapping) as (gateway, cp):
        transaction = await _start(cp, meter=5000, at=_time(0))
        await cp.call(_meter(1, 4000, _time(1), transaction))  # a meter replaced mid-session
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            assert await _point(api, "CP1/1/session_energy") == 0
            await _stop(cp, transaction, 4200, _time(5))
            [row] = (await api.get("/api/transactions")).json()
        assert row["energy_wh"] is None
        assert row["flag"] == "meter went backwards: start 5000 Wh, stop 4200 Wh"
        assert await _agree(gateway) == {}


async def test_a_resent_meter_values_is_stored_once(settings: Settings, mapping: Mapping) -> None:
    async with _site(settings, mapping) as (gateway, cp):
        transaction = await _start(cp)
        message = call.MeterValues(
            connector_id=1,
            transaction_id=transaction,
            meter_value=[
                {
                    "timestamp": _time(1),
                    "sampledValue": [
                        {"value": "1100"},
                        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                        {"value": "10.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                    ],
                }
            ],
        )
        for _ in range(3):
            await cp.call(message)
        rows = await _rows(gateway, "SELECT COUNT(*) AS n FROM meter_values")
        assert rows == [{"n": 3}]
        log = await _rows(gateway, "SELECT summary FROM message_log WHERE message_type = 'MeterValues'")
        assert ["already stored (resent)" in entry["summary"] for entry in log] == [False, True, True]
        assert await _agree(gateway) == {1: transaction}


async def test_older_values_never_replace_newer_ones(settings: Settings, mapping: Mapping) -> None:
    """A charger back from a network drop sends what it queued: the points keep the newest by its clock."""
    async with _site(settings, mapping) as (gateway, cp):
        await cp.call(_meter(1, 1500, _time(20)))
        await cp.call(_meter(1, 1200, _time(10)))  # queued while offline, sent late
        status = call.StatusNotification(
            connector_id=1, error_code="NoError", status="Charging", timestamp=_time(20)
        )
        await cp.call(status)
        late = call.StatusNotification(
            connector_id=1, error_code="NoError", status="Preparing", timestamp=_time(10)
        )
        await cp.call(late)
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            assert await _point(api, "CP1/1/meter/Energy.Active.Import.Register") == 1500
            assert await _point(api, "CP1/1/status") == 3  # Charging
            [connector] = [
                c for c in (await api.get("/api/chargers/CP1/connectors")).json() if c["connector_id"] == 1
            ]
        assert connector["status"] == "Charging"
        energy = next(m for m in connector["meter"] if m["measurand"] == "Energy.Active.Import.Register")
        assert energy["value"] == "1500"
        [stored] = await _rows(gateway, "SELECT status, status_time FROM connectors WHERE connector_id = 1")
        assert stored == {"status": "Charging", "status_time": "2026-11-30T10:20:00.000Z"}
        # both readings are history, even the late one
        assert len(await _rows(gateway, "SELECT id FROM meter_values")) == 2
