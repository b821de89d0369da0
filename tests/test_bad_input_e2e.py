"""Bad input from a charger: each gets the CALLERROR OCPP 1.6 prescribes where it can be addressed, is logged,
and the connection stays up (a Heartbeat after each one is still answered)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from gateway.server import RunningGateway
from tests.conftest import exchange, raw_socket

BOOT = [2, "boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]


async def _still_up(ws: ClientConnection) -> None:
    answer = await exchange(ws, [2, "alive", "Heartbeat", {}])
    assert answer[:2] == [3, "alive"]
    assert "currentTime" in answer[2]


@pytest.mark.parametrize(
    ("frame", "unique_id", "code"),
    [
        pytest.param('[2,"id-1","Heartbeat",{', "id-1", "FormationViolation", id="invalid-json-with-id"),
        pytest.param('[2, "id-2", "Heartbeat", {}, ]', "id-2", "FormationViolation", id="trailing-comma"),
        pytest.param([2, "id-3"], "id-3", "ProtocolError", id="call-missing-action-and-payload"),
        pytest.param(
            [2, "id-4", "Heartbeat", {}, "extra"], "id-4", "FormationViolation", id="call-with-5-elements"
        ),
        pytest.param([2, "id-5", "Heartbeat", []], "id-5", "FormationViolation", id="payload-not-object"),
        pytest.param([2, "id-6", 17, {}], "id-6", "FormationViolation", id="action-not-string"),
        pytest.param([2, 77, "Heartbeat", {}], 77, "FormationViolation", id="unique-id-not-string"),
        pytest.param([2, "x" * 37, "Heartbeat", {}], "x" * 37, "FormationViolation", id="unique-id-too-long"),
        pytest.param([7, "id-7", "Heartbeat", {}], "id-7", "FormationViolation", id="unknown-message-type"),
        pytest.param([2, "id-8", "FlyToTheMoon", {}], "id-8", "NotImplemented", id="unknown-action"),
        pytest.param(
            [2, "id-9", "Reset", {"type": "Hard"}], "id-9", "NotSupported", id="central-system-action"
        ),
        pytest.param(
            [
                2,
                "id-10",
                "StatusNotification",
                {"connectorId": "one", "errorCode": "NoError", "status": "Available"},
            ],
            "id-10",
            "TypeConstraintViolation",
            id="wrong-payload-type",
        ),
        pytest.param(
            [2, "id-11", "StatusNotification", {"connectorId": 1, "status": "Available"}],
            "id-11",
            "OccurenceConstraintViolation",
            id="missing-required-field",
        ),
        pytest.param(
            [2, "id-12", "Heartbeat", {"unexpected": True}], "id-12", "FormationViolation", id="extra-field"
        ),
        pytest.param(
            [
                2,
                "id-13",
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
            ],
            "id-13",
            "PropertyConstraintViolation",
            id="value-not-in-enum",
        ),
        pytest.param(
            [
                2,
                "id-14",
                "StartTransaction",
                {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday"},
            ],
            "id-14",
            "TypeConstraintViolation",
            id="bad-date-time",
        ),
    ],
)
async def test_bad_call_gets_call_error(
    gateway: RunningGateway, frame: Any, unique_id: Any, code: str
) -> None:
    async with raw_socket(gateway, "CP1") as ws:
        assert (await exchange(ws, BOOT))[2]["status"] == "Accepted"
        answer = await exchange(ws, frame)
        assert answer[0] == 4
        assert answer[1] == unique_id
        assert answer[2] == code
        assert isinstance(answer[3], str) and answer[3]
        assert answer[4] == {}
        await _still_up(ws)
    async with httpx.AsyncClient(base_url=gateway.http_url) as api:
        log = (await api.get("/api/messages", params={"charger_id": "CP1"})).json()
    assert any(entry["message_type"] == "CALLERROR" and code in entry["summary"] for entry in log)


async def test_oversized_message(gateway: RunningGateway) -> None:
    limit = gateway.settings.max_message_bytes
    huge = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "x", "data": "é" * limit}])
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        answer = await exchange(ws, huge)
        assert answer[:3] == [4, "big-1", "FormationViolation"]
        assert f"limit of {limit} bytes" in answer[3]
        await _still_up(ws)


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param("this is not json", id="garbage"),
        pytest.param('{"messageTypeId": 2}', id="json-object"),
        pytest.param("[]", id="empty-array"),
        pytest.param('[3, "nobody-asked", {}]', id="unexpected-callresult"),
        pytest.param('[4, "nobody-asked", "GenericError", "", {}]', id="unexpected-callerror"),
        pytest.param('[3, "short"]', id="malformed-callresult"),
        pytest.param(b"\x00\x01binary", id="binary-frame"),
    ],
)
async def test_unanswerable_frames_are_logged_and_connection_stays(
    gateway: RunningGateway, frame: str | bytes
) -> None:
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        await ws.send(frame)
        await _still_up(ws)  # the next answer is the heartbeat's: nothing was sent for the bad frame
    if isinstance(frame, str) and frame.startswith(("[3", "[4")) and frame != '[3, "short"]':
        return  # a stray answer is passed to the library, which drops it
    await gateway.central.store.flush()
    rows = await gateway.central.store.fetch_all(
        "SELECT summary FROM message_log WHERE message_type = 'BadFrame'"
    )
    assert len(rows) == 1 and rows[0]["summary"].startswith("unanswerable:")


async def test_many_bad_frames_in_a_row_do_not_break_the_session(gateway: RunningGateway) -> None:
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        for index in range(50):
            await ws.send(f'[2,"bad-{index}","Heartbeat",{{')
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(50)]
        assert [a[1] for a in answers] == [f"bad-{i}" for i in range(50)]
        await _still_up(ws)


async def test_a_failure_of_ours_is_an_internal_error_and_the_session_goes_on(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(id_tag: str) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(gateway.central, "authorize", broken)
    async with raw_socket(gateway, "CP1") as ws:
        await exchange(ws, BOOT)
        answer = await exchange(ws, [2, "auth-1", "Authorize", {"idTag": "T"}])
        assert answer[:3] == [4, "auth-1", "InternalError"]
        assert "Authorize" in answer[3]
        await _still_up(ws)
