"""The SQLite store on disk: group commit, one failing write does not sink its batch, data survives a reopen."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from gateway.central import CentralSystem
from gateway.mapping import Mapping
from gateway.state import iso, utcnow
from gateway.store import Store
from tests.conftest import make_settings


def _log_row(index: int) -> Callable[[sqlite3.Connection], int | None]:
    def insert(c: sqlite3.Connection) -> int | None:
        sql = (
            "INSERT INTO message_log (timestamp, charger_id, message_type, summary) VALUES (?, 'CP', 'T', ?)"
        )
        return c.execute(sql, ("2026-01-01T00:00:00.000Z", str(index))).lastrowid

    return insert


async def test_writes_are_committed_and_survive_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    await store.start()
    results = await asyncio.gather(*(store.write(_log_row(i)) for i in range(500)))
    assert sorted(r or 0 for r in results) == list(range(1, 501))
    await store.stop()

    reopened = Store(tmp_path / "db.sqlite3")
    await reopened.start()
    rows = await reopened.fetch_all("SELECT COUNT(*) AS n FROM message_log")
    await reopened.stop()
    assert rows == [{"n": 500}]


async def test_failing_write_does_not_sink_the_batch(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    await store.start()

    def bad(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO no_such_table VALUES (1)")

    def good(c: sqlite3.Connection) -> int:
        c.execute("INSERT INTO added_chargers (id, registration, added_at) VALUES ('X', 'Accepted', 'now')")
        return 1

    outcomes = await asyncio.gather(
        store.write(good), store.write(bad), store.write(good), return_exceptions=True
    )
    assert outcomes[0] == 1
    assert isinstance(outcomes[1], sqlite3.OperationalError)
    assert isinstance(outcomes[2], sqlite3.IntegrityError)  # the duplicate id: rolled back alone
    assert await store.fetch_all("SELECT id FROM added_chargers") == [{"id": "X"}]
    store.execute_nowait("INSERT INTO no_such_table VALUES (1)")  # logged, not raised
    await store.stop()


async def test_retention_prunes_old_history(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, message_log_retention_days=30, meter_retention_days=60)
    store = Store(settings.database)
    await store.start()
    central = CentralSystem(settings, store, Mapping())
    now = utcnow()
    for days in (10, 40, 70):
        moment = iso(now - timedelta(days=days))
        store.execute_nowait(
            "INSERT INTO message_log (timestamp, charger_id, message_type, summary) VALUES (?, 'CP', 'T', '')",
            (moment,),
        )
        store.execute_nowait(
            "INSERT INTO meter_values (charger_id, connector_id, timestamp, value, measurand, received_at) "
            "VALUES ('CP', 1, ?, '1', 'Energy.Active.Import.Register', ?)",
            (moment, moment),
        )
        store.execute_nowait(
            "INSERT INTO commands (charger_id, action, request, source, outcome, sent_at, finished_at) "
            "VALUES ('CP', 'Reset', '{}', 'api', 'accepted', ?, ?)",
            (moment, moment),
        )
    assert await central.prune_history(now) == (4, 1)  # message log and command history alike
    assert [row["sent_at"] for row in await store.fetch_all("SELECT sent_at FROM commands")] == [
        iso(now - timedelta(days=10))
    ]
    await store.stop()


async def test_database_is_durable_wal(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    await store.start()
    mode = await store.fetch_all("PRAGMA journal_mode")
    synchronous = await store.fetch_all("PRAGMA synchronous")
    await store.stop()
    assert mode == [{"journal_mode": "wal"}]
    assert synchronous == [{"synchronous": 2}]  # FULL
