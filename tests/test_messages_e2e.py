"""Every charger-initiated OCPP 1.6 message answered with the right fields, and what it leaves in the state."""

from __future__ import annotations

import csv
import io

import httpx
from ocpp.v16 import call

from gateway.mapping import DataTransferStatus
from gateway.server import RunningGateway
from tests.conftest import ChargerFactory


async def test_heartbeat_answers_current_time(charger: ChargerFactory) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        answer = await cp.call(call.Heartbeat())
    assert answer.current_time.endswith("Z")


async def test_status_notification_creates_connectors(
    charger: ChargerFactory, api: httpx.AsyncClient
) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        await cp.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available"))
        await cp.call(
            call.StatusNotification(
                connector_id=2,
                error_code="GroundFailure",
                status="Faulted",
                info="RCD tripped",
                timestamp="2026-03-05T09:07:01Z",
                vendor_id="com.bender",
                vendor_error_code="E42",
            )
        )
        connectors = (await api.get("/api/chargers/CP1/connectors")).json()
    assert [c["connector_id"] for c in connectors] == [0, 2]
    faulted = connectors[1]
    assert faulted["status"] == "Faulted"
    assert faulted["error_code"] == "GroundFailure"
    assert faulted["info"] == "RCD tripped"
    assert faulted["vendor_id"] == "com.bender"
    assert faulted["vendor_error_code"] == "E42"
    assert faulted["status_time"] == "2026-03-05T09:07:01Z"
    assert faulted["updated_at"] is not None
    assert connectors[0]["status"] == "Available"


async def test_meter_values_kept_with_all_attributes(
    gateway: RunningGateway, charger: ChargerFactory
) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        await cp.call(
            call.MeterValues(
                connector_id=1,
                meter_value=[
                    {
                        "timestamp": "2026-03-05T09:10:00Z",
                        "sampledValue": [
                            {"value": "1234.5"},
                            {
                                "value": "16.1",
                                "measurand": "Current.Import",
                                "phase": "L1",
                                "unit": "A",
                                "context": "Sample.Clock",
                                "location": "Outlet",
                                "format": "Raw",
                            },
                            {"value": "2.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                        ],
                    }
                ],
            )
        )
    rows = await gateway.central.store.fetch_all(
        "SELECT connector_id, transaction_id, timestamp, value, measurand, phase, unit, context, location, format "
        "FROM meter_values WHERE charger_id = 'CP1' ORDER BY id"
    )
    assert rows == [
        {
            "connector_id": 1,
            "transaction_id": None,
            "timestamp": "2026-03-05T09:10:00.000Z",
            "value": "1234.5",
            "measurand": "Energy.Active.Import.Register",  # OCPP defaults filled in
            "phase": None,
            "unit": "Wh",
            "context": "Sample.Periodic",
            "location": "Outlet",
            "format": "Raw",
        },
        {
            "connector_id": 1,
            "transaction_id": None,
            "timestamp": "2026-03-05T09:10:00.000Z",
            "value": "16.1",
            "measurand": "Current.Import",
            "phase": "L1",
            "unit": "A",
            "context": "Sample.Clock",
            "location": "Outlet",
            "format": "Raw",
        },
        {
            "connector_id": 1,
            "transaction_id": None,
            "timestamp": "2026-03-05T09:10:00.000Z",
            "value": "2.5",
            "measurand": "Energy.Active.Import.Register",
            "phase": None,
            "unit": "kWh",
            "context": "Sample.Periodic",
            "location": "Outlet",
            "format": "Raw",
        },
    ]
    latest = gateway.central.chargers["CP1"].connectors[1].meter
    assert latest[("Current.Import", "L1", "Outlet")].value == "16.1"


async def test_authorize_answers_id_tag_info(charger: ChargerFactory) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        ok = await cp.call(call.Authorize(id_tag="ANY-TAG"))
        stolen = await cp.call(call.Authorize(id_tag="tag-stolen"))  # id tags compare case-insensitively
    assert ok.id_tag_info == {"status": "Accepted"}
    assert stolen.id_tag_info == {"status": "Blocked"}


async def test_start_and_stop_transaction_answers(charger: ChargerFactory) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        first = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="A", meter_start=10, timestamp="2026-03-05T09:00:00Z"
            )
        )
        second = await cp.call(
            call.StartTransaction(
                connector_id=2, id_tag="B", meter_start=20, timestamp="2026-03-05T09:00:01Z"
            )
        )
        stop = await cp.call(
            call.StopTransaction(
                meter_stop=100,
                timestamp="2026-03-05T09:30:00Z",
                transaction_id=first.transaction_id,
                id_tag="A",
            )
        )
        stop_without_tag = await cp.call(
            call.StopTransaction(
                meter_stop=30, timestamp="2026-03-05T09:31:00Z", transaction_id=second.transaction_id
            )
        )
    assert first.id_tag_info == {"status": "Accepted"}
    assert first.transaction_id != second.transaction_id
    assert stop.id_tag_info == {"status": "Accepted"}
    assert stop_without_tag.id_tag_info is None


