"""The central system's version-neutral core: admission, authorization, charger and connector state,
transactions, meter values and the message log. OCPP version modules translate payloads into calls here."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from gateway.admission import AddedCharger, Admission, AdmissionPolicy
from gateway.authorization import AuthorizationPolicy, IdTagInfo
from gateway.charger_points import ChargerPoints
from gateway.identity import identity_problem
from gateway.mapping import DataTransferStatus, Mapping, load_mapping
from gateway.plausibility import safe_text
from gateway.settings import RegistrationStatus, Settings
from gateway.sources import CONNECTOR_STATUSES, ERROR_CODES
from gateway.state import (
    BootInfo,
    ChargerState,
    OpenTransaction,
    SampledValue,
    StatusReport,
    iso,
    parse_time,
    utcnow,
)
from gateway.store import Store, load_rows
from gateway.transactions import SUPERSEDED, Stopped, Superseded, insert_samples, insert_start, insert_stop
from points import PointDatabase

LOG = logging.getLogger(__name__)

_ENERGY = "Energy.Active.Import.Register"
# OCPP 1.6 §7.40: a StopTransaction without a reason stopped for the default reason, Local.
DEFAULT_STOP_REASON = "Local"
_BOOT_FIELDS = tuple(BootInfo.__dataclass_fields__)
_REPORT_FIELDS = tuple(StatusReport.__dataclass_fields__)


DataTransferHandler = Callable[[str, str | None, str | None], tuple[DataTransferStatus, str | None]]
"""(charge point id, messageId, data) -> (status, data): answers one vendor's DataTransfer."""


@dataclass(frozen=True)
class MeterResult:
    """What became of a MeterValues: the transaction its values were kept under, how many samples were new (a
    resent message has none), and how many were older than the values shown (stored, not shown)."""

    transaction_id: int | None
    stored: int
    older: int


@dataclass(frozen=True)
class StartResult:
    transaction_id: int
    id_tag_info: IdTagInfo
    repeated: bool
    superseded: Superseded | None = None


