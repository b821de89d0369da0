"""The simulated charger's pure part: what current flows, how the meter moves, and which charging profile is in
force. No sockets and no clock of its own (callers pass the time), so it is tested directly.

**Current.** A connector delivers the least of: the limit in force (charging profiles, connector 0's
ChargePointMaxProfile shared among the connectors drawing), a cap from the charger's configuration (amina's rotary
switch, AC SMART's ConnectorMaximumCurrent), the connector's rating and what the car takes. AC power is current x
230 V x phases; an AC limit below 6 A (IEC 61851's minimum) pauses charging, as 0 does: SuspendedEVSE. A DC
charger works in amperes or watts at the car's battery voltage, which rises with its state of charge; the car
takes less above 80 % and nothing at 100 % (SuspendedEV).

**Meter.** The energy register (Wh) only grows: power x time, across sessions and reconnections.

**Charging profiles** (OCPP 1.6 §3.13): per connector, a TxProfile of the running transaction wins over a
TxDefaultProfile for the connector, which wins over one for connector 0; within a purpose the highest stack level
in force wins; a ChargePointMaxProfile (connector 0) caps the whole charger. Absolute, Relative and Recurring
schedules, validFrom/validTo and durations are honoured; numberPhases is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.simulator.profiles import ChargerProfile

MIN_AC_CURRENT = 6.0  # A: below this an AC car cannot charge (IEC 61851-1)
CHARGE_POINT_MAX = "ChargePointMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"


# -- current, power and energy ---------------------------------------------------------------------------------


@dataclass
class Car:
    """The car plugged into a connector: what it takes, and its battery (DC chargers report its state of charge)."""

    max_current: float = 32.0  # A per phase (AC) or A (DC)
    max_power: float = 150_000.0  # W (DC)
    battery_wh: float = 60_000.0
    soc: float = 30.0  # %


@dataclass(frozen=True)
class OperatingPoint:
    """What flows now. `status` is the connector status it means during a transaction."""

    current: float  # A (per phase for AC)
    voltage: float  # V
    power: float  # W
    status: str  # Charging, SuspendedEVSE or SuspendedEV


def dc_voltage(soc: float) -> float:
    """A 400 V-class battery: 350 V empty, 410 V full."""
    return 350.0 + 0.6 * max(0.0, min(100.0, soc))


def car_power(car: Car) -> float:
    """What a DC car accepts at its state of charge: full power up to 80 %, then down to nothing at 100 %."""
    if car.soc >= 100.0:
        return 0.0
    if car.soc <= 80.0:
        return car.max_power
    return car.max_power * (100.0 - car.soc) / 20.0


def to_amps(value: float, unit: str, profile: ChargerProfile, voltage: float) -> float:
    """A limit in A or W as amperes (per phase for AC)."""
    if unit == "A":
        return value
    if profile.dc:
        return value / voltage
    return value / (profile.voltage * profile.phases)


def from_amps(current: float, unit: str, profile: ChargerProfile, voltage: float) -> float:
    """Amperes as a limit in `unit`."""
    if unit == "A":
        return current
    if profile.dc:
        return current * voltage
    return current * profile.voltage * profile.phases


def operating_point(
    profile: ChargerProfile, car: Car, limit: float | None = None, cap: float | None = None
) -> OperatingPoint:
    """The current, voltage and power of a connector charging `car` under `limit` (A, from the charging profiles)
    and `cap` (A, from the configuration)."""
    evse = profile.max_current
    for bound in (limit, cap):
        if bound is not None:
            evse = min(evse, bound)
    if profile.dc:
        voltage = dc_voltage(car.soc)
        evse = min(evse, profile.max_power / voltage)
        if evse <= 0:
            return OperatingPoint(0.0, voltage, 0.0, "SuspendedEVSE")
        current = min(evse, car.max_current, car_power(car) / voltage)
        if current <= 0:
            return OperatingPoint(0.0, voltage, 0.0, "SuspendedEV")
        return OperatingPoint(current, voltage, current * voltage, "Charging")
    voltage = profile.voltage
    evse = min(evse, profile.max_power / (voltage * profile.phases))
    if evse < MIN_AC_CURRENT:
        return OperatingPoint(0.0, voltage, 0.0, "SuspendedEVSE")
    current = min(evse, car.max_current)
    if current <= 0:
        return OperatingPoint(0.0, voltage, 0.0, "SuspendedEV")
    return OperatingPoint(current, voltage, current * voltage * profile.phases, "Charging")


def energy_after(energy_wh: float, power_w: float, seconds: float) -> float:
    """The register after `seconds` at `power_w`: it never goes down."""
    return energy_wh + max(0.0, power_w) * max(0.0, seconds) / 3600.0


def charge_car(car: Car, energy_wh: float) -> None:
    """Raise the car's state of charge by the energy it took."""
    car.soc = min(100.0, car.soc + 100.0 * energy_wh / car.battery_wh)


