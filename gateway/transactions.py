"""Transactions and meter samples as SQLite keeps them: each function runs on the store's worker thread, in the
batch that commits it, so a start, a stop or a MeterValues is checked against the stored rows and written in one
step.

The rules, for the chargers' retries and lost answers:
- a StartTransaction repeated (same charger, connector, id tag, meter and time) gets the same id, and one repeated
  after its stop does not open it again;
- a StartTransaction on a connector whose transaction is still open closes that one first (`Superseded`, its stop
  meter the last energy reading received for it);
- a StopTransaction repeated changes nothing, unless it carries a higher meter (the charger did not get the first
  answer and kept counting): then the stop meter and energy follow it;
- a StopTransaction for a transaction the gateway never started is kept once, as an orphan row;
- a meter that went backwards gives no energy (NULL) and a flag on the row, never a negative total;
- the same meter sample (charger, connector, time, series and value) is stored once.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.state import SampledValue, iso, parse_time, utcnow
from points.units import normalize, parse_number

LOG = logging.getLogger(__name__)

SUPERSEDED = "Superseded"
_ENERGY = "Energy.Active.Import.Register"


@dataclass(frozen=True)
class Superseded:
    """An open transaction that a new start on its connector closed."""

    transaction_id: int
    meter_stop_wh: int
    energy_wh: int | None
    flag: str | None


@dataclass(frozen=True)
class Started:
    """What storing a StartTransaction did."""

    transaction_id: int
    repeated: bool  # the charger's retry of a start already stored
    open: bool  # the transaction is open now (False for a retry of a start that has since stopped)
    superseded: Superseded | None = None


@dataclass(frozen=True)
class Stopped:
    """What storing a StopTransaction did."""

    transaction_id: int
    known: bool  # a transaction the gateway started (else kept as an orphan row)
    repeated: bool  # a retry of a stop already stored
    energy_wh: int | None
    minutes_charged: int | None
    updated_from: int | None = None  # a retry with a higher meter: the stop meter it replaced
    flag: str | None = None
    connector_id: int | None = None


def insert_start(c: sqlite3.Connection, row: dict[str, Any]) -> Started:
    existing = c.execute(
        "SELECT id, stop_time FROM transactions WHERE orphan_transaction_id IS NULL AND charger_id = :charger_id "
        "AND connector_id = :connector_id AND id_tag = :id_tag AND meter_start_wh = :meter_start_wh "
        "AND start_time = :start_time",
        row,
    ).fetchone()
    if existing is not None:
        return Started(int(existing["id"]), repeated=True, open=existing["stop_time"] is None)
    superseded = _close_open(c, row)
    columns = ", ".join(row)
    placeholders = ", ".join(f":{name}" for name in row)
    cursor = c.execute(f"INSERT INTO transactions ({columns}) VALUES ({placeholders})", row)
    assert cursor.lastrowid is not None
    return Started(cursor.lastrowid, repeated=False, open=True, superseded=superseded)


def _close_open(c: sqlite3.Connection, start: dict[str, Any]) -> Superseded | None:
    """Close the transaction still open on the new start's connector, with the last energy reading it got."""
    old = c.execute(
        "SELECT * FROM transactions WHERE orphan_transaction_id IS NULL AND stop_time IS NULL "
        "AND charger_id = :charger_id AND connector_id = :connector_id ORDER BY id DESC LIMIT 1",
        start,
    ).fetchone()
    if old is None:
        return None
    last = _last_energy(c, old["id"])
    meter_stop, stop_time = last if last is not None else (old["meter_start_wh"], start["start_time"])
    energy, flag = _energy(old["meter_start_wh"], meter_stop)
    note = f"closed by a new start on connector {start['connector_id']}"
    c.execute(
        "UPDATE transactions SET meter_stop_wh = ?, energy_wh = ?, stop_time = ?, minutes_charged = ?, "
        "stop_reason = ?, flag = ? WHERE id = ?",
        (
            meter_stop,
            energy,
            stop_time,
            _minutes(old["start_time"], stop_time),
            SUPERSEDED,
            f"{note}; {flag}" if flag else note,
            old["id"],
        ),
    )
    return Superseded(int(old["id"]), meter_stop, energy, flag)


def _last_energy(c: sqlite3.Connection, transaction_id: int) -> tuple[int, str] | None:
    """The last energy register reading of a transaction, in Wh, with its time."""
    rows = c.execute(
        "SELECT value, unit, timestamp FROM meter_values WHERE transaction_id = ? AND measurand = ? "
        "AND phase IS NULL AND (location IS NULL OR location = 'Outlet') ORDER BY timestamp DESC, id DESC",
        (transaction_id, _ENERGY),
    ).fetchall()
    for row in rows:
        try:
            value, _ = normalize(parse_number(row["value"]), row["unit"])
        except ValueError:
            continue
        return round(value), row["timestamp"]
    return None


