"""Admission over a real WebSocket: known, pattern-matched, unknown and refused chargers; discovery; adding a
discovered charger through the API; reloading the mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from ocpp.exceptions import SecurityError
from ocpp.v16 import call

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from tests.conftest import ChargerFactory, connect_charger, make_settings


def _recent(text: str) -> bool:
    moment = datetime.fromisoformat(text)
    return abs((datetime.now(UTC) - moment).total_seconds()) < 60


@pytest.mark.parametrize(
    ("charger_id", "status", "interval"),
    [
        ("CP1", "Accepted", 300),  # known by id: the heartbeat interval
        ("C1-1234567890", "Accepted", 300),  # amina serial, pre-provisioned by pattern
        ("UNKNOWN-9", "Pending", 120),  # guest: Pending with the guest retry interval
        ("BLOCKED-1", "Rejected", 600),  # known but refused, with its own retry interval
        ("WAIT-1", "Pending", 120),
    ],
)
async def test_boot_answer(charger: ChargerFactory, charger_id: str, status: str, interval: int) -> None:
    async with charger(charger_id) as cp:
        answer = await cp.boot()
    assert answer.status == status
    assert answer.interval == interval
    assert _recent(answer.current_time)
    assert answer.current_time.endswith("Z")


async def test_guest_response_setting(tmp_path: Path, mapping: Mapping) -> None:
    settings = make_settings(tmp_path, guest_response="Rejected", guest_retry_interval=45)
    async with running(settings, mapping) as gateway, connect_charger(gateway, "STRANGER") as cp:
        answer = await cp.boot()
    assert (answer.status, answer.interval) == ("Rejected", 45)


async def test_not_accepted_charger_gets_security_error(charger: ChargerFactory) -> None:
    async with charger("UNKNOWN-1") as cp:
        assert (await cp.boot()).status == "Pending"
        for request in (
            call.Heartbeat(),
            call.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
            call.Authorize(id_tag="TAG-OK"),
        ):
            with pytest.raises(SecurityError):
                await cp.call(request, suppress=False)
        # BootNotification is always answered
        assert (await cp.boot()).status == "Pending"


async def test_discovered_chargers_listed_with_boot_data(
    charger: ChargerFactory, api: httpx.AsyncClient
) -> None:
    async with charger("NEW-CP-7") as cp:
        await cp.boot(
            vendor="Bender GmbH Co. KG",
            model="CC612",
            charge_point_serial_number="+49*839*108034579556",
            charge_box_serial_number="BOX-1",
            firmware_version="4.12-2464",
            iccid="8949000000000000001",
            imsi="262000000000001",
            meter_type="eHz/EDL40",
            meter_serial_number="MTR-1",
        )
        listed = (await api.get("/api/chargers", params={"known": False})).json()
    [entry] = [c for c in listed if c["id"] == "NEW-CP-7"]
    assert entry["discovered"] is True
    assert entry["online"] is True
    assert entry["admission"] == {
        "registration": "Pending",
        "source": "guest",
        "pattern": None,
        "known": False,
    }
    assert entry["last_registration_status"] == "Pending"
    assert entry["boot"] == {
        "vendor": "Bender GmbH Co. KG",
        "model": "CC612",
        "charge_point_serial_number": "+49*839*108034579556",
        "charge_box_serial_number": "BOX-1",
        "firmware_version": "4.12-2464",
        "iccid": "8949000000000000001",
        "imsi": "262000000000001",
        "meter_type": "eHz/EDL40",
        "meter_serial_number": "MTR-1",
    }
    assert _recent(entry["first_seen"]) and _recent(entry["last_seen"])
    assert entry["connected"] is True and _recent(entry["connected_since"])


async def test_charger_that_never_booted_is_discovered(
    charger: ChargerFactory, api: httpx.AsyncClient
) -> None:
    async with charger("SILENT-1"):
        charger_entry = (await api.get("/api/chargers/SILENT-1")).json()
    assert charger_entry["discovered"] is True
    assert charger_entry["boot"] is None


async def test_known_chargers_listed_before_they_connect(
    gateway: RunningGateway, api: httpx.AsyncClient
) -> None:
    listed = {c["id"]: c for c in (await api.get("/api/chargers", params={"known": True})).json()}
    assert {"CP1", "CP2", "BLOCKED-1", "WAIT-1"} <= set(listed)
    assert listed["CP1"]["discovered"] is False
    assert listed["CP1"]["name"] == "Bay 1"


async def test_add_discovered_charger_persists(settings: Settings, mapping: Mapping) -> None:
    async with running(settings, mapping) as gateway, connect_charger(gateway, "NEWCOMER") as cp:
        assert (await cp.boot()).status == "Pending"
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            added = await api.put(
                "/api/chargers/NEWCOMER/known", json={"registration": "Accepted", "name": "Dock"}
            )
            assert added.status_code == 200, added.text
            assert added.json()["admission"]["source"] == "added"
            assert added.json()["name"] == "Dock"
        assert (await cp.boot()).status == "Accepted"
        await cp.call(call.Heartbeat(), suppress=False)  # now answered
    # after a restart the added charger is still known
    async with running(settings, mapping) as gateway, connect_charger(gateway, "NEWCOMER") as cp:
        assert (await cp.boot()).status == "Accepted"
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            removed = await api.delete("/api/chargers/NEWCOMER/known")
            assert removed.status_code == 204
        assert (await cp.boot()).status == "Pending"


async def test_add_refuses_ids_listed_in_mapping_file(api: httpx.AsyncClient) -> None:
    answer = await api.put("/api/chargers/BLOCKED-1/known", json={"registration": "Accepted"})
    assert answer.status_code == 409
    assert "mapping file" in answer.json()["detail"]
    bad = await api.put("/api/chargers/bad%20id/known", json={"registration": "Accepted"})
    assert bad.status_code == 422


async def test_mapping_reload_keeps_state(tmp_path: Path) -> None:
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text("chargers:\n  - id: CP1\n    registration: Accepted\n")
    settings = make_settings(tmp_path, mapping=mapping_file)
    async with running(settings) as gateway, connect_charger(gateway, "CP1") as cp:
        assert (await cp.boot()).status == "Accepted"
        await cp.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
        start = await cp.call(
            call.StartTransaction(
                connector_id=1, id_tag="T1", meter_start=0, timestamp="2026-01-01T10:00:00Z"
            )
        )
        async with httpx.AsyncClient(base_url=gateway.http_url) as api:
            mapping_file.write_text("chargers:\n  - id: CP1\n    registration: Rejected\n  - bogus: 1\n")
            refused = await api.post("/api/mapping/reload")
            assert refused.status_code == 422
            assert any(
                "mapping.yaml:4" in line and "unknown key" in line for line in refused.json()["detail"]
            )
            assert (await cp.boot()).status == "Accepted"  # the running mapping stayed

            mapping_file.write_text("chargers:\n  - id: CP1\n    registration: Rejected\n")
            reloaded = await api.post("/api/mapping/reload")
            assert reloaded.status_code == 200
            assert (await cp.boot()).status == "Rejected"
            state = (await api.get("/api/chargers/CP1")).json()
        assert state["connectors"][0]["status"] == "Charging"
        assert state["connectors"][0]["transaction_id"] == start.transaction_id
