"""Charger configuration keys (seed 003 §7, appendix 3): read with GetConfiguration, written with
ChangeConfiguration, kept with their read-only flags and the outcome of the last write, and shown as points.

A full read asks for every key; keys the mapping needs that the answer left out are asked for by name, never
more at once than the charger's `GetConfigurationMaxKeys`. Until the charger has said, all of them go in one call;
if it answers that with a CALLERROR (its limit is smaller), the keys are asked for again in halves.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.commands import CommandResult, CommandService, Outcome
from gateway.sources import LIST_KEYS, SourceProblem, config_kind, resolve
from gateway.state import iso, parse_time
from gateway.store import load_rows
from points import Kind, Point, Value, WriteResult

if TYPE_CHECKING:
    from gateway.central import CentralSystem

LOG = logging.getLogger(__name__)
_RATE_UNIT_KEYS = ("ChargingScheduleAllowedChargingRateUnit", "ChargeScheduleAllowedChargingRateUnit")
_WRITTEN = frozenset({"Accepted", "RebootRequired"})


@dataclass
class ConfigEntry:
    """One configuration key as the charger last reported it."""

    key: str
    value: str | None
    readonly: bool
    read_at: datetime | None = None
    write_status: str | None = None
    write_time: datetime | None = None

    @property
    def type(self) -> str:
        """number, boolean, list or string."""
        if self.key in LIST_KEYS or (self.value is not None and "," in self.value):
            return "list"
        kind = config_kind(self.key, self.value)
        return {Kind.ANALOG: "number", Kind.BINARY: "boolean"}.get(kind, "string")


class Configuration:
    """Every charger's configuration keys."""

    def __init__(self, central: CentralSystem, commands: CommandService) -> None:
        self.central = central
        self.commands = commands
        self.keys: dict[str, dict[str, ConfigEntry]] = {}

    async def load(self) -> None:
        rows = await self.central.store.fetch_all("SELECT * FROM configuration")
        load_rows("configuration", rows, self._load_row)

    def _load_row(self, row: dict[str, Any]) -> None:
        charger_id, key = row["charger_id"], row["key"]
        if not isinstance(charger_id, str) or not isinstance(key, str) or not key:
            raise ValueError("a configuration key belongs to a charger and has a name")
        entry = ConfigEntry(
            key,
            None if row["value"] is None else str(row["value"]),
            bool(row["readonly"]),
            parse_time(row["read_at"]),
            row["write_status"],
            parse_time(row["write_time"]),
        )
        self.keys.setdefault(charger_id, {})[key] = entry
        self._show(charger_id, entry)

    def _show(self, charger_id: str, entry: ConfigEntry) -> None:
        """The key's point; a key whose name no point id can hold (a vendor's key with '/' or a space) is kept and
        shown in the API without one."""
        try:
            resolve(f"config/{entry.key}")
        except SourceProblem:
            LOG.info(
                "%s: configuration key %r has no point (its name does not fit a point id)",
                charger_id,
                entry.key,
            )
            return
        self.central.points.configuration(charger_id, entry.key, entry.value, entry.readonly)

    def value(self, charger_id: str, key: str) -> str | None:
        entry = self.keys.get(charger_id, {}).get(key)
        return entry.value if entry else None

    def max_keys(self, charger_id: str) -> int | None:
        """How many keys one GetConfiguration may name; None until the charger has said."""
        try:
            limit = int(self.value(charger_id, "GetConfigurationMaxKeys") or 0)
        except ValueError:
            return None
        return limit if limit > 0 else None

    def number_of_connectors(self, charger_id: str) -> int | None:
        """The charger's NumberOfConnectors, when it reported a usable one."""
        text = self.value(charger_id, "NumberOfConnectors") or ""
        return int(text) if text.strip().isdigit() and 0 < int(text) <= 1000 else None

    def rate_units(self, charger_id: str) -> set[str]:
        """The schedule units the charger allows (A, W); empty when it has not said."""
        text = next((v for k in _RATE_UNIT_KEYS if (v := self.value(charger_id, k))), "")
        names = {part.strip().lower() for part in text.split(",")}
        return {unit for name, unit in (("current", "A"), ("power", "W")) if name in names}

    # -- reading ---------------------------------------------------------------------------------------------

    async def read(self, charger_id: str, keys: list[str] | None = None, *, source: str) -> CommandResult:
        """Read `keys` (all keys when None). Keys the mapping binds that a full read left out are asked for by
        name afterwards. Returns one result whose answer holds every key read and every unknown key. An empty
        list reads all keys, as in OCPP 1.6 §5.8."""
        if not keys:
            result = await self.commands.send(charger_id, "GetConfiguration", {}, source=source)
            if not result.accepted:
                return result
            self._store(charger_id, result)
            missing = [
                key for key in self._mapped_keys(charger_id) if key not in self.keys.get(charger_id, {})
            ]
            if not missing:
                return result
            more = await self._read_named(charger_id, missing, source)
            return _merged(result, [result, more]) if more.accepted else result
        return await self._read_named(charger_id, keys, source)

    async def _read_named(self, charger_id: str, keys: list[str], source: str) -> CommandResult:
        limit = self.max_keys(charger_id)
        size = limit or max(len(keys), 1)
        batches = [keys[start : start + size] for start in range(0, len(keys), size)]
        results: list[CommandResult] = []
        while batches:
            batch = batches.pop(0)
            result = await self.commands.send(charger_id, "GetConfiguration", {"key": batch}, source=source)
            if not result.accepted:
                if limit is None and len(batch) > 1 and result.outcome is Outcome.FAILED:
                    # Its limit (which it has not told) is smaller: try again in halves.
                    half = len(batch) // 2
                    batches[:0] = [batch[:half], batch[half:]]
                    continue
                return result
            self._store(charger_id, result)
            results.append(result)
        return _merged(results[0], results, {"key": keys})

    def _mapped_keys(self, charger_id: str) -> list[str]:
        template = self.central.mapping.template_for(charger_id)
        keys = []
        for point in template.points if template else ():
            key = resolve(point.source).config_key
            if key:
                keys.append(key)
        return keys

    def _store(self, charger_id: str, result: CommandResult) -> None:
        answer = result.response or {}
        now = result.finished_at
        entries = self.keys.setdefault(charger_id, {})
        rows = []
        for item in answer.get("configurationKey", []):
            old = entries.get(item["key"])
            entry = ConfigEntry(item["key"], item.get("value"), bool(item.get("readonly")), now)
            if old is not None:
                entry = replace(entry, write_status=old.write_status, write_time=old.write_time)
            entries[entry.key] = entry
            rows.append(_row(charger_id, entry))
            self._show(charger_id, entry)
        if rows:
            self.central.store.write_nowait(lambda c: _save(c, rows))

    # -- writing ---------------------------------------------------------------------------------------------

    async def change(self, charger_id: str, key: str, value: str, *, source: str) -> CommandResult:
        """ChangeConfiguration; the outcome (Accepted, Rejected, RebootRequired, NotSupported) is kept with the
        key, and the new value once the charger took it."""
        result = await self.commands.send(
            charger_id, "ChangeConfiguration", {"key": key, "value": value}, source=source
        )
        entries = self.keys.setdefault(charger_id, {})
        entry = entries.get(key) or ConfigEntry(key, None, False)
        status = result.status or result.outcome.value
        entry = replace(entry, write_status=status, write_time=result.finished_at)
        if result.status in _WRITTEN:
            entry = replace(entry, value=value)
        entries[key] = entry
        self.central.store.write_nowait(lambda c: _save(c, [_row(charger_id, entry)]))
        if result.status in _WRITTEN:
            self._show(charger_id, entry)
        return result

    async def write_point(self, point: Point, value: Value, source: str) -> WriteResult:
        """The writer of every writable configuration point."""
        charger_id, _, key = point.id.partition("/config/")
        result = await self.change(charger_id, key, _config_text(value), source=source)
        return WriteResult(result.status in _WRITTEN, result.status or result.outcome.value, result.detail)


def _config_text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _merged(
    first: CommandResult, results: list[CommandResult], request: dict[str, Any] | None = None
) -> CommandResult:
    keys = [item for r in results for item in (r.response or {}).get("configurationKey", [])]
    unknown = [key for r in results for key in (r.response or {}).get("unknownKey", [])]
    response: dict[str, Any] = {"configurationKey": keys}
    if unknown:
        response["unknownKey"] = unknown
    return replace(
        first, request=request or first.request, response=response, finished_at=results[-1].finished_at
    )


def _row(charger_id: str, entry: ConfigEntry) -> tuple[Any, ...]:
    return (
        charger_id,
        entry.key,
        entry.value,
        int(entry.readonly),
        iso(entry.read_at),
        entry.write_status,
        iso(entry.write_time),
    )


def _save(c: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    c.executemany(
        "INSERT OR REPLACE INTO configuration (charger_id, key, value, readonly, read_at, write_status, write_time) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
