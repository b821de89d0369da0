"""Transactions end to end: history rows with totals and minutes, restarts, retries and unknown stops."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from ocpp.v16 import call

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from tests.conftest import Charger, ChargerFactory, connect_charger


async def _history(gateway: RunningGateway, **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=gateway.http_url) as api:
        answer = await api.get("/api/transactions", params=params)
        answer.raise_for_status()
        rows: list[dict[str, Any]] = answer.json()
        return rows


def _meter(transaction_id: int, timestamp: str, wh: int) -> Any:
    return call.MeterValues(
        connector_id=1,
        transaction_id=transaction_id,
        meter_value=[
            {
                "timestamp": timestamp,
                "sampledValue": [
                    {"value": str(wh), "context": "Sample.Periodic"},
                    {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                ],
            }
        ],
    )


async def _start(cp: Charger, meter_start: int = 1063, timestamp: str = "2026-02-19T09:49:07Z") -> int:
    answer = await cp.call(
        call.StartTransaction(connector_id=1, id_tag="GW-1", meter_start=meter_start, timestamp=timestamp)
    )
    assert answer.id_tag_info == {"status": "Accepted"}
    transaction_id: int = answer.transaction_id
    return transaction_id


async def test_full_transaction_history_row(gateway: RunningGateway, charger: ChargerFactory) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        transaction_id = await _start(cp)
        await cp.call(_meter(transaction_id, "2026-02-19T09:51:00Z", 1700))
        await cp.call(
            call.StopTransaction(
                meter_stop=2337,
                timestamp="2026-02-19T09:53:00Z",
                transaction_id=transaction_id,
                reason="EVDisconnected",
                transaction_data=[
                    {
                        "timestamp": "2026-02-19T09:53:00Z",
                        "sampledValue": [{"value": "2337", "context": "Transaction.End"}],
                    }
                ],
            )
        )
    [row] = await _history(gateway, charger_id="CP1")
    # the seed's own example row: 1063 -> 2337 Wh is 1274 Wh, 09:49:07 -> 09:53:00 is 3 whole minutes
    assert row == {
        "transaction_id": transaction_id,
        "known_start": True,
        "charger_id": "CP1",
        "connector_id": 1,
        "id_tag": "GW-1",
        "id_tag_status": "Accepted",
        "meter_start_wh": 1063,
        "meter_stop_wh": 2337,
        "energy_wh": 1274,
        "start_time": "2026-02-19T09:49:07Z",
        "stop_time": "2026-02-19T09:53:00Z",
        "minutes_charged": 3,
        "stop_reason": "EVDisconnected",
        "flag": None,
    }
    samples = await gateway.central.store.fetch_all(
        "SELECT value, context, transaction_id FROM meter_values WHERE measurand = 'Energy.Active.Import.Register' "
        "ORDER BY id"
    )
    assert samples == [
        {"value": "1700", "context": "Sample.Periodic", "transaction_id": transaction_id},
        {"value": "2337", "context": "Transaction.End", "transaction_id": transaction_id},
    ]
    assert gateway.central.chargers["CP1"].connectors[1].transaction_id is None


async def test_restart_mid_transaction_loses_nothing(settings: Settings, mapping: Mapping) -> None:
    async with running(settings, mapping) as gateway, connect_charger(gateway, "CP1") as cp:
        await cp.boot(vendor="Bender GmbH Co. KG", model="CC612")
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        transaction_id = await _start(cp, meter_start=5000, timestamp="2026-02-20T16:17:45Z")
        await cp.call(_meter(transaction_id, "2026-02-20T16:20:00Z", 6000))
    # the gateway is gone; the charger reconnects to the new one without booting again
    async with running(settings, mapping) as gateway:
        assert transaction_id in gateway.central.open_transactions
        restored = gateway.central.chargers["CP1"]
        assert restored.boot is not None and restored.boot.model == "CC612"
        assert restored.connectors[1].report is not None
        assert restored.connectors[1].report.status == "Charging"
        assert restored.connectors[1].transaction_id == transaction_id
        assert not restored.online  # known from before, not connected yet
        async with connect_charger(gateway, "CP1") as cp:
            await cp.call(
                call.StopTransaction(
                    meter_stop=9332, timestamp="2026-02-20T16:28:56Z", transaction_id=transaction_id
                ),
                suppress=False,
            )
            [row] = await _history(gateway)
            again = await _start(cp, meter_start=9332, timestamp="2026-02-20T17:00:00Z")
    assert row["transaction_id"] == transaction_id
    assert (row["meter_start_wh"], row["meter_stop_wh"], row["energy_wh"]) == (5000, 9332, 4332)
    assert row["minutes_charged"] == 11
    assert again > transaction_id  # ids keep counting after a restart


async def test_repeated_start_is_one_transaction(gateway: RunningGateway, charger: ChargerFactory) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        first = await _start(cp)
        retry = await _start(cp)  # the charger did not see our answer and sends the same start again
        other = await _start(cp, timestamp="2026-02-19T10:00:00Z")
    assert retry == first
    assert other != first
    assert len(await _history(gateway)) == 2


async def test_stop_for_unknown_transaction_is_recorded(
    gateway: RunningGateway, charger: ChargerFactory
) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        answer = await cp.call(
            call.StopTransaction(
                meter_stop=4332, timestamp="2026-02-20T16:28:56Z", transaction_id=1582215465, id_tag="GW-1"
            ),
            suppress=False,
        )
    assert answer.id_tag_info == {"status": "Accepted"}
    [row] = await _history(gateway)
    assert row["transaction_id"] == 1582215465
    assert row["known_start"] is False
    assert row["meter_stop_wh"] == 4332
    assert row["stop_time"] == "2026-02-20T16:28:56Z"
    assert row["energy_wh"] is None


async def test_repeated_stop_changes_nothing(gateway: RunningGateway, charger: ChargerFactory) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        transaction_id = await _start(cp, meter_start=0, timestamp="2026-03-03T12:30:40Z")
        stop = call.StopTransaction(
            meter_stop=20000, timestamp="2026-03-03T13:39:56Z", transaction_id=transaction_id
        )
        await cp.call(stop, suppress=False)
        await cp.call(stop, suppress=False)
    [row] = await _history(gateway)
    assert (row["energy_wh"], row["minutes_charged"]) == (20000, 69)


async def test_history_filters_and_csv(gateway: RunningGateway, charger: ChargerFactory) -> None:
    for charger_id, day in (("CP1", "2026-01-10"), ("CP2", "2026-01-11"), ("CP1", "2026-01-12")):
        async with charger(charger_id) as cp:
            await cp.boot()
            transaction_id = await _start(cp, meter_start=100, timestamp=f"{day}T08:00:00Z")
            await cp.call(
                call.StopTransaction(
                    meter_stop=600, timestamp=f"{day}T08:45:30Z", transaction_id=transaction_id
                )
            )
    assert [r["charger_id"] for r in await _history(gateway, charger_id="CP1")] == ["CP1", "CP1"]
    window = await _history(gateway, **{"from": "2026-01-11T00:00:00Z", "to": "2026-01-12T00:00:00Z"})
    assert [(r["charger_id"], r["start_time"]) for r in window] == [("CP2", "2026-01-11T08:00:00Z")]
    async with httpx.AsyncClient(base_url=gateway.http_url) as api:
        exported = await api.get("/api/transactions.csv", params={"charger_id": "CP1"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 2
    assert rows[0]["energy_wh"] == "500"
    assert rows[0]["minutes_charged"] == "45"
    assert rows[0]["stop_time"] == "2026-01-12T08:45:30.000Z"


async def test_stop_from_another_charger_does_not_close_the_transaction(
    gateway: RunningGateway, charger: ChargerFactory
) -> None:
    async with charger("CP1") as first, charger("CP2") as second:
        await first.boot()
        await second.boot()
        transaction_id = await _start(first, meter_start=0)
        await second.call(
            call.StopTransaction(
                meter_stop=10, timestamp="2026-02-19T10:00:00Z", transaction_id=transaction_id
            )
        )
    assert transaction_id in gateway.central.open_transactions
    rows = {(r["charger_id"], r["known_start"]): r for r in await _history(gateway)}
    assert rows[("CP1", True)]["stop_time"] is None
    assert rows[("CP2", False)]["meter_stop_wh"] == 10
