"""The OCPP side of the point database: every charger's values become points as its messages arrive.

Point ids are `<charger id>/<source>` (see `gateway.sources`): `CP1/online`, `CP1/1/status`,
`CP1/1/meter/Energy.Active.Import.Register`, `CP1/config/HeartbeatInterval`. A charger's standard points are
defined when it is first seen (or at start for chargers the mapping lists by id), meter points when a series is
first reported, configuration points when the configuration is read. The mapping's template may name and
describe them and narrow write limits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from gateway.mapping import Mapping, TemplatePoint
from gateway.sources import (
    CHARGER_FIELDS,
    CONNECTOR_FIELDS,
    MEASURANDS,
    Source,
    config_field,
    config_kind,
    meter_source,
    resolve,
)
from gateway.state import BootInfo, SampledValue, StatusReport
from points import Kind, Point, PointDatabase, PointSpec, Quality, Writer
from points.units import normalize, parse_number

LOG = logging.getLogger(__name__)

# Connector values that only make sense for a real connector, not for connector 0 (the charge point).
_TRANSACTION_FIELDS = ("transaction_active", "transaction_id", "id_tag", "session_energy")
_ENERGY_REGISTER = "Energy.Active.Import.Register"


class ChargerPoints:
    """Keeps the points of every charger current; knows OCPP meanings, not OCPP versions."""

    def __init__(self, db: PointDatabase, mapping: Mapping) -> None:
        self.db = db
        self.mapping = mapping
        self.writers: dict[str, Writer] = {}  # field name ("limit", "smart_charging", "config") -> writer
        self._known_connectors: set[tuple[str, int]] = set()
        self._known_chargers: set[str] = set()
        # What the mapping says of each charger, worked out once per mapping: charger -> canonical source -> point.
        self._mapped_points: dict[str, dict[str, TemplatePoint]] = {}
        self._online: set[str] = set()

    # -- definitions -----------------------------------------------------------------------------------------

    def apply_mapping(self, mapping: Mapping, charger_ids: Iterable[str]) -> None:
        """Use a new mapping: chargers it lists by id get their template's points now, seen ones again."""
        self.mapping = mapping
        self._mapped_points.clear()
        listed = [entry.id for entry in mapping.chargers if entry.id is not None]
        for charger_id in dict.fromkeys([*listed, *charger_ids]):
            self._known_chargers.discard(charger_id)
            self.charger(charger_id)

    def charger(self, charger_id: str) -> None:
        """Define a charger's own points and its template's (once)."""
        if charger_id in self._known_chargers:
            return
        self._known_chargers.add(charger_id)
        for name in CHARGER_FIELDS:
            self._define(charger_id, resolve(name))
        online = self.db.get(f"{charger_id}/online")
        if online is not None and online.value is None:
            # the gateway knows a charger it has not heard from is not connected
            self.db.update(online.id, False, quality=Quality.GOOD, source="gateway")
        for point in self._template_points(charger_id).values():
            source = point.resolved
            if source.connector is not None:
                self.connector(charger_id, source.connector)
            self._define(charger_id, source, point)

    def connector(self, charger_id: str, connector_id: int) -> None:
        """Define a connector's points (once), when it is first reported or mapped."""
        if (charger_id, connector_id) in self._known_connectors:
            return
        self._known_connectors.add((charger_id, connector_id))
        self.charger(charger_id)
        for name in CONNECTOR_FIELDS:
            if connector_id == 0 and name in _TRANSACTION_FIELDS:
                continue
            self._define(charger_id, resolve(f"{connector_id}/{name}"))
        active = self.db.get(f"{charger_id}/{connector_id}/transaction_active")
        if active is not None and active.value is None:
            # The gateway hands out transaction ids: until it has, it knows no transaction runs here.
            self.transaction(charger_id, connector_id, None, None, None)

    def _define(self, charger_id: str, source: Source, mapped: TemplatePoint | None = None) -> Point:
        existing = self.db.get(f"{charger_id}/{source.text}")
        if mapped is None and existing is not None:
            return existing  # keep what the mapping said of it
        spec, writer = self._spec(charger_id, source, mapped)
        return self.db.define(spec, writer)

    def _spec(
        self, charger_id: str, source: Source, mapped: TemplatePoint | None = None
    ) -> tuple[PointSpec, Writer | None]:
        """A source's point for this charger, as the mapping names it and narrows its write limits."""
        mapped = mapped or self._mapped(charger_id, source.text)
        name = f"{charger_id}/{mapped.name}" if mapped and mapped.name else None
        spec = source.point_spec(charger_id, name, mapped.description if mapped else None)
        if mapped is not None and spec.kind is Kind.ANALOG and spec.writable:
            minimum = spec.minimum if mapped.minimum is None else mapped.minimum
            maximum = spec.maximum if mapped.maximum is None else mapped.maximum
            spec = replace(spec, minimum=minimum, maximum=maximum)
        writer = (
            self.writers.get("config" if source.config_key else source.field.name) if spec.writable else None
        )
        return spec, writer

    def _mapped(self, charger_id: str, source_text: str) -> TemplatePoint | None:
        return self._template_points(charger_id).get(source_text)

    def _template_points(self, charger_id: str) -> dict[str, TemplatePoint]:
        points = self._mapped_points.get(charger_id)
        if points is None:
            template = self.mapping.template_for(charger_id)
            # Sources were validated with the mapping; `resolved` gives their canonical spelling.
            points = {p.resolved.text: p for p in template.points} if template else {}
            self._mapped_points[charger_id] = points
        return points

    def redefine(self, charger_id: str, source: Source) -> Point:
        """Define a point again after its description changed (a limit's unit, a configuration key's type)."""
        spec, writer = self._spec(charger_id, source)
        existing = self.db.get(spec.id)
        if existing is not None and existing.spec == spec:
            return existing
        return self.db.define(spec, writer)

    # -- updates ---------------------------------------------------------------------------------------------

    def set(
        self,
        charger_id: str,
        source: str,
        value: object,
        timestamp: datetime | None = None,
        *,
        origin: str = "ocpp",
    ) -> None:
        """Update one point of a charger (defined if needed)."""
        point_id = f"{charger_id}/{source}"
        point = self.db.get(point_id) or self._define(charger_id, resolve(source))
        self.db.update(
            point_id,
            value,
            timestamp=timestamp,
            quality=self._quality(charger_id, value, own=point.spec.own),
            source=origin,
        )

    def _quality(self, charger_id: str, value: object, *, own: bool = False) -> Quality:
        """A value is good while its charger is online; kept but `offline` while it is not (the gateway's own
        points stay good)."""
        if value is None:
            return Quality.UNKNOWN
        return Quality.GOOD if own or charger_id in self._online else Quality.OFFLINE

    def online(self, charger_id: str, online: bool) -> None:
        self.charger(charger_id)
        prefix = f"{charger_id}/"
        if online:
            self._online.add(charger_id)
            self.db.mark_online(prefix)
        else:
            self._online.discard(charger_id)
            self.db.mark_offline(prefix)
        self.db.update(f"{charger_id}/online", online, quality=Quality.GOOD)

    def boot(self, charger_id: str, info: BootInfo, registration: str) -> None:
        self.charger(charger_id)
        self.set(charger_id, "registration", registration)
        self.set(charger_id, "vendor", info.vendor)
        self.set(charger_id, "model", info.model)
        self.set(
            charger_id, "serial_number", info.charge_point_serial_number or info.charge_box_serial_number
        )
        self.set(charger_id, "firmware_version", info.firmware_version)

    def status(self, charger_id: str, connector_id: int, report: StatusReport) -> None:
        self.connector(charger_id, connector_id)
        moment = report.timestamp
        self.set(charger_id, f"{connector_id}/status", report.status, moment)
        self.set(charger_id, f"{connector_id}/error_code", report.error_code, moment)
        self.set(charger_id, f"{connector_id}/info", report.info or "", moment)
        self.set(charger_id, f"{connector_id}/vendor_error_code", report.vendor_error_code or "", moment)

    def meter(self, charger_id: str, connector_id: int, samples: Iterable[SampledValue]) -> dict[str, float]:
        """Update (and discover) meter points; returns the parsed values by source. A value that does not parse
        is logged and its point keeps the old value, marked stale."""
        self.connector(charger_id, connector_id)
        parsed: dict[str, float] = {}
        for sample in samples:
            if sample.measurand not in MEASURANDS:
                continue  # the schema allows only these; a vendor's own name has nowhere to go
            source = f"{connector_id}/meter/{meter_source(sample.measurand, sample.phase, sample.location)}"
            point_id = f"{charger_id}/{source}"
            try:
                value, unit = normalize(parse_number(sample.value), sample.unit)
            except ValueError:
                LOG.warning("%s: %s value %r is not a number", charger_id, source, sample.value)
                if point_id not in self.db:
                    self._define(charger_id, resolve(source))
                self.db.mark_stale(point_id)
                continue
            point = self.db.get(point_id) or self._define(charger_id, resolve(source))
            if point.spec.unit != unit and unit is not None:
                point = self.db.define(replace(point.spec, unit=unit))
            self.db.update(
                point_id, value, timestamp=sample.timestamp, quality=self._quality(charger_id, value)
            )
            parsed[source] = value
        return parsed

    def transaction(
        self,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        id_tag: str | None,
        energy_wh: float | None,
    ) -> None:
        self.connector(charger_id, connector_id)
        self.set(charger_id, f"{connector_id}/transaction_active", transaction_id is not None)
        self.set(charger_id, f"{connector_id}/transaction_id", transaction_id or 0)
        self.set(charger_id, f"{connector_id}/id_tag", id_tag or "")
        if energy_wh is not None:
            self.set(charger_id, f"{connector_id}/session_energy", energy_wh)

    def configuration(self, charger_id: str, key: str, value: str | None, readonly: bool) -> None:
        """Define (or retype) and update one configuration key's point."""
        self.charger(charger_id)
        kind = config_kind(key, value)
        source = resolve(f"config/{key}")
        source = Source(source.text, None, config_field(key, kind, not readonly), config_key=key)
        point = self.redefine(charger_id, source)
        if value is None:
            self.db.update(point.id, None, quality=Quality.UNKNOWN)
            return
        try:
            self.db.update(point.id, _config_value(kind, value), quality=self._quality(charger_id, value))
        except Exception:
            LOG.warning("%s: configuration %s=%r does not fit %s", charger_id, key, value, kind.value)
            self.db.mark_stale(point.id)


def _config_value(kind: Kind, value: str) -> object:
    if kind is Kind.BINARY:
        return value.strip().lower() == "true"
    if kind is Kind.ANALOG:
        return parse_number(value)
    return value
