"""Admission: what a charger is told at BootNotification, from the mapping, the API-added chargers and the
guest policy (seed 003 §5.5 and §6). Pure logic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.mapping import Mapping
from gateway.settings import RegistrationStatus


class AdmissionSource(StrEnum):
    """Why a charger gets the answer it gets."""

    MAPPING_ID = "mapping-id"
    ADDED = "added"
    MAPPING_PATTERN = "mapping-pattern"
    GUEST = "guest"


@dataclass(frozen=True)
class AddedCharger:
    """A discovered charger added to the known chargers through the API (kept in the database)."""

    id: str
    registration: RegistrationStatus
    name: str | None = None


@dataclass(frozen=True)
class Admission:
    """The registration answer for one charger and where it came from."""

    status: RegistrationStatus
    retry_interval: int
    source: AdmissionSource
    name: str | None = None
    pattern: str | None = None

    @property
    def known(self) -> bool:
        return self.source is not AdmissionSource.GUEST

    @property
    def accepted(self) -> bool:
        return self.status is RegistrationStatus.ACCEPTED


class AdmissionPolicy:
    """Exact ids in the mapping first, then chargers added through the API, then patterns in file order, then
    the guest response."""

    def __init__(
        self,
        mapping: Mapping,
        added: dict[str, AddedCharger],
        guest_response: RegistrationStatus,
        guest_retry_interval: int,
    ) -> None:
        self._by_id = {entry.id: entry for entry in mapping.chargers if entry.id is not None}
        self._patterns = [entry for entry in mapping.chargers if entry.pattern is not None]
        self._added = dict(added)
        self._guest = Admission(guest_response, guest_retry_interval, AdmissionSource.GUEST)
        # Every message a charger sends asks this; the policy never changes (a new one replaces it).
        self._decided: dict[str, Admission] = {}

    def decide(self, charge_point_id: str) -> Admission:
        admission = self._decided.get(charge_point_id)
        if admission is None:
            admission = self._decided[charge_point_id] = self._decide(charge_point_id)
        return admission

    def _decide(self, charge_point_id: str) -> Admission:
        guest_interval = self._guest.retry_interval
        entry = self._by_id.get(charge_point_id)
        if entry is not None:
            return Admission(
                entry.registration,
                entry.retry_interval or guest_interval,
                AdmissionSource.MAPPING_ID,
                entry.name,
            )
        added = self._added.get(charge_point_id)
        if added is not None:
            return Admission(added.registration, guest_interval, AdmissionSource.ADDED, added.name)
        for entry in self._patterns:
            if entry.matches(charge_point_id):
                return Admission(
                    entry.registration,
                    entry.retry_interval or guest_interval,
                    AdmissionSource.MAPPING_PATTERN,
                    entry.name,
                    entry.pattern,
                )
        return self._guest

    def in_mapping(self, charge_point_id: str) -> bool:
        """True when the mapping file lists this exact id (the API must not override the file)."""
        return charge_point_id in self._by_id

    def mapped_ids(self) -> list[str]:
        return list(self._by_id)
