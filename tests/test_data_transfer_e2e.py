"""A charger's DataTransfer (OCPP 1.6 §4.3, §6.17) answered from the mapping's `data_transfer` table, and logged
with its data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from ocpp.v16 import call

from gateway.mapping import Mapping
from gateway.server import running
from tests.conftest import connect_charger, make_settings

SITE: dict[str, Any] = {
    "chargers": [{"id": "CP1"}],
    "data_transfer": [
        {"vendor_id": "com.acme", "message_id": "ping", "data": "pong"},
        {"vendor_id": "com.acme", "message_id": "reboot", "status": "Rejected"},
        {"vendor_id": "COM.WIDE", "data": '{"ok": true}'},
        {"vendor_id": "com.wide", "message_id": "quiet", "status": "UnknownMessageId"},
    ],
}


async def test_data_transfer_answers_come_from_the_mapping(tmp_path: Path) -> None:
    """OCPP 1.6 §6.17 DataTransfer.conf: a listed vendor gets its configured status and data; a message id the
    vendor's entries do not name is UnknownMessageId; a vendor not listed stays UnknownVendorId. Vendor and
    message ids are CiStrings: they compare case-insensitively."""
    asked = [
        ("com.acme", "ping", "Accepted", "pong"),
        ("COM.ACME", "PING", "Accepted", "pong"),
        ("com.acme", "reboot", "Rejected", None),
        ("com.acme", "other", "UnknownMessageId", None),
        ("com.acme", None, "UnknownMessageId", None),
        ("com.wide", "anything", "Accepted", '{"ok": true}'),
        ("com.wide", None, "Accepted", '{"ok": true}'),
        ("com.wide", "quiet", "UnknownMessageId", None),
        ("com.nobody", "ping", "UnknownVendorId", None),
    ]
    async with (
        running(make_settings(tmp_path), Mapping.model_validate(SITE)) as gateway,
        connect_charger(gateway, "CP1") as cp,
    ):
        await cp.boot()
        for vendor_id, message_id, status, data in asked:
            answer = await cp.call(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data="x"))
            assert (answer.status, answer.data) == (status, data), (vendor_id, message_id)


async def test_every_data_transfer_is_logged_with_its_data_clipped(tmp_path: Path) -> None:
    """Each DataTransfer is a message-log line with the vendor, message id, answer and the data it carried, at
    most 200 characters of it, one line whatever it holds."""
    long_data = "line one\nline two\x00" + "x" * 1000  # (invalid text is refused before it is logged)
    async with (
        running(make_settings(tmp_path), Mapping.model_validate(SITE)) as gateway,
        httpx.AsyncClient(base_url=gateway.http_url) as api,
        connect_charger(gateway, "CP1") as cp,
    ):
        await cp.boot()
        await cp.call(call.DataTransfer(vendor_id="com.acme", message_id="ping", data='{"t": 21.5}'))
        await cp.call(call.DataTransfer(vendor_id="com.nobody", data=long_data))
        await cp.call(call.DataTransfer(vendor_id="com.acme", message_id="reboot"))
        await cp.call(call.Heartbeat())  # the log line of the last one is written before this answer
        log = (await api.get("/api/messages", params={"charger_id": "CP1"})).json()
    lines = [entry["summary"] for entry in reversed(log) if entry["message_type"] == "DataTransfer"]
    assert lines[0] == 'com.acme/ping -> Accepted, answer "pong", data "{\\"t\\": 21.5}"'
    assert lines[1].startswith('com.nobody/- -> UnknownVendorId, data "line one\\nline two\\u0000xxx')
    assert lines[1].endswith('"... (1018 characters)') and "\n" not in lines[1]
    assert len(lines[1]) < 300
    assert lines[2] == "com.acme/reboot -> Rejected, data -"
