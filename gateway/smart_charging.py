"""Smart charging per connector and per charger (seed 003 §6.3): a limit the BMS or the API sets becomes a
SetChargingProfile; disabling sends ClearChargingProfile.

Connector 0 stands for the whole charger (purpose ChargePointMaxProfile by default); connectors 1..n take
TxDefaultProfile by default. When a charger rejects ChargePointMaxProfile the gateway falls back to a
TxDefaultProfile on connector 0 and, for every running transaction, a TxProfile; a rejected TxDefaultProfile on a
connector falls back to a TxProfile for its running transaction. A TxProfile waits for a transaction and is sent
when one starts. The limit is rounded to the 0.1 the 1.6 schema allows, in the unit the charger's
`ChargingScheduleAllowedChargingRateUnit` allows. Settings are kept in the database and sent again after a
charger boots.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from gateway.commands import CommandResult, CommandService, Outcome
from gateway.configuration import Configuration
from gateway.sources import LIMIT_UNITS, PROFILE_KINDS, PROFILE_PURPOSES, resolve, with_limit_unit
from gateway.state import iso, utcnow
from gateway.store import load_rows
from points import Point, Value, WriteResult

if TYPE_CHECKING:
    from gateway.central import CentralSystem

LOG = logging.getLogger(__name__)

CHARGE_POINT_MAX = "ChargePointMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"
# No charger takes more: 10 MW, or as many amperes (a schedule's limit is a decimal OCPP sends with one digit).
MAX_LIMIT = 10_000_000
# Profile ids of the TxProfiles sent for running transactions when connector 0's profile falls back.
FALLBACK_ID_OFFSET = 1000


@dataclass(frozen=True)
class SmartCharging:
    """One connector's smart-charging settings and the outcome of the last attempt to send them."""

    enabled: bool = False
    unit: str = "A"
    limit: float | None = None
    kind: str = "Absolute"
    purpose: str = TX_DEFAULT
    profile_id: int = 100
    stack_level: int = 0
    send_status: str | None = None
    sent_purpose: str | None = None  # the purpose the charger took (differs from `purpose` after a fallback)

    @staticmethod
    def default(connector_id: int) -> SmartCharging:
        purpose = CHARGE_POINT_MAX if connector_id == 0 else TX_DEFAULT
        return SmartCharging(purpose=purpose, profile_id=100 + connector_id)

    def check(self, connector_id: int) -> str | None:
        """Why these settings cannot be sent as they are, or None."""
        if self.unit not in LIMIT_UNITS:
            return f"unit must be one of {', '.join(LIMIT_UNITS)}"
        if self.kind not in PROFILE_KINDS:
            return f"profile kind must be one of {', '.join(PROFILE_KINDS)}"
        if self.purpose not in PROFILE_PURPOSES:
            return f"purpose must be one of {', '.join(PROFILE_PURPOSES)}"
        if self.purpose == CHARGE_POINT_MAX and connector_id != 0:
            return "ChargePointMaxProfile applies to connector 0 (the whole charger) only"
        if self.limit is not None and not 0 <= self.limit <= MAX_LIMIT:
            return f"the limit must be 0 to {MAX_LIMIT:,} (A or W)"
        if self.profile_id < 1 or self.stack_level < 0:
            return "the profile id must be 1 or more and the stack level 0 or more"
        return None


_SETTING_FIELDS = ("enabled", "unit", "limit", "kind", "purpose", "profile_id", "stack_level")


@dataclass(frozen=True)
class _Step:
    connector_id: int
    purpose: str
    profile_id: int
    transaction_id: int | None = None


