"""BMS writes on their own: how a writer's result reads in the `write_status` point, and the background carrier
(newest value wins, pending until the outcome) against a point database with a scripted writer."""

from __future__ import annotations

import asyncio

import pytest

from gateway.charger_points import ChargerPoints
from gateway.mapping import Mapping
from gateway.sources import WRITE_OUTCOMES
from gateway.writes import BmsWrites, write_outcome
from points import Point, PointDatabase, Value, WriteError, WriteResult


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        (WriteResult(True, "Accepted"), "accepted"),
        (WriteResult(True, "Accepted as TxDefaultProfile (ChargePointMaxProfile rejected)"), "accepted"),
        (WriteResult(True, "RebootRequired"), "accepted"),
        (WriteResult(True, "stored", "smart charging is disabled"), "stored"),
        (WriteResult(True, "Waiting for a transaction (TxProfile)"), "stored"),
        (WriteResult(False, "Rejected"), "rejected"),
        (WriteResult(False, "NotSupported"), "rejected"),
        (WriteResult(False, "Not-supported"), "rejected"),
        (WriteResult(False, "refused", "no such connector"), "rejected"),
        (WriteResult(False, "timed-out"), "timed-out"),
        (WriteResult(False, "Timed-out"), "timed-out"),
        (WriteResult(False, "offline"), "offline"),
        (WriteResult(False, "failed"), "failed"),
        (WriteResult(False, "something new"), "failed"),
    ],
)
def test_write_outcome(result: WriteResult, outcome: str) -> None:
    assert write_outcome(result) == outcome
    assert outcome in WRITE_OUTCOMES


async def test_newest_value_follows_and_status_is_pending_until_the_end() -> None:
    db = PointDatabase()
    charger_points = ChargerPoints(db, Mapping())
    seen: list[Value] = []
    release = asyncio.Event()

    async def writer(point: Point, value: Value, source: str) -> WriteResult:
        seen.append(value)
        await release.wait()
        return WriteResult(value != 13.0, "Accepted" if value != 13.0 else "Rejected")

    charger_points.writers["limit"] = writer
    charger_points.connector("CP1", 1)
    writes = BmsWrites(db, charger_points)
    status = db.get("CP1/write_status")
    assert status is not None

    point, value = writes.check("CP1/1/limit", "16")
    assert (point.id, value) == ("CP1/1/limit", 16.0)
    with pytest.raises(WriteError):
        writes.check("CP1/1/limit", -1)

    writes.submit("CP1/1/limit", 16.0, "modbus")
    assert status.text == "pending"  # at once, before the writer has run
    await asyncio.sleep(0)
    writes.submit("CP1/1/limit", 10.0, "modbus")  # waits behind 16
    writes.submit("CP1/1/limit", 13.0, "modbus")  # replaces 10
    release.set()
    while writes.busy():
        await asyncio.sleep(0.01)
    assert seen == [16.0, 13.0]
    assert status.text == "rejected"
    await writes.close()