def insert_stop(c: sqlite3.Connection, stop: dict[str, Any], samples: list[SampledValue]) -> Stopped:
    transaction_id: int = stop["transaction_id"]
    row = c.execute(
        "SELECT * FROM transactions WHERE id = ? AND orphan_transaction_id IS NULL AND charger_id = ?",
        (transaction_id, stop["charger_id"]),
    ).fetchone()
    if row is None:
        return _orphan(c, stop, samples)
    connector_id = row["connector_id"]
    if row["stop_time"] is not None:
        if row["meter_stop_wh"] is None or stop["meter_stop_wh"] <= row["meter_stop_wh"]:
            return Stopped(
                transaction_id,
                True,
                True,
                row["energy_wh"],
                row["minutes_charged"],
                connector_id=connector_id,
            )
        return _raise_stop(c, row, stop)
    insert_samples(c, stop["charger_id"], connector_id, transaction_id, samples)
    energy, flag = _energy(row["meter_start_wh"], stop["meter_stop_wh"])
    minutes = _minutes(row["start_time"], stop["stop_time"])
    c.execute(
        "UPDATE transactions SET meter_stop_wh = :meter_stop_wh, energy_wh = :energy, stop_time = :stop_time, "
        "minutes_charged = :minutes, stop_reason = :stop_reason, stop_id_tag = :stop_id_tag, flag = :flag "
        "WHERE id = :id",
        {**stop, "energy": energy, "minutes": minutes, "flag": flag, "id": transaction_id},
    )
    return Stopped(transaction_id, True, False, energy, minutes, flag=flag, connector_id=connector_id)


def _raise_stop(c: sqlite3.Connection, row: sqlite3.Row, stop: dict[str, Any]) -> Stopped:
    """A repeated stop with a higher meter: the charger kept counting after a stop it never saw answered."""
    energy, flag = _energy(row["meter_start_wh"], stop["meter_stop_wh"])
    stop_time = max(row["stop_time"], stop["stop_time"])
    minutes = _minutes(row["start_time"], stop_time)
    c.execute(
        "UPDATE transactions SET meter_stop_wh = ?, energy_wh = ?, stop_time = ?, minutes_charged = ?, flag = ? "
        "WHERE id = ?",
        (stop["meter_stop_wh"], energy, stop_time, minutes, flag, row["id"]),
    )
    return Stopped(
        row["id"],
        True,
        True,
        energy,
        minutes,
        updated_from=row["meter_stop_wh"],
        flag=flag,
        connector_id=row["connector_id"],
    )


def _orphan(c: sqlite3.Connection, stop: dict[str, Any], samples: list[SampledValue]) -> Stopped:
    """A stop for a transaction the gateway never started: kept once, however often the charger sends it."""
    values = {**stop, "orphan_transaction_id": stop["transaction_id"]}
    del values["transaction_id"]
    seen = c.execute(
        "SELECT id FROM transactions WHERE orphan_transaction_id = :orphan_transaction_id "
        "AND charger_id = :charger_id AND meter_stop_wh = :meter_stop_wh AND stop_time = :stop_time",
        values,
    ).fetchone()
    if seen is not None:
        return Stopped(stop["transaction_id"], False, True, None, None)
    if samples:
        insert_samples(c, stop["charger_id"], 0, None, samples)
    columns = ", ".join(values)
    placeholders = ", ".join(f":{name}" for name in values)
    c.execute(f"INSERT INTO transactions ({columns}) VALUES ({placeholders})", values)
    return Stopped(stop["transaction_id"], False, False, None, None)


def insert_samples(
    c: sqlite3.Connection,
    charger_id: str,
    connector_id: int,
    transaction_id: int | None,
    samples: Iterable[SampledValue],
    received: str | None = None,
) -> int:
    """Store meter samples, each once: a sample already stored (a resent MeterValues) is left out. Returns how
    many were new."""
    rows = [
        (
            charger_id,
            connector_id,
            transaction_id,
            iso(s.timestamp),
            s.value,
            s.measurand,
            s.phase,
            s.unit,
            s.context,
            s.location,
            s.format,
            received or iso(utcnow()),
        )
        for s in samples
    ]
    times = sorted({str(row[3]) for row in rows})
    if not times:
        return 0
    stored = {
        tuple(row)
        for row in c.execute(
            "SELECT timestamp, measurand, phase, location, value FROM meter_values WHERE charger_id = ? "
            f"AND connector_id = ? AND timestamp IN ({', '.join('?' for _ in times)})",
            (charger_id, connector_id, *times),
        )
    }
    new = [row for row in rows if (row[3], row[5], row[6], row[9], row[4]) not in stored]
    c.executemany(
        "INSERT INTO meter_values (charger_id, connector_id, transaction_id, timestamp, value, measurand, phase, "
        "unit, context, location, format, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        new,
    )
    return len(new)


def _energy(meter_start: int | None, meter_stop: int) -> tuple[int | None, str | None]:
    """The energy of a transaction, or None and a flag when the meter went backwards."""
    if meter_start is None:
        return None, None
    if meter_stop < meter_start:
        flag = f"meter went backwards: start {meter_start} Wh, stop {meter_stop} Wh"
        LOG.warning("transaction energy left out: %s", flag)
        return None, flag
    return meter_stop - meter_start, None


def _minutes(start: str | None, stop: str) -> int | None:
    started, stopped = parse_time(start), parse_time(stop)
    if started is None or stopped is None:
        return None
    return max(0, int((stopped - started).total_seconds() // 60))