class CentralSystem:
    """Keeps every charger's state, decides admission and authorization, and records what happens. Every change
    reaches the point database as it happens (`points`)."""

    def __init__(
        self, settings: Settings, store: Store, mapping: Mapping, db: PointDatabase | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.points = ChargerPoints(db if db is not None else PointDatabase(), mapping)
        # Follow-ups that run once the charger has its answer (they may send commands): see `booted`.
        self.after_boot: list[Callable[[str], None]] = []
        # Follow-ups for a charger that reconnected without booting, once it shows it is up (its first message).
        self.after_resume: list[Callable[[str], None]] = []
        # Called with a new mapping before its points are defined (the BACnet device places them by it).
        self.mapping_listeners: list[Callable[[Mapping], None]] = []
        self.after_transaction_start: list[Callable[[str, int], None]] = []
        self.chargers: dict[str, ChargerState] = {}
        self.open_transactions: dict[int, OpenTransaction] = {}
        self.data_transfer_handlers: dict[str, DataTransferHandler] = {}
        # The number of connectors a charger reported (NumberOfConnectors), once its configuration is read.
        self.connector_count: Callable[[str], int | None] = lambda charger_id: None
        self._added: dict[str, AddedCharger] = {}
        self.mapping = mapping
        self.admission = self._admission_policy()
        self.authorization = AuthorizationPolicy(mapping.authorization)

    # -- start-up and configuration -------------------------------------------------------------------------

    async def load(self) -> None:
        """Bring back chargers, connectors, added chargers and open transactions from the database. A row that
        no longer fits is skipped (and logged), never a reason not to start."""
        rows = await self.store.read(_load_all)
        load_rows("chargers", rows["chargers"], self._load_charger)
        load_rows("connectors", rows["connectors"], self._load_connector)
        load_rows("transactions", rows["open_transactions"], self._load_transaction)
        load_rows("added_chargers", rows["added"], self._load_added)
        self.admission = self._admission_policy()
        self.points.apply_mapping(self.mapping, self.chargers)
        load_rows("chargers (points)", list(self.chargers.values()), self._show)
        LOG.info(
            "loaded %d chargers, %d open transactions, %d added chargers",
            len(self.chargers),
            len(self.open_transactions),
            len(self._added),
        )

    def _load_charger(self, row: sqlite3.Row) -> None:
        problem = identity_problem(row["id"])
        if problem:
            raise ValueError(problem)
        charger = ChargerState(
            id=row["id"],
            first_seen=_time(row["first_seen"]),
            last_seen=_time(row["last_seen"]),
            protocol=row["protocol"],
            last_boot=parse_time(row["last_boot"]),
            registration_status=RegistrationStatus(row["registration_status"])
            if row["registration_status"]
            else None,
            diagnostics_status=row["diagnostics_status"],
            diagnostics_status_time=parse_time(row["diagnostics_status_time"]),
            firmware_status=row["firmware_status"],
            firmware_status_time=parse_time(row["firmware_status_time"]),
        )
        if row["vendor"] is not None:
            charger.boot = BootInfo(**{name: row[name] for name in _BOOT_FIELDS})
        self.chargers[charger.id] = charger

    def _load_connector(self, row: sqlite3.Row) -> None:
        owner = self.chargers.get(row["charger_id"])
        if owner is None:
            return
        connector_id = _connector_id(row["connector_id"], lowest=0)
        report = None
        if row["status"] is not None:
            fields = {name: row[name] for name in _REPORT_FIELDS if name != "timestamp"}
            report = StatusReport(**fields, timestamp=parse_time(row["status_time"]))
            _check_report(report)
        updated_at = parse_time(row["updated_at"])
        connector = owner.connector(connector_id)
        connector.report, connector.updated_at = report, updated_at

    def _load_transaction(self, row: sqlite3.Row) -> None:
        transaction = OpenTransaction(
            transaction_id=row["id"],
            charger_id=row["charger_id"],
            connector_id=_connector_id(row["connector_id"], lowest=1),
            id_tag=str(row["id_tag"]),
            meter_start_wh=int(row["meter_start_wh"]),
            start_time=_time(row["start_time"]),
        )
        self.open_transactions[transaction.transaction_id] = transaction
        owner = self.chargers.get(transaction.charger_id)
        if owner is not None:
            owner.connector(transaction.connector_id).transaction_id = transaction.transaction_id

    def _load_added(self, row: sqlite3.Row) -> None:
        problem = identity_problem(row["id"])
        if problem:
            raise ValueError(problem)
        self._added[row["id"]] = AddedCharger(row["id"], RegistrationStatus(row["registration"]), row["name"])

    def _admission_policy(self) -> AdmissionPolicy:
        return AdmissionPolicy(
            self.mapping, self._added, self.settings.guest_response, self.settings.guest_retry_interval
        )

    def apply_mapping(self, mapping: Mapping) -> None:
        """Switch to a new mapping; every charger, connector and transaction is kept."""
        self.mapping = mapping
        self.admission = self._admission_policy()
        self.authorization = AuthorizationPolicy(mapping.authorization)
        for listener in self.mapping_listeners:
            listener(mapping)
        self.points.apply_mapping(mapping, self.chargers)

    def _show(self, charger: ChargerState) -> None:
        """Put a charger loaded from the database into the points (offline until it connects)."""
        points = self.points
        if charger.boot is not None and charger.registration_status is not None:
            points.boot(charger.id, charger.boot, charger.registration_status.value)
        for connector in charger.connectors.values():
            if connector.report is not None:
                points.status(charger.id, connector.connector_id, connector.report)
            # Each connector already knows its open transaction (load() set it): no scan of every transaction.
            transaction = self.open_transactions.get(connector.transaction_id or -1)
            if transaction is not None:
                points.transaction(
                    charger.id, connector.connector_id, transaction.transaction_id, transaction.id_tag, None
                )
        points.online(charger.id, False)

    async def reload_mapping(self) -> Mapping:
        """Re-read the mapping file; a bad file raises `SourceError` and the running mapping stays."""
        mapping = await asyncio.to_thread(load_mapping, self.settings.mapping)
        self.apply_mapping(mapping)
        self.log("-", "MappingReloaded", f"{self.settings.mapping}: {len(mapping.chargers)} charger entries")
        return mapping

    async def add_known(
        self, charger_id: str, registration: RegistrationStatus, name: str | None
    ) -> Admission:
        """Add a (discovered) charger to the known chargers; kept in the database."""
        if self.admission.in_mapping(charger_id):
            raise ValueError(f"{charger_id} is listed in the mapping file; change it there")
        added = AddedCharger(charger_id, registration, name)
        now = iso(utcnow())
        await self.store.write(
            lambda c: c.execute(
                "INSERT INTO added_chargers (id, registration, name, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET registration = excluded.registration, name = excluded.name",
                (charger_id, registration.value, name, now),
            )
        )
        self._added[charger_id] = added
        self.admission = self._admission_policy()
        self.log(charger_id, "ChargerAdded", f"registration {registration.value}")
        return self.admission.decide(charger_id)

    def added_ids(self) -> list[str]:
        return list(self._added)

    async def remove_known(self, charger_id: str) -> bool:
        if charger_id not in self._added:
            return False
        await self.store.write(lambda c: c.execute("DELETE FROM added_chargers WHERE id = ?", (charger_id,)))
        del self._added[charger_id]
        self.admission = self._admission_policy()
        self.log(charger_id, "ChargerRemoved", "removed from the known chargers")
        return True

    # -- message log -----------------------------------------------------------------------------------------

    def log(self, charger_id: str, message_type: str, summary: str) -> None:
        """Append to the general message log (seed 003 §5.2); never waits."""
        # Text from a charger is written as it can be stored and shown (a lone surrogate as its escape).
        entry = (iso(utcnow()), safe_text(charger_id), message_type, safe_text(summary[:500]))
        self.store.execute_nowait(
            "INSERT INTO message_log (timestamp, charger_id, message_type, summary) VALUES (?, ?, ?, ?)",
            entry,
        )

    # -- connection and liveness -----------------------------------------------------------------------------

    def refused(self, charger_id: str, reason: str) -> None:
        """A charger tried to connect and was refused (no OCPP version in common): it is still discovered, so
        an installer finds it in the list and the reason in its message log."""
        charger = self._charger(charger_id)
        charger.last_seen = utcnow()
        self._save_charger(charger)
        self.log(charger_id, "Refused", reason)

    def connected(self, charger_id: str, protocol: str, peer: str) -> ChargerState:
        """A charger opened a WebSocket: it is discovered (if new) and online."""
        now = utcnow()
        charger = self._charger(charger_id)
        charger.protocol = protocol
        charger.connected = True
        charger.online = True
        charger.connected_since = now
        charger.last_seen = now
        self._save_charger(charger)
        self.points.online(charger_id, True)
        self.log(charger_id, "Connected", f"{protocol} from {peer}")
        return charger

    def disconnected(self, charger_id: str, reason: str) -> None:
        charger = self.chargers.get(charger_id)
        if charger is None:
            return
        charger.connected = False
        charger.connected_since = None
        if self.settings.socket_closed_offline:
            charger.online = False
            self.points.online(charger_id, False)
        self._save_charger(charger)
        self.log(charger_id, "Disconnected", reason)

    def touch(self, charger_id: str) -> None:
        """Something arrived from the charger: it is alive."""
        charger = self.chargers.get(charger_id)
        if charger is None:
            return
        charger.last_seen = utcnow()
        if not charger.online:
            charger.online = True
            self.points.online(charger_id, True)
            self.log(charger_id, "Online", "message received")

    def check_liveness(self, now: datetime | None = None) -> list[str]:
        """Mark chargers silent for too long offline; returns their ids. Also saves every last-seen time."""
        now = now or utcnow()
        limit = timedelta(seconds=self.settings.offline_after_seconds)
        gone: list[str] = []
        for charger in self.chargers.values():
            if charger.online and now - charger.last_seen > limit:
                charger.online = False
                self.points.online(charger.id, False)
                gone.append(charger.id)
                self.log(charger.id, "Offline", f"nothing received for {limit.total_seconds():.0f} s")
        went_offline = set(gone)
        rows = [(iso(c.last_seen), c.id) for c in self.chargers.values() if c.online or c.id in went_offline]
        if rows:
            self.store.write_nowait(
                lambda c: c.executemany("UPDATE chargers SET last_seen = ? WHERE id = ?", rows)
            )
        return gone

    # -- charger-initiated messages ---------------------------------------------------------------------------

    async def boot(self, charger_id: str, info: BootInfo) -> Admission:
        admission = self.admission.decide(charger_id)
        charger = self._charger(charger_id)
        charger.boot = info
        charger.last_boot = utcnow()
        charger.registration_status = admission.status
        await self.store.write(_upsert_charger(charger))
        self.points.boot(charger_id, info, admission.status.value)
        return admission

    def booted(self, charger_id: str) -> None:
        """The charger has been told it is Accepted: commands may follow (configuration read and so on)."""
        for follow_up in self.after_boot:
            follow_up(charger_id)

    def resumed(self, charger_id: str) -> None:
        """An Accepted charger reconnected without booting and has sent its first message: what waited for it
        (a limit written while it was offline) may follow."""
        if self.admission.decide(charger_id).accepted:
            for follow_up in self.after_resume:
                follow_up(charger_id)

    def transaction_started(self, charger_id: str, connector_id: int) -> None:
        """The charger has its transaction id: a waiting TxProfile may follow."""
        for follow_up in self.after_transaction_start:
            follow_up(charger_id, connector_id)

    def highest_connector(self, charger_id: str) -> int:
        """The highest connector id this charger may report: its NumberOfConnectors, or the site's maximum."""
        count = self.connector_count(charger_id)
        return count if count is not None and count >= 1 else self.settings.max_connectors

    def heartbeat_interval_for(self, admission: Admission) -> int:
        return self.settings.heartbeat_interval if admission.accepted else admission.retry_interval

    def status_notification(self, charger_id: str, connector_id: int, report: StatusReport) -> bool:
        """Keep a connector's status; False when the report is older than the status shown (by the charger's
        clock), which then stays."""
        now = utcnow()
        connector = self._charger(charger_id).connector(connector_id)
        clock = connector.status_clock
        if report.timestamp is not None and clock is not None and report.timestamp < clock <= now:
            return False
        connector.status_clock = report.timestamp
        connector.report = report if report.timestamp else replace(report, timestamp=now)
        connector.updated_at = now
        row = {
            **asdict(connector.report),
            "timestamp": iso(connector.report.timestamp),
            "charger_id": charger_id,
            "connector_id": connector_id,
            "updated_at": iso(now),
        }
        self.points.status(charger_id, connector_id, connector.report)
        self.store.execute_nowait(
            "INSERT OR REPLACE INTO connectors (charger_id, connector_id, status, error_code, info, vendor_id, "
            "vendor_error_code, status_time, updated_at) VALUES (:charger_id, :connector_id, :status, :error_code, "
            ":info, :vendor_id, :vendor_error_code, :timestamp, :updated_at)",
            row,
        )
        return True

    async def meter_values(
        self, charger_id: str, connector_id: int, transaction_id: int | None, samples: list[SampledValue]
    ) -> MeterResult:
        """Keep a connector's meter samples. Values for a transaction that is not the connector's open one are kept
        as the connector's own; a sample older than the value shown is stored but does not replace it."""
        connector = self._charger(charger_id).connector(connector_id)
        kept_under = transaction_id
        if transaction_id is not None:
            named = self.open_transactions.get(transaction_id)
            if named is None or (named.charger_id, named.connector_id) != (charger_id, connector_id):
                kept_under = None
        now = utcnow()
        newer = [sample for sample in samples if _is_newer(connector.meter.get(sample.key), sample, now)]
        for sample in newer:
            connector.meter[sample.key] = sample
        values = self.points.meter(charger_id, connector_id, newer)
        energy = values.get(f"{connector_id}/meter/{_ENERGY}")
        open_transaction = self.open_transactions.get(connector.transaction_id or -1)
        if energy is not None and open_transaction is not None and energy >= open_transaction.meter_start_wh:
            self.points.set(
                charger_id, f"{connector_id}/session_energy", energy - open_transaction.meter_start_wh
            )
        # The BMS sees the values at once; the charger's answer waits for the commit (it may discard them then).
        stored = await self.store.write(
            lambda c: insert_samples(c, charger_id, connector_id, kept_under, samples)
        )
        return MeterResult(kept_under, stored, len(samples) - len(newer))

    def authorize(self, id_tag: str) -> IdTagInfo:
        return self.authorization.authorize(id_tag, utcnow())

    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
        reservation_id: int | None,
    ) -> StartResult:
        """Record a transaction start (a charger's retry of the same start gets the same id)."""
        info = self.authorize(id_tag)
        row = {
            "charger_id": charger_id,
            "connector_id": connector_id,
            "id_tag": id_tag,
            "id_tag_status": info.status.value,
            "reservation_id": reservation_id,
            "meter_start_wh": meter_start_wh,
            "start_time": iso(timestamp),
            "created_at": iso(utcnow()),
        }
        started = await self.store.write(lambda c: insert_start(c, row))
        if started.superseded is not None:
            self._superseded(charger_id, connector_id, started.superseded, started.transaction_id)
        if started.open:
            self.open_transactions.setdefault(
                started.transaction_id,
                OpenTransaction(
                    started.transaction_id, charger_id, connector_id, id_tag, meter_start_wh, timestamp
                ),
            )
            self._charger(charger_id).connector(connector_id).transaction_id = started.transaction_id
            if not started.repeated:
                self.points.transaction(charger_id, connector_id, started.transaction_id, id_tag, 0)
        return StartResult(started.transaction_id, info, started.repeated, started.superseded)

    def _superseded(self, charger_id: str, connector_id: int, old: Superseded, new_id: int) -> None:
        """A new start closed the transaction still open on its connector: memory follows, and the log says so."""
        self.open_transactions.pop(old.transaction_id, None)
        connector = self._charger(charger_id).connector(connector_id)
        if connector.transaction_id == old.transaction_id:
            connector.transaction_id = None
        energy = f"{old.energy_wh} Wh" if old.energy_wh is not None else f"no energy ({old.flag})"
        self.log(
            charger_id,
            "TransactionSuperseded",
            f"transaction {old.transaction_id} on connector {connector_id} was still open when transaction "
            f"{new_id} started: closed as {SUPERSEDED} at meter {old.meter_stop_wh} Wh, {energy}",
        )

    async def stop_transaction(
        self,
        charger_id: str,
        transaction_id: int,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str | None,
        id_tag: str | None,
        samples: list[SampledValue],
    ) -> Stopped:
        """Close a transaction with its totals; a stop for an unknown transaction is kept as an orphan row."""
        stop = {
            "charger_id": charger_id,
            "transaction_id": transaction_id,
            "meter_stop_wh": meter_stop_wh,
            "stop_time": iso(timestamp),
            "stop_reason": reason or DEFAULT_STOP_REASON,
            "stop_id_tag": id_tag,
            "created_at": iso(utcnow()),
        }
        result: Stopped = await self.store.write(lambda c: insert_stop(c, stop, samples))
        if result.updated_from is not None:
            LOG.info(
                "%s: transaction %s stopped again with a higher meter (%s -> %s Wh): the stop follows it",
                charger_id,
                transaction_id,
                result.updated_from,
                meter_stop_wh,
            )
        # Only this charger's own transaction closes: another charger's stop with the same id is an orphan.
        open_transaction = self.open_transactions.get(transaction_id)
        if result.known and open_transaction is not None and open_transaction.charger_id == charger_id:
            del self.open_transactions[transaction_id]
            connector = self._charger(charger_id).connectors.get(open_transaction.connector_id)
            if connector is not None and connector.transaction_id == transaction_id:
                connector.transaction_id = None
                self.points.transaction(
                    charger_id, open_transaction.connector_id, None, None, result.energy_wh
                )
        elif result.known and result.updated_from is not None and result.energy_wh is not None:
            connector_id = result.connector_id
            if (
                connector_id is not None
                and self._charger(charger_id).connector(connector_id).transaction_id is None
            ):
                self.points.set(charger_id, f"{connector_id}/session_energy", result.energy_wh)
        return result

    def data_transfer(
        self, charger_id: str, vendor_id: str, message_id: str | None, data: str | None
    ) -> tuple[DataTransferStatus, str | None]:
        configured = self.mapping.data_transfer_answer(vendor_id, message_id)
        if configured is not None:
            return configured
        handler = self.data_transfer_handlers.get(vendor_id)
        if handler is None:
            return DataTransferStatus.UNKNOWN_VENDOR_ID, None
        return handler(charger_id, message_id, data)

    def diagnostics_status(self, charger_id: str, status: str) -> None:
        charger = self._charger(charger_id)
        charger.diagnostics_status, charger.diagnostics_status_time = status, utcnow()
        self._save_charger(charger)
        self.points.set(charger_id, "diagnostics_status", status)

    def firmware_status(self, charger_id: str, status: str) -> None:
        charger = self._charger(charger_id)
        charger.firmware_status, charger.firmware_status_time = status, utcnow()
        self._save_charger(charger)
        self.points.set(charger_id, "firmware_status", status)

    # -- housekeeping ----------------------------------------------------------------------------------------

    async def prune_history(self, now: datetime | None = None) -> tuple[int, int]:
        """Drop message-log and meter rows older than their retention; returns the rows removed."""
        now = now or utcnow()
        log_limit = iso(now - timedelta(days=self.settings.message_log_retention_days))
        meter_limit = iso(now - timedelta(days=self.settings.meter_retention_days))

        def prune(c: sqlite3.Connection) -> tuple[int, int]:
            logs = c.execute("DELETE FROM message_log WHERE timestamp < ?", (log_limit,)).rowcount
            # The command history is part of the log and kept as long.
            logs += c.execute("DELETE FROM commands WHERE sent_at < ?", (log_limit,)).rowcount
            meters = c.execute("DELETE FROM meter_values WHERE received_at < ?", (meter_limit,)).rowcount
            return logs, meters

        return await self.store.write(prune)

    def _charger(self, charger_id: str) -> ChargerState:
        """The charger with this id; the first sight of an id discovers it."""
        charger = self.chargers.get(charger_id)
        if charger is None:
            now = utcnow()
            charger = self.chargers[charger_id] = ChargerState(charger_id, first_seen=now, last_seen=now)
        return charger

    def _save_charger(self, charger: ChargerState) -> None:
        self.store.write_nowait(_upsert_charger(charger))