class SmartChargingService:
    """Every connector's smart-charging settings, and the calls that put them into effect."""

    def __init__(
        self, central: CentralSystem, commands: CommandService, configuration: Configuration
    ) -> None:
        self.central = central
        self.commands = commands
        self.configuration = configuration
        self.settings: dict[tuple[str, int], SmartCharging] = {}

    async def load(self) -> None:
        rows = await self.central.store.fetch_all("SELECT * FROM smart_charging")
        load_rows("smart_charging", rows, self._load_row)

    def _load_row(self, row: dict[str, Any]) -> None:
        stored = json.loads(row["settings"])
        known = {f.name: f.type for f in fields(SmartCharging)}
        settings = SmartCharging(**{k: v for k, v in stored.items() if k in known})
        connector_id = row["connector_id"]
        problem = (
            settings.check(connector_id)
            if isinstance(connector_id, int) and connector_id >= 0
            else "connector"
        )
        if problem or not _typed(settings):
            raise ValueError(problem or f"settings of the wrong type: {stored}")
        self.settings[(row["charger_id"], connector_id)] = settings
        self._show(row["charger_id"], connector_id, settings)

    def get(self, charger_id: str, connector_id: int) -> SmartCharging:
        return self.settings.get((charger_id, connector_id)) or SmartCharging.default(connector_id)

    # -- changes ---------------------------------------------------------------------------------------------

    async def update(
        self, charger_id: str, connector_id: int, changes: dict[str, Any], *, source: str
    ) -> SmartCharging:
        """Change settings; while enabled, a change sends the profile again, and disabling clears it. Raises
        ValueError for settings that cannot be sent (nothing is changed then)."""
        old = self.get(charger_id, connector_id)
        new = replace(old, **{k: v for k, v in changes.items() if k in _SETTING_FIELDS})
        if new.limit is not None:
            new = replace(new, limit=round(new.limit, 1))
        problem = new.check(connector_id) or self._unit_problem(charger_id, new.unit)
        if problem:
            raise ValueError(problem)
        changed = any(getattr(old, name) != getattr(new, name) for name in _SETTING_FIELDS)
        self._keep(charger_id, connector_id, new)
        if new.enabled and (changed or old.send_status is None or not old.send_status.startswith("Accepted")):
            new = await self.apply(charger_id, connector_id, source=source)
        elif old.enabled and not new.enabled:
            new = await self._clear(charger_id, connector_id, old, source)
        return new

    def _unit_problem(self, charger_id: str, unit: str) -> str | None:
        allowed = self.configuration.rate_units(charger_id)
        if allowed and unit not in allowed:
            return f"{charger_id} allows only {', '.join(sorted(allowed))} in charging schedules"
        return None

    async def write_limit(self, point: Point, value: Value, source: str) -> WriteResult:
        """Writer of the `<connector>/limit` points."""
        return await self._write(point, {"limit": value}, source)

    async def write_enabled(self, point: Point, value: Value, source: str) -> WriteResult:
        """Writer of the `<connector>/smart_charging` points."""
        return await self._write(point, {"enabled": bool(value)}, source)

    async def _write(self, point: Point, changes: dict[str, Any], source: str) -> WriteResult:
        charger_id, connector_id = _owner(point.id)
        try:
            settings = await self.update(charger_id, connector_id, changes, source=source)
        except ValueError as exc:
            return WriteResult(False, "refused", str(exc))
        status = settings.send_status or "stored"
        if not settings.enabled:
            return WriteResult(
                True, "stored", "smart charging is disabled: the limit is sent once it is enabled"
            )
        if settings.limit is None:
            return WriteResult(True, "stored", "smart charging is enabled: a limit is sent once one is set")
        return WriteResult(status.startswith("Accepted") or status.startswith("Waiting"), status)

    # -- sending ---------------------------------------------------------------------------------------------

    async def apply(self, charger_id: str, connector_id: int, *, source: str) -> SmartCharging:
        """Send the profile (or its fallbacks) and record the outcome."""
        settings = self.get(charger_id, connector_id)
        if settings.limit is None:
            return self._keep(charger_id, connector_id, replace(settings, send_status="No limit set"))
        steps = self._steps(charger_id, connector_id, settings.purpose, settings.profile_id)
        if not steps:
            status = "Waiting for a transaction (TxProfile)"
            return self._keep(charger_id, connector_id, replace(settings, send_status=status))
        first = await self._set(charger_id, steps[0], settings, source)
        status, taken = _status(first), settings.purpose if first.accepted else None
        if first.outcome is Outcome.REJECTED and settings.purpose != TX:
            fallback = TX_DEFAULT if settings.purpose == CHARGE_POINT_MAX else TX
            steps = self._steps(charger_id, connector_id, fallback, settings.profile_id)
            if fallback == TX_DEFAULT:
                steps += self._steps(charger_id, connector_id, TX, settings.profile_id)
            results = [await self._set(charger_id, step, settings, source) for step in steps]
            taken_purposes = list(
                dict.fromkeys(s.purpose for s, r in zip(steps, results, strict=True) if r.accepted)
            )
            if taken_purposes:
                taken = "+".join(taken_purposes)
                status = f"Accepted as {taken} ({settings.purpose} rejected)"
            elif results:
                status = f"Rejected ({settings.purpose} and fallback {_status(results[0])})"
        return self._keep(charger_id, connector_id, replace(settings, send_status=status, sent_purpose=taken))

    def _steps(self, charger_id: str, connector_id: int, purpose: str, profile_id: int) -> list[_Step]:
        if purpose != TX:
            return [_Step(connector_id, purpose, profile_id)]
        charger = self.central.chargers.get(charger_id)
        running = {
            c.connector_id: c.transaction_id
            for c in (charger.connectors.values() if charger else ())
            if c.transaction_id is not None and c.connector_id != 0
        }
        if connector_id != 0:
            transaction = running.get(connector_id)
            return [] if transaction is None else [_Step(connector_id, TX, profile_id, transaction)]
        return [
            _Step(k, TX, profile_id + FALLBACK_ID_OFFSET + k, transaction)
            for k, transaction in sorted(running.items())
        ]

    async def _set(self, charger_id: str, step: _Step, settings: SmartCharging, source: str) -> CommandResult:
        profile: dict[str, Any] = {
            "charging_profile_id": step.profile_id,
            "stack_level": settings.stack_level,
            "charging_profile_purpose": step.purpose,
            "charging_profile_kind": settings.kind,
            "charging_schedule": {
                "charging_rate_unit": settings.unit,
                "charging_schedule_period": [{"start_period": 0, "limit": settings.limit}],
            },
        }
        if step.transaction_id is not None:
            profile["transaction_id"] = step.transaction_id
        if settings.kind != "Relative":
            profile["charging_schedule"]["start_schedule"] = iso(utcnow())
        if settings.kind == "Recurring":
            profile["recurrency_kind"] = "Daily"
        payload = {"connector_id": step.connector_id, "cs_charging_profiles": profile}
        return await self.commands.send(charger_id, "SetChargingProfile", payload, source=source)

    async def _clear(
        self, charger_id: str, connector_id: int, old: SmartCharging, source: str
    ) -> SmartCharging:
        ids = [old.profile_id]
        if old.sent_purpose and TX in old.sent_purpose and connector_id == 0:
            charger = self.central.chargers.get(charger_id)
            ids += [
                old.profile_id + FALLBACK_ID_OFFSET + k for k in (charger.connectors if charger else ()) if k
            ]
        results = [
            await self.commands.send(charger_id, "ClearChargingProfile", {"id": profile_id}, source=source)
            for profile_id in ids
        ]
        status = "Cleared" if results[0].accepted else f"Clear: {_status(results[0])}"
        settings = replace(self.get(charger_id, connector_id), send_status=status, sent_purpose=None)
        return self._keep(charger_id, connector_id, settings)

    # -- follow-ups ------------------------------------------------------------------------------------------

    async def after_boot(self, charger_id: str) -> None:
        """Follow the charger's allowed unit, then send every enabled profile again."""
        allowed = self.configuration.rate_units(charger_id)
        for (owner, connector_id), settings in list(self.settings.items()):
            if owner != charger_id:
                continue
            if len(allowed) == 1 and settings.unit not in allowed:
                # A limit in the old unit means nothing in the new one: it has to be set again.
                settings = replace(settings, unit=next(iter(allowed)), limit=None)
                self._keep(charger_id, connector_id, settings)
            if settings.enabled:
                await self.apply(charger_id, connector_id, source="gateway")
        if len(allowed) == 1:
            # Connectors without stored settings show the unit the charger allows.
            charger = self.central.chargers.get(charger_id)
            for connector_id in charger.connectors if charger else ():
                if (charger_id, connector_id) not in self.settings:
                    self._show(
                        charger_id,
                        connector_id,
                        replace(self.get(charger_id, connector_id), unit=next(iter(allowed))),
                    )

    async def resume(self, charger_id: str) -> None:
        """A charger back without a boot keeps the profiles it took: send what it has not taken yet (a limit
        written while it was offline, one it timed out on)."""
        for (owner, connector_id), settings in list(self.settings.items()):
            if owner != charger_id or not settings.enabled or settings.limit is None:
                continue
            status = settings.send_status or ""
            if not status.startswith(("Accepted", "Waiting")):
                await self.apply(charger_id, connector_id, source="gateway")

    async def transaction_started(self, charger_id: str, connector_id: int) -> None:
        """A TxProfile waits for its transaction: send it now."""
        for key in ((charger_id, connector_id), (charger_id, 0)):
            settings = self.settings.get(key)
            if settings is None or not settings.enabled:
                continue
            if settings.purpose == TX or (settings.sent_purpose and TX in settings.sent_purpose):
                await self.apply(key[0], key[1], source="gateway")

    # -- keeping and showing ---------------------------------------------------------------------------------

    def _keep(self, charger_id: str, connector_id: int, settings: SmartCharging) -> SmartCharging:
        self.settings[(charger_id, connector_id)] = settings
        row = (charger_id, connector_id, json.dumps(asdict(settings)))
        self.central.store.execute_nowait(
            "INSERT OR REPLACE INTO smart_charging (charger_id, connector_id, settings) VALUES (?, ?, ?)", row
        )
        self._show(charger_id, connector_id, settings)
        return settings

    def _show(self, charger_id: str, connector_id: int, settings: SmartCharging) -> None:
        points = self.central.points
        points.connector(charger_id, connector_id)
        limit = with_limit_unit(resolve(f"{connector_id}/limit"), settings.unit)
        points.redefine(charger_id, limit)
        values: dict[str, object] = {
            "limit": settings.limit,
            "smart_charging": settings.enabled,
            "limit_unit": settings.unit,
            "profile_kind": settings.kind,
            "profile_purpose": settings.purpose,
            "profile_id": settings.profile_id,
            "stack_level": settings.stack_level,
            "limit_status": settings.send_status or "",
        }
        for name, value in values.items():
            points.set(charger_id, f"{connector_id}/{name}", value, origin="gateway")


def _typed(settings: SmartCharging) -> bool:
    """Settings as `SmartCharging` declares them (a row written by hand may hold a text where a number goes)."""
    numbers_ok = settings.limit is None or (
        isinstance(settings.limit, int | float) and not isinstance(settings.limit, bool)
    )
    return (
        isinstance(settings.enabled, bool)
        and numbers_ok
        and all(
            isinstance(value, int) and not isinstance(value, bool)
            for value in (settings.profile_id, settings.stack_level)
        )
        and all(
            value is None or isinstance(value, str) for value in (settings.send_status, settings.sent_purpose)
        )
    )


def _status(result: CommandResult) -> str:
    if result.status:
        return result.status
    return result.outcome.value.capitalize() if result.outcome is not Outcome.ACCEPTED else "Accepted"


def _owner(point_id: str) -> tuple[str, int]:
    """`CP1/2/limit` -> ("CP1", 2); charger ids may not contain '/' (they are one URL path segment)."""
    charger_id, connector, _ = point_id.rsplit("/", 2)
    return charger_id, int(connector)
