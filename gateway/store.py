"""SQLite persistence: one connection on one worker thread, writes group-committed off the event loop.

Every write is a function run on the worker thread. Writes queue up and are committed together, so a burst from a
thousand chargers costs a handful of commits; a caller that needs durability (a transaction start, say) awaits
its write, the message log does not.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

LOG = logging.getLogger(__name__)
T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], Any]
MAX_BATCH = 1000

SCHEMA = """
CREATE TABLE IF NOT EXISTS chargers (
    id TEXT PRIMARY KEY,
    vendor TEXT, model TEXT, charge_point_serial_number TEXT, charge_box_serial_number TEXT,
    firmware_version TEXT, iccid TEXT, imsi TEXT, meter_type TEXT, meter_serial_number TEXT,
    protocol TEXT,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, last_boot TEXT,
    registration_status TEXT,
    diagnostics_status TEXT, diagnostics_status_time TEXT,
    firmware_status TEXT, firmware_status_time TEXT
);
CREATE TABLE IF NOT EXISTS added_chargers (
    id TEXT PRIMARY KEY,
    registration TEXT NOT NULL,
    name TEXT,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connectors (
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    status TEXT, error_code TEXT, info TEXT, vendor_id TEXT, vendor_error_code TEXT,
    status_time TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY (charger_id, connector_id)
);
-- id is the transactionId the gateway hands out. A StopTransaction for a transaction the gateway never
-- started is kept too, with the charger's own id in orphan_transaction_id.
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    orphan_transaction_id INTEGER,
    charger_id TEXT NOT NULL,
    connector_id INTEGER,
    id_tag TEXT,
    id_tag_status TEXT,
    reservation_id INTEGER,
    meter_start_wh INTEGER,
    meter_stop_wh INTEGER,
    energy_wh INTEGER,
    start_time TEXT,
    stop_time TEXT,
    minutes_charged INTEGER,
    stop_reason TEXT,
    stop_id_tag TEXT,
    created_at TEXT NOT NULL,
    flag TEXT
);
CREATE INDEX IF NOT EXISTS transactions_charger_start ON transactions (charger_id, start_time);
CREATE TABLE IF NOT EXISTS meter_values (
    id INTEGER PRIMARY KEY,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    transaction_id INTEGER,
    timestamp TEXT NOT NULL,
    value TEXT NOT NULL,
    measurand TEXT NOT NULL, phase TEXT, unit TEXT, context TEXT, location TEXT, format TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS meter_values_charger_time ON meter_values (charger_id, timestamp);
CREATE INDEX IF NOT EXISTS meter_values_transaction ON meter_values (transaction_id);
CREATE TABLE IF NOT EXISTS message_log (
    id INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,
    charger_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_log_time ON message_log (timestamp);
CREATE INDEX IF NOT EXISTS message_log_charger_time ON message_log (charger_id, timestamp);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY,
    charger_id TEXT NOT NULL,
    action TEXT NOT NULL,
    request TEXT NOT NULL,
    source TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status TEXT,
    response TEXT,
    detail TEXT,
    sent_at TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_charger_time ON commands (charger_id, sent_at);
CREATE TABLE IF NOT EXISTS configuration (
    charger_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT,
    readonly INTEGER NOT NULL,
    read_at TEXT,
    write_status TEXT,
    write_time TEXT,
    PRIMARY KEY (charger_id, key)
);
CREATE TABLE IF NOT EXISTS smart_charging (
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (charger_id, connector_id)
);
CREATE TABLE IF NOT EXISTS local_list_versions (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    entries TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS local_lists (
    charger_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    entries TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
-- A charger matched by a pattern entry holds one of its slots (a block of BACnet instances and Modbus
-- registers) for good, so its points keep their numbers across restarts.
CREATE TABLE IF NOT EXISTS charger_slots (
    pattern TEXT NOT NULL,
    slot INTEGER NOT NULL,
    charger_id TEXT NOT NULL UNIQUE,
    PRIMARY KEY (pattern, slot)
);
-- The instance the BACnet device gave a point the mapping does not place, kept so it never moves.
CREATE TABLE IF NOT EXISTS bacnet_objects (
    point_id TEXT PRIMARY KEY,
    object_type TEXT NOT NULL,
    instance INTEGER NOT NULL,
    UNIQUE (object_type, instance)
);
-- What a BMS commanded at each priority (1-16) of a commandable object; priority 0 is a relinquish default
-- the BMS wrote. Values are JSON.
CREATE TABLE IF NOT EXISTS bacnet_commands (
    point_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (point_id, priority)
);
CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    charger_id TEXT NOT NULL,
    connector_id INTEGER NOT NULL,
    id_tag TEXT NOT NULL,
    expiry_date TEXT NOT NULL,
    status TEXT,
    created_at TEXT NOT NULL
);
"""


# Columns added after a table was first released: (table, column, declaration). A database made by an older
# version gains them at start.
ADDED_COLUMNS = [
    ("transactions", "flag", "TEXT"),
]


def _migrate(connection: sqlite3.Connection) -> None:
    for table, column, declaration in ADDED_COLUMNS:
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            LOG.info("database: %s gains the column %s", table, column)


def load_rows(table: str, rows: Iterable[T], load: Callable[[T], object]) -> int:
    """Apply `load` to each stored row. A row that no longer fits (written by an older version, edited by hand)
    is skipped, so the gateway still starts; the rows skipped are logged once per table. Returns their count."""
    skipped = 0
    first: tuple[T, Exception] | None = None
    for row in rows:
        try:
            load(row)
        except Exception as exc:
            skipped += 1
            first = first or (row, exc)
    if first is not None:
        row, problem = first
        shown = dict(row) if isinstance(row, sqlite3.Row) else row
        LOG.warning(
            "%s: %d stored row(s) skipped at start-up, they no longer fit; the first: %s (%s: %s)",
            table,
            skipped,
            shown,
            type(problem).__name__,
            problem,
        )
    return skipped


def _text(data: bytes) -> str:
    # Text that is not UTF-8 (a database edited by hand) reads with replacement characters rather than failing the
    # whole query, and with it the gateway's start.
    return str(data, "utf-8", "replace")


@dataclass
class _Pending:
    operation: Operation
    future: asyncio.Future[Any] | None = field(default=None)


class Store:
    """The gateway's SQLite database. `start()` opens and migrates it, `stop()` flushes and closes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._connection: sqlite3.Connection | None = None
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._open)
        self._writer = asyncio.create_task(self._write_loop(), name="sqlite-writer")

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.text_factory = _text
        connection.execute("PRAGMA journal_mode=WAL")
        # FULL: a power cut in the plant room must not lose a committed transaction start.
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA busy_timeout=5000")
        connection.executescript(SCHEMA)
        _migrate(connection)
        self._connection = connection

    async def stop(self) -> None:
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await asyncio.get_running_loop().run_in_executor(self._executor, connection.close)
        self._executor.shutdown(wait=True)

    async def write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Queue `operation` and wait until the batch holding it is committed; returns its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(operation, future))
        return await future

    def write_nowait(self, operation: Operation) -> None:
        """Queue `operation` without waiting for its commit (for the message log and cached state)."""
        self._queue.put_nowait(_Pending(operation))

    def execute_nowait(self, sql: str, parameters: tuple[Any, ...] | dict[str, Any] = ()) -> None:
        self.write_nowait(lambda connection: connection.execute(sql, parameters))

    async def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run `query` on the worker thread; it sees every write queued before it, the message log's too."""
        return await self.write(query)

    async def fetch_all(
        self, sql: str, parameters: tuple[Any, ...] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        return await self.read(lambda c: [dict(row) for row in c.execute(sql, parameters).fetchall()])

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self.write(lambda connection: None)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            batch: list[_Pending] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    continue
                batch.append(item)
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, batch)
            except Exception as exc:  # the commit itself failed: every caller in the batch must hear of it
                LOG.exception("SQLite commit failed")
                results = [exc] * len(batch)
            for pending, result in zip(batch, results, strict=True):
                if pending.future is None or pending.future.done():
                    if isinstance(result, Exception) and pending.future is None:
                        LOG.error("SQLite write failed: %s", result)
                    continue
                if isinstance(result, Exception):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    def _run_batch(self, batch: list[_Pending]) -> list[Any]:
        connection = self._connection
        assert connection is not None, "store not started"
        results: list[Any] = []
        connection.execute("BEGIN")
        try:
            for pending in batch:
                try:
                    connection.execute("SAVEPOINT op")
                    results.append(pending.operation(connection))
                    connection.execute("RELEASE op")
                except Exception as exc:  # one bad operation must not take the batch down with it
                    connection.execute("ROLLBACK TO op")
                    connection.execute("RELEASE op")
                    results.append(exc)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return results