def _time(text: str) -> datetime:
    moment = parse_time(text)
    if moment is None:
        raise ValueError("a time is missing")
    return moment


def _is_newer(current: SampledValue | None, sample: SampledValue, now: datetime) -> bool:
    """A sample replaces the value shown unless that value is newer by the charger's clock. A value stamped ahead of
    the gateway's clock does not count as newer: the charger's clock was fast and has since been set right."""
    return current is None or current.timestamp <= sample.timestamp or current.timestamp > now


def _connector_id(value: object, *, lowest: int) -> int:
    if not isinstance(value, int) or not lowest <= value <= 1000:
        raise ValueError(f"connector {value!r} is not a connector id")
    return value


def _check_report(report: StatusReport) -> None:
    if report.status not in CONNECTOR_STATUSES or report.error_code not in ERROR_CODES:
        raise ValueError(f"status {report.status!r} / error code {report.error_code!r} are not OCPP's")


def _load_all(c: sqlite3.Connection) -> dict[str, list[sqlite3.Row]]:
    return {
        "chargers": c.execute("SELECT * FROM chargers").fetchall(),
        "connectors": c.execute("SELECT * FROM connectors").fetchall(),
        "added": c.execute("SELECT * FROM added_chargers").fetchall(),
        "open_transactions": c.execute(
            "SELECT * FROM transactions WHERE orphan_transaction_id IS NULL AND stop_time IS NULL"
        ).fetchall(),
    }


def _upsert_charger(charger: ChargerState) -> Callable[[sqlite3.Connection], Any]:
    boot: dict[str, Any] = asdict(charger.boot) if charger.boot else dict.fromkeys(_BOOT_FIELDS)
    row = {
        "id": charger.id,
        **boot,
        "protocol": charger.protocol,
        "first_seen": iso(charger.first_seen),
        "last_seen": iso(charger.last_seen),
        "last_boot": iso(charger.last_boot),
        "registration_status": charger.registration_status.value if charger.registration_status else None,
        "diagnostics_status": charger.diagnostics_status,
        "diagnostics_status_time": iso(charger.diagnostics_status_time),
        "firmware_status": charger.firmware_status,
        "firmware_status_time": iso(charger.firmware_status_time),
    }
    columns = ", ".join(row)
    placeholders = ", ".join(f":{name}" for name in row)
    updates = ", ".join(f"{name} = excluded.{name}" for name in row if name not in ("id", "first_seen"))
    sql = f"INSERT INTO chargers ({columns}) VALUES ({placeholders}) ON CONFLICT (id) DO UPDATE SET {updates}"
    return lambda c: c.execute(sql, row)