async def test_data_transfer_unknown_vendor_and_registered_handler(
    gateway: RunningGateway, charger: ChargerFactory
) -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def handler(
        charger_id: str, message_id: str | None, data: str | None
    ) -> tuple[DataTransferStatus, str | None]:
        seen.append((charger_id, message_id, data))
        return DataTransferStatus.ACCEPTED, "pong"

    gateway.central.data_transfer_handlers["com.example"] = handler
    async with charger("CP1") as cp:
        await cp.boot()
        unknown = await cp.call(call.DataTransfer(vendor_id="com.nobody", message_id="x", data="y"))
        known = await cp.call(call.DataTransfer(vendor_id="com.example", message_id="ping", data="hello"))
    assert unknown.status == "UnknownVendorId"
    assert unknown.data is None
    assert (known.status, known.data) == ("Accepted", "pong")
    assert seen == [("CP1", "ping", "hello")]


async def test_diagnostics_and_firmware_status(charger: ChargerFactory, api: httpx.AsyncClient) -> None:
    async with charger("CP1") as cp:
        await cp.boot()
        diagnostics = await cp.call(call.DiagnosticsStatusNotification(status="Uploaded"))
        firmware = await cp.call(call.FirmwareStatusNotification(status="Installing"))
        state = (await api.get("/api/chargers/CP1")).json()
    assert type(diagnostics).__name__ == "DiagnosticsStatusNotification"
    assert type(firmware).__name__ == "FirmwareStatusNotification"
    assert state["diagnostics_status"] == "Uploaded"
    assert state["firmware_status"] == "Installing"


async def test_every_exchange_in_message_log(charger: ChargerFactory, api: httpx.AsyncClient) -> None:
    async with charger("CP2") as cp:
        await cp.boot(vendor="Weidmüller", model="AC SMART")
        await cp.call(call.Heartbeat())
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
    log = (await api.get("/api/messages", params={"charger_id": "CP2"})).json()
    types = [entry["message_type"] for entry in reversed(log)]
    assert types[:4] == ["Connected", "BootNotification", "Heartbeat", "StatusNotification"]
    boot = next(e for e in log if e["message_type"] == "BootNotification")
    assert "Weidmüller AC SMART" in boot["summary"] and "Accepted" in boot["summary"]
    status = next(e for e in log if e["message_type"] == "StatusNotification")
    assert status["summary"] == "connector 1: Preparing, NoError"
    csv_text = (await api.get("/api/messages.csv", params={"charger_id": "CP2"})).content.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "timestamp,charger_id,message_type,summary"
    assert "connector 1: Preparing, NoError" in csv_text


async def test_csv_exports_open_in_excel(gateway: RunningGateway, charger: ChargerFactory) -> None:
    """UTF-8 with a byte order mark, which Excel needs to read umlauts right; a charger's text that a spreadsheet
    would run as a formula is written as text."""
    async with charger("CP1") as cp:
        await cp.boot()
        await cp.call(
            call.StatusNotification(
                connector_id=1, error_code="OtherError", status="Faulted", info="Störung Kühlung"
            )
        )
        await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="=cmd|'/C calc'!A0", meter_start=0, timestamp="2026-11-30T10:00:00Z"
            )
        )
    async with httpx.AsyncClient(base_url=gateway.http_url) as api:
        messages = await api.get("/api/messages.csv", params={"charger_id": "CP1"})
        transactions = await api.get("/api/transactions.csv")
    for export in (messages, transactions):
        assert export.headers["content-type"] == "text/csv; charset=utf-8"
        assert export.content.startswith(b"\xef\xbb\xbf")
    assert "Störung Kühlung" in messages.content.decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(transactions.content.decode("utf-8-sig"))))
    assert row["id_tag"] == "'=cmd|'/C calc'!A0"