@dataclass
class Meter:
    """A connector's energy register and the operating point it integrates, with the time of its last update
    (any monotonic clock, in seconds)."""

    energy_wh: float
    point: OperatingPoint = OperatingPoint(0.0, 0.0, 0.0, "SuspendedEV")
    updated: float = 0.0

    def advance(self, now: float, car: Car | None = None) -> float:
        """Integrate up to `now` at the present operating point; returns the Wh added."""
        before = self.energy_wh
        self.energy_wh = energy_after(self.energy_wh, self.point.power, now - self.updated)
        self.updated = max(self.updated, now)
        added = self.energy_wh - before
        if car is not None and added > 0:
            charge_car(car, added)
        return added


# -- charging profiles -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledProfile:
    """A charging profile the charger holds (the 1.6 ChargingProfile, snake_case as the `ocpp` package gives it)."""

    connector_id: int
    profile_id: int
    stack_level: int
    purpose: str
    kind: str
    unit: str
    periods: tuple[tuple[float, float], ...]  # (startPeriod s, limit)
    received_at: datetime
    transaction_id: int | None = None
    recurrency: str | None = None
    start_schedule: datetime | None = None
    duration: float | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    @staticmethod
    def from_ocpp(connector_id: int, data: dict[str, Any], received_at: datetime) -> InstalledProfile:
        schedule = data["charging_schedule"]
        periods = tuple(
            sorted(
                (float(p["start_period"]), float(p["limit"])) for p in schedule["charging_schedule_period"]
            )
        )
        return InstalledProfile(
            connector_id=connector_id,
            profile_id=int(data["charging_profile_id"]),
            stack_level=int(data["stack_level"]),
            purpose=data["charging_profile_purpose"],
            kind=data["charging_profile_kind"],
            unit=schedule["charging_rate_unit"],
            periods=periods,
            received_at=received_at,
            transaction_id=data.get("transaction_id"),
            recurrency=data.get("recurrency_kind"),
            start_schedule=parse_time(schedule.get("start_schedule")),
            duration=schedule.get("duration"),
            valid_from=parse_time(data.get("valid_from")),
            valid_to=parse_time(data.get("valid_to")),
        )

    def start(self, transaction_start: datetime | None, now: datetime) -> datetime:
        """When the schedule's period 0 begins (for a Recurring one: the latest recurrence before `now`)."""
        if self.kind == "Relative":
            return transaction_start or now
        start = self.start_schedule or (transaction_start if self.purpose == TX else None) or self.received_at
        if self.kind == "Recurring":
            every = timedelta(days=7 if self.recurrency == "Weekly" else 1)
            if now >= start:
                start += every * ((now - start) // every)
        return start

    def limit_at(self, now: datetime, transaction_start: datetime | None = None) -> float | None:
        """The limit of the period in force at `now`, in this profile's unit, or None if none is."""
        if (self.valid_from and now < self.valid_from) or (self.valid_to and now >= self.valid_to):
            return None
        elapsed = (now - self.start(transaction_start, now)).total_seconds()
        if elapsed < 0 or (self.duration is not None and elapsed >= self.duration):
            return None
        limit = None
        for start, value in self.periods:
            if start <= elapsed:
                limit = value
        return limit

    def boundaries(
        self, begin: datetime, end: datetime, transaction_start: datetime | None
    ) -> list[datetime]:
        """The moments in [begin, end) where this profile's limit may change."""
        moments = []
        for anchor in (self.start(transaction_start, begin), self.start(transaction_start, end)):
            for offset, _ in self.periods:
                moments.append(anchor + timedelta(seconds=offset))
            if self.duration is not None:
                moments.append(anchor + timedelta(seconds=self.duration))
        moments += [m for m in (self.valid_from, self.valid_to) if m is not None]
        return [m for m in moments if begin <= m < end]


@dataclass(frozen=True)
class ProfileRules:
    """What the charger accepts: its connectors, the units and sizes its configuration announces."""

    connectors: int
    units: frozenset[str] = frozenset({"A", "W"})
    max_stack_level: int = 8
    max_periods: int = 24
    max_installed: int = 16


@dataclass
class ProfileStack:
    """The charging profiles a charger holds."""

    profiles: list[InstalledProfile] = field(default_factory=list)

    def install(self, profile: InstalledProfile, rules: ProfileRules, transactions: dict[int, int]) -> str:
        """SetChargingProfile: Accepted or Rejected. `transactions` maps connectors to their running
        transaction. A profile replaces one with the same id, or with the same connector, purpose and stack
        level."""
        connector = profile.connector_id
        if not 0 <= connector <= rules.connectors:
            return "Rejected"
        if (profile.purpose == CHARGE_POINT_MAX and connector != 0) or (
            profile.purpose == TX and connector == 0
        ):
            return "Rejected"  # ChargePointMaxProfile only on connector 0, TxProfile never on it
        if profile.unit not in rules.units or not profile.periods or profile.periods[0][0] != 0:
            return "Rejected"
        if profile.stack_level > rules.max_stack_level or len(profile.periods) > rules.max_periods:
            return "Rejected"
        if profile.purpose == TX:
            running = transactions.get(connector)
            if running is None or profile.transaction_id not in (None, running):
                return "Rejected"
            profile = replace(profile, transaction_id=running)
        kept = [
            p
            for p in self.profiles
            if p.profile_id != profile.profile_id
            and (p.connector_id, p.purpose, p.stack_level)
            != (connector, profile.purpose, profile.stack_level)
        ]
        if len(kept) >= rules.max_installed:
            return "Rejected"
        self.profiles = [*kept, profile]
        return "Accepted"

    def clear(
        self,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> str:
        """ClearChargingProfile: Accepted if a profile went, else Unknown. An id selects by id alone."""

        def matches(p: InstalledProfile) -> bool:
            if profile_id is not None:
                return p.profile_id == profile_id
            return (
                (connector_id is None or p.connector_id == connector_id)
                and (purpose is None or p.purpose == purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        kept = [p for p in self.profiles if not matches(p)]
        removed = len(kept) != len(self.profiles)
        self.profiles = kept
        return "Accepted" if removed else "Unknown"

    def transaction_ended(self, transaction_id: int) -> None:
        """A TxProfile lives as long as its transaction."""
        self.profiles = [
            p for p in self.profiles if not (p.purpose == TX and p.transaction_id == transaction_id)
        ]

    def _best(
        self,
        purpose: str,
        connector_id: int,
        now: datetime,
        transaction_id: int | None,
        transaction_start: datetime | None,
        convert: Converter,
    ) -> float | None:
        candidates = [
            p
            for p in self.profiles
            if p.purpose == purpose
            and p.connector_id == connector_id
            and (purpose != TX or p.transaction_id == transaction_id)
        ]
        for p in sorted(candidates, key=lambda p: -p.stack_level):
            value = p.limit_at(now, transaction_start)
            if value is not None:
                return convert(value, p.unit)
        return None

    def charger_limit(self, now: datetime, convert: Converter) -> float | None:
        """The ChargePointMaxProfile limit in force for the whole charger (A), or None."""
        return self._best(CHARGE_POINT_MAX, 0, now, None, None, convert)

    def connector_limit(
        self,
        connector_id: int,
        now: datetime,
        convert: Converter,
        transaction_id: int | None = None,
        transaction_start: datetime | None = None,
        sharing: int = 1,
    ) -> float | None:
        """The limit in force for a connector (A), or None: its transaction's TxProfile, else its own
        TxDefaultProfile, else connector 0's; capped by the charger's ChargePointMaxProfile divided among the
        `sharing` connectors drawing current."""
        limit = None
        if transaction_id is not None:
            limit = self._best(TX, connector_id, now, transaction_id, transaction_start, convert)
        if limit is None:
            limit = self._best(TX_DEFAULT, connector_id, now, transaction_id, transaction_start, convert)
        if limit is None:
            limit = self._best(TX_DEFAULT, 0, now, transaction_id, transaction_start, convert)
        charger = self.charger_limit(now, convert)
        if charger is not None:
            share = charger / max(1, sharing)
            limit = share if limit is None else min(limit, share)
        return limit

    def composite(
        self,
        connector_id: int,
        begin: datetime,
        duration: int,
        convert: Converter,
        transaction_id: int | None = None,
        transaction_start: datetime | None = None,
        default: float | None = None,
    ) -> list[tuple[int, float]]:
        """GetCompositeSchedule: (startPeriod, limit in A) from `begin` for `duration` seconds; where no profile
        is in force the limit is `default` (the rating), or the period is left out when that is None."""
        end = begin + timedelta(seconds=duration)
        moments = {begin}
        for p in self.profiles:
            moments.update(p.boundaries(begin, end, transaction_start))
        periods: list[tuple[int, float]] = []
        for moment in sorted(moments):
            if connector_id == 0:
                value = self.charger_limit(moment, convert)
            else:
                value = self.connector_limit(connector_id, moment, convert, transaction_id, transaction_start)
            if value is None:
                value = default
            if value is None or (periods and periods[-1][1] == value):
                continue
            periods.append((int((moment - begin).total_seconds()), value))
        return periods


class Converter:
    """Turns a profile's limit (value, unit) into amperes; a callable object so the stack stays pure."""

    def __init__(self, profile: ChargerProfile, voltage: float) -> None:
        self.profile = profile
        self.voltage = voltage

    def __call__(self, value: float, unit: str) -> float:
        return to_amps(value, unit, self.profile, self.voltage)


# -- the local authorization list ------------------------------------------------------------------------------


@dataclass
class LocalList:
    """The local authorization list and its version (OCPP 1.6 §5.15)."""

    version: int = 0
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def update(self, version: int, update_type: str, items: list[dict[str, Any]], max_length: int) -> str:
        """SendLocalList: Accepted, Failed (too long) or VersionMismatch (a differential update whose version is
        not greater than the list's, OCPP 1.6 §5.15). An entry without idTagInfo is removed by a differential
        update."""
        if update_type == "Differential" and version <= self.version:
            return "VersionMismatch"
        entries = {} if update_type == "Full" else dict(self.entries)
        for item in items:
            info = item.get("id_tag_info")
            if info is None:
                entries.pop(item["id_tag"], None)
            else:
                entries[item["id_tag"]] = info
        if len(entries) > max_length:
            return "Failed"
        self.version, self.entries = version, entries
        return "Accepted"


def parse_time(text: str | None) -> datetime | None:
    """An OCPP date-time (ISO 8601, `Z` or an offset) as an aware datetime."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """An aware datetime as OCPP writes it: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
