"""Charger and connector state as the gateway keeps it, whatever OCPP version the charger speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.settings import RegistrationStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """UTC ISO-8601 with milliseconds and a Z, the form OCPP uses and the database sorts by."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    """Parse an OCPP dateTime; a time without zone is taken as UTC."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class BootInfo:
    """What a charger told about itself in its BootNotification."""

    vendor: str
    model: str
    charge_point_serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None


@dataclass(frozen=True)
class SampledValue:
    """One sampled value of a meter reading, with the OCPP defaults filled in."""

    timestamp: datetime
    value: str
    measurand: str = "Energy.Active.Import.Register"
    phase: str | None = None
    unit: str | None = "Wh"
    context: str | None = "Sample.Periodic"
    location: str | None = "Outlet"
    format: str | None = "Raw"

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        """What distinguishes one series from another on a connector."""
        return (self.measurand, self.phase, self.location)


@dataclass(frozen=True)
class StatusReport:
    """A connector's status as its charger reports it; `timestamp` is when the charger says it began."""

    status: str
    error_code: str
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    timestamp: datetime | None = None


@dataclass
class ConnectorState:
    """One connector; connector 0 is the charge point as a whole."""

    connector_id: int
    report: StatusReport | None = None
    # The charger's own time of the status shown, when it gave one: an older report does not replace it.
    status_clock: datetime | None = None
    updated_at: datetime | None = None
    transaction_id: int | None = None
    meter: dict[tuple[str, str | None, str | None], SampledValue] = field(default_factory=dict)


@dataclass
class ChargerState:
    """One charger the gateway has seen: its boot data, liveness and connectors."""

    id: str
    first_seen: datetime
    last_seen: datetime
    boot: BootInfo | None = None
    protocol: str | None = None
    last_boot: datetime | None = None
    registration_status: RegistrationStatus | None = None
    online: bool = False
    connected: bool = False
    connected_since: datetime | None = None
    diagnostics_status: str | None = None
    diagnostics_status_time: datetime | None = None
    firmware_status: str | None = None
    firmware_status_time: datetime | None = None
    connectors: dict[int, ConnectorState] = field(default_factory=dict)

    def connector(self, connector_id: int) -> ConnectorState:
        """The connector with this id, created the first time it is reported."""
        state = self.connectors.get(connector_id)
        if state is None:
            state = self.connectors[connector_id] = ConnectorState(connector_id)
        return state


@dataclass
class OpenTransaction:
    """A transaction that has started and not yet stopped."""

    transaction_id: int
    charger_id: str
    connector_id: int
    id_tag: str
    meter_start_wh: int
    start_time: datetime
