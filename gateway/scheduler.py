"""Periodic housekeeping on the gateway's event loop: charger liveness and history retention."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.central import CentralSystem

LOG = logging.getLogger(__name__)


class Housekeeping:
    """Runs the liveness check and the retention prune; `start()`/`stop()` like every service."""

    def __init__(self, central: CentralSystem) -> None:
        self.central = central
        self._scheduler = AsyncIOScheduler(timezone=UTC)

    @property
    def liveness_period(self) -> float:
        # Check often enough that a silent charger turns offline within a few percent of its limit.
        return max(1.0, min(30.0, self.central.settings.offline_after_seconds / 10))

    async def start(self) -> None:
        self._scheduler.add_job(
            self.central.check_liveness, "interval", seconds=self.liveness_period, id="liveness"
        )
        self._scheduler.add_job(
            self._prune, "interval", hours=6, id="retention", next_run_time=datetime.now(UTC), coalesce=True
        )
        self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler.running:  # not when start-up failed before it started
            self._scheduler.shutdown(wait=False)

    async def _prune(self) -> None:
        logs, meters = await self.central.prune_history()
        if logs or meters:
            LOG.info("retention: removed %d message-log rows and %d meter values", logs, meters)
