"""Start-up never fails because of stored data: each kind of row an older version could store (or a hand edit
could leave) is skipped with one log line per table, and the gateway starts with everything else."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import httpx
import pytest

from gateway.mapping import Mapping
from gateway.server import running
from gateway.settings import Settings
from tests.bacnet_peer import free_udp_port
from tests.conftest import make_settings

NOW = "2026-11-30T10:00:00.000Z"

# (table, columns and values) of rows that no longer fit; each is what some earlier state could leave behind.
BAD_ROWS: list[tuple[str, dict[str, object]]] = [
    # the defect that started this: StartTransaction on connector -1 was committed with its status
    ("connectors", {"charger_id": "CP1", "connector_id": -1, "status": "Available", "error_code": "NoError"}),
    ("connectors", {"charger_id": "CP1", "connector_id": 2, "status": "Sleeping", "error_code": "NoError"}),
    (
        "connectors",
        {"charger_id": "CP1", "connector_id": "two", "status": "Available", "error_code": "NoError"},
    ),
    (
        "connectors",
        {
            "charger_id": "CP1",
            "connector_id": 3,
            "status": "Available",
            "error_code": "NoError",
            "status_time": "9999-12-31T23:59:59-14:00",
        },
    ),
    (
        "transactions",
        {"charger_id": "CP1", "connector_id": -1, "id_tag": "T", "meter_start_wh": 0, "start_time": NOW},
    ),
    (
        "transactions",
        {"charger_id": "CP1", "connector_id": None, "id_tag": "T", "meter_start_wh": 0, "start_time": NOW},
    ),
    (
        "transactions",
        {
            "charger_id": "CP1",
            "connector_id": 1,
            "id_tag": "T",
            "meter_start_wh": None,
            "start_time": "yesterday",
        },
    ),
    ("chargers", {"id": "MAYBE-1", "first_seen": NOW, "last_seen": NOW, "registration_status": "Maybe"}),
    ("chargers", {"id": "NO-TIME", "first_seen": "", "last_seen": NOW}),
    ("chargers", {"id": "bad id/with slash", "first_seen": NOW, "last_seen": NOW}),
    (
        "chargers",
        {"id": "OVERFLOW", "first_seen": NOW, "last_seen": NOW, "last_boot": "0001-01-01T00:00:00+14:00"},
    ),
    ("added_chargers", {"id": "ADDED-1", "registration": "Sometimes", "added_at": NOW}),
    ("configuration", {"charger_id": "CP1", "key": "", "value": "1", "readonly": 0}),
    ("smart_charging", {"charger_id": "CP1", "connector_id": 1, "settings": "not json"}),
    ("smart_charging", {"charger_id": "CP1", "connector_id": 2, "settings": '{"unit": "X", "limit": 16}'}),
    ("smart_charging", {"charger_id": "CP1", "connector_id": 3, "settings": '{"limit": "lots"}'}),
    ("smart_charging", {"charger_id": "CP1", "connector_id": -4, "settings": "{}"}),
    ("charger_slots", {"pattern": "C1-*", "slot": "first", "charger_id": "C1-9"}),
    ("bacnet_objects", {"point_id": "CP1/x", "object_type": "toaster", "instance": 5}),
    ("bacnet_objects", {"point_id": "CP1/y", "object_type": "analog-value", "instance": -5}),
    ("bacnet_commands", {"point_id": "CP1/1/limit", "priority": 99, "value": "16"}),
    ("bacnet_commands", {"point_id": "CP1/1/limit", "priority": 8, "value": "not json"}),
]

# Rows that still fit and must come back.
GOOD_ROWS: list[tuple[str, dict[str, object]]] = [
    (
        "chargers",
        {
            "id": "CP1",
            "first_seen": NOW,
            "last_seen": NOW,
            "registration_status": "Accepted",
            "vendor": "V",
            "model": "M",
        },
    ),
    (
        "connectors",
        {
            "charger_id": "CP1",
            "connector_id": 1,
            "status": "Charging",
            "error_code": "NoError",
            "updated_at": NOW,
        },
    ),
    (
        "transactions",
        {"charger_id": "CP1", "connector_id": 1, "id_tag": "T", "meter_start_wh": 100, "start_time": NOW},
    ),
    (
        "smart_charging",
        {"charger_id": "CP1", "connector_id": 0, "settings": '{"enabled": true, "limit": 20}'},
    ),
]


def _insert(path: Path, rows: list[tuple[str, dict[str, object]]]) -> None:
    connection = sqlite3.connect(path)
    with connection:
        for table, values in rows:
            values = dict(values)
            if table == "connectors":
                values.setdefault("updated_at", NOW)
            if table == "transactions":
                values.setdefault("created_at", NOW)
            columns = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            connection.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))
        # text that is not UTF-8 at all, as a hand edit with another tool may leave it
        connection.execute(
            "INSERT INTO message_log (timestamp, charger_id, message_type, summary) "
            "VALUES (?, 'CP1', 'Note', CAST(X'66FF6F' AS TEXT))",
            (NOW,),
        )
    connection.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # BACnet on, for its kept instances and priority arrays
    return make_settings(
        tmp_path, bacnet_enabled=True, bacnet_address="127.0.0.1/8", bacnet_port=free_udp_port()
    )


async def test_the_gateway_starts_over_rows_that_no_longer_fit(
    settings: Settings, mapping: Mapping, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(settings, mapping):
        pass  # creates the database
    _insert(settings.database, GOOD_ROWS + BAD_ROWS)
    caplog.set_level(logging.WARNING)
    async with running(settings, mapping) as gateway, httpx.AsyncClient(base_url=gateway.http_url) as api:
        chargers = await api.get("/api/chargers")
        assert chargers.status_code == 200
        ids = {c["id"] for c in chargers.json()}
        assert "CP1" in ids and not {"MAYBE-1", "NO-TIME", "bad id/with slash", "ADDED-1"} & ids
        cp1 = next(c for c in chargers.json() if c["id"] == "CP1")
        assert [(c["connector_id"], c["status"]) for c in cp1["connectors"]] == [(1, "Charging")]
        health = (await api.get("/api/health")).json()
        assert health["open_transactions"] == 1
        limit = (await api.get("/api/chargers/CP1/connectors/0/smart-charging")).json()
        assert limit["limit"] == 20 and limit["enabled"] is True
        assert (await api.get("/api/messages")).status_code == 200
        assert (await api.get("/api/points", params={"charger_id": "CP1"})).status_code == 200
        assert not [p.id for p in gateway.central.points.db if p.id.startswith("CP1/-")]
    skipped = [r.getMessage() for r in caplog.records if "skipped at start-up" in r.getMessage()]
    tables = {message.split(":")[0] for message in skipped}
    assert tables == {table for table, _ in BAD_ROWS}, skipped
    # one line per table, however many rows it skipped
    assert len(skipped) == len(tables)
