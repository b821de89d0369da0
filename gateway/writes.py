"""BMS writes: the one way a BACnet or Modbus write reaches a charger.

A BMS client waits a few seconds at most for its answer; a charger may take longer (and may be offline). So an
adapter checks a write here first (`check`: the point database's checks, its error codes), answers its client,
and `submit`s the value. The write then goes to the point's writer (the command service) in the background. While
one write of a point is on its way, only the newest value waiting after it follows: a BMS that writes a limit
every second does not queue a minute of SetChargingProfile calls. The charger's `write_status` point says
`pending` from the moment a write is submitted until its outcome is known (accepted, stored, rejected,
timed-out, offline, failed), so a BMS that reads it after its write was acknowledged never sees an older outcome.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.charger_points import ChargerPoints
from points import Point, PointDatabase, Value, WriteError, WriteResult

LOG = logging.getLogger(__name__)

WRITE_STATUS = "write_status"


def write_outcome(result: WriteResult) -> str:
    """A writer's result in the words of the `write_status` point (see `gateway.sources.WRITE_OUTCOMES`)."""
    status = result.status.lower()
    if status == "stored" or status.startswith("waiting"):
        return "stored"  # taken by the gateway, sent when it can be (smart charging off, no transaction yet)
    if result.accepted:
        return "accepted"
    for outcome in ("timed-out", "offline"):
        if status.startswith(outcome):
            return outcome
    if status.startswith(("rejected", "not-supported", "notsupported", "refused")):
        return "rejected"
    return "failed"


class BmsWrites:
    """Checks BMS writes and carries them to the charger, newest value first, recording each outcome."""

    def __init__(self, points: PointDatabase, charger_points: ChargerPoints) -> None:
        self.points = points
        self.charger_points = charger_points
        self._running: dict[str, asyncio.Task[None]] = {}  # point id -> the task carrying its writes
        self._waiting: dict[str, tuple[Value, str]] = {}  # point id -> (newest value not yet sent, source)

    def check(self, point_id: str, value: object) -> tuple[Point, Value]:
        """The point and the value as it takes it, or WriteError (unknown, read-only, wrong type, out of range)."""
        return self.points.check_write(point_id, value)

    def submit(self, point_id: str, value: Value, source: str) -> None:
        """Send a checked value to the charger in the background; `write_status` is `pending` from now."""
        self._status(point_id, "pending", source)
        self._waiting[point_id] = (value, source)
        if point_id not in self._running:
            self._running[point_id] = asyncio.create_task(self._carry(point_id), name=f"write-{point_id}")

    def busy(self) -> int:
        """Points with a write on its way."""
        return len(self._running)

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _carry(self, point_id: str) -> None:
        try:
            while point_id in self._waiting:
                value, source = self._waiting.pop(point_id)
                try:
                    result = await self.points.write(point_id, value, source=source)
                except WriteError as error:  # the point changed since the check (its limits, a new mapping)
                    LOG.warning("%s write %s = %s refused: %s", source, point_id, value, error)
                    outcome = "rejected"
                except Exception:
                    LOG.exception("%s write %s = %s failed", source, point_id, value)
                    outcome = "failed"
                else:
                    LOG.info("%s write %s = %s: %s", source, point_id, value, result)
                    outcome = write_outcome(result)
                if point_id not in self._waiting:  # a newer write keeps the status pending
                    self._status(point_id, outcome, source)
        finally:
            self._running.pop(point_id, None)

    def _status(self, point_id: str, outcome: str, source: str) -> None:
        charger_id = point_id.partition("/")[0]
        try:
            self.charger_points.set(charger_id, WRITE_STATUS, outcome, origin=source)
        except Exception:  # the status is a courtesy: never let it stop a write
            LOG.exception("cannot record the write status of %s", charger_id)
