"""The REST API for commands and points: one endpoint per OCPP 1.6 central-system message, the command history,
configuration keys, smart-charging settings, the local list, and the point database (read and write).

A command answers 200 with its outcome (accepted, rejected, not-supported, timed-out, offline, failed) once the
charger has answered or the attempt has ended; 404 is an unknown charger, 422 a request the 1.6 schema refuses.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from gateway.api import History, PageLimit
from gateway.api_input import UtcDateTime
from gateway.commands import CommandError, CommandResult, Outcome
from gateway.configuration import ConfigEntry
from gateway.services import Services
from gateway.smart_charging import SmartCharging
from gateway.state import iso, utcnow
from points import Kind, Point, Quality, WriteError, WriteErrorCode


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Gateway = Annotated[Services, Depends(get_services)]
router = APIRouter(prefix="/api")
_commands = "/chargers/{charger_id}/commands"

# -- models ----------------------------------------------------------------------------------------------------


class CommandOut(BaseModel):
    """How one command ended. `request` and `response` are the payloads as they went over the wire."""

    charger_id: str
    action: str
    outcome: Outcome
    status: str | None = Field(description="The charger's answer status, verbatim (e.g. RebootRequired).")
    detail: str = Field(description="Why it did not succeed, when it did not.")
    request: dict[str, Any]
    response: dict[str, Any] | None
    source: str
    sent_at: datetime
    finished_at: datetime


class CommandRecord(CommandOut):
    id: int


ConnectorId = Annotated[int, Field(ge=1, description="Connector (1 or more).")]
AnyConnectorId = Annotated[int, Field(ge=0, description="Connector; 0 is the whole charger.")]
IdTag = Annotated[str, Field(min_length=1, max_length=20)]


class ResetIn(BaseModel):
    type: Literal["Soft", "Hard"] = "Soft"


class UnlockIn(BaseModel):
    connector_id: ConnectorId


class SchedulePeriodIn(BaseModel):
    start_period: int = Field(0, ge=0, description="Seconds from the schedule's start.")
    limit: float = Field(ge=0, description="In the schedule's unit; rounded to 0.1.")
    number_phases: int | None = Field(None, ge=1, le=3)


class ChargingScheduleIn(BaseModel):
    charging_rate_unit: Literal["A", "W"]
    charging_schedule_period: list[SchedulePeriodIn] = Field(min_length=1)
    duration: int | None = Field(None, ge=0)
    start_schedule: UtcDateTime | None = None
    min_charging_rate: float | None = Field(None, ge=0)


class ChargingProfileIn(BaseModel):
    """An OCPP 1.6 ChargingProfile."""

    charging_profile_id: int
    stack_level: int = Field(0, ge=0)
    charging_profile_purpose: Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"]
    charging_profile_kind: Literal["Absolute", "Recurring", "Relative"] = "Absolute"
    charging_schedule: ChargingScheduleIn
    transaction_id: int | None = None
    recurrency_kind: Literal["Daily", "Weekly"] | None = None
    valid_from: UtcDateTime | None = None
    valid_to: UtcDateTime | None = None


class RemoteStartIn(BaseModel):
    id_tag: IdTag
    connector_id: ConnectorId | None = None
    charging_profile: ChargingProfileIn | None = Field(
        None, description="A TxProfile for the new transaction."
    )


class RemoteStopIn(BaseModel):
    transaction_id: int | None = Field(None, description="The transaction; or give the connector it runs on.")
    connector_id: ConnectorId | None = None


class AvailabilityIn(BaseModel):
    connector_id: AnyConnectorId = 0
    type: Literal["Operative", "Inoperative"]


class GetConfigurationIn(BaseModel):
    keys: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(
        None, description="Keys to read (all when left out); sent in batches of GetConfigurationMaxKeys."
    )


class ChangeConfigurationIn(BaseModel):
    key: str = Field(min_length=1, max_length=50)
    value: str = Field(max_length=500)


class SetChargingProfileIn(BaseModel):
    connector_id: AnyConnectorId
    charging_profile: ChargingProfileIn


class ClearChargingProfileIn(BaseModel):
    id: int | None = None
    connector_id: AnyConnectorId | None = None
    charging_profile_purpose: Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"] | None = None
    stack_level: int | None = Field(None, ge=0)


class CompositeScheduleIn(BaseModel):
    connector_id: AnyConnectorId
    duration: int = Field(ge=0, description="Seconds.")
    charging_rate_unit: Literal["A", "W"] | None = None


class TriggerIn(BaseModel):
    requested_message: Literal[
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    ]
    connector_id: AnyConnectorId | None = None


class SendLocalListIn(BaseModel):
    update_type: Literal["Full", "Differential"] = "Full"


class ReserveNowIn(BaseModel):
    connector_id: AnyConnectorId
    id_tag: IdTag
    expiry_date: UtcDateTime | None = Field(
        None, description="When the reservation ends (default: in 15 minutes)."
    )
    parent_id_tag: IdTag | None = None


class CancelReservationIn(BaseModel):
    reservation_id: int


class UpdateFirmwareIn(BaseModel):
    location: str = Field(min_length=1, description="URL of the firmware.")
    retrieve_date: UtcDateTime | None = Field(None, description="When to fetch it (default: now).")
    retries: int | None = Field(None, ge=0)
    retry_interval: int | None = Field(None, ge=0)


class GetDiagnosticsIn(BaseModel):
    location: str = Field(min_length=1, description="URL the charger uploads the diagnostics file to.")
    retries: int | None = Field(None, ge=0)
    retry_interval: int | None = Field(None, ge=0)
    start_time: UtcDateTime | None = None
    stop_time: UtcDateTime | None = None


class DataTransferIn(BaseModel):
    vendor_id: str = Field(min_length=1, max_length=255)
    message_id: str | None = Field(None, max_length=50)
    data: str | None = None


class ConfigEntryOut(BaseModel):
    key: str
    value: str | None
    readonly: bool
    type: str = Field(description="number, boolean, list or string.")
    read_at: datetime | None
    write_status: str | None = Field(description="Answer to the last ChangeConfiguration of this key.")
    write_time: datetime | None


class SmartChargingOut(BaseModel):
    """A connector's smart-charging settings (seed 003 §6.3); connector 0 is the whole charger."""

    enabled: bool
    unit: Literal["A", "W"]
    limit: float | None
    kind: Literal["Absolute", "Recurring", "Relative"]
    purpose: Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"]
    profile_id: int
    stack_level: int
    send_status: str | None = Field(description="Outcome of the last attempt to send the profile.")
    sent_purpose: str | None = Field(description="What the charger took, after any fallback.")


class SmartChargingIn(BaseModel):
    """Settings to change; the others stay. While enabled, a change sends the profile again."""

    enabled: bool | None = None
    unit: Literal["A", "W"] | None = None
    limit: float | None = Field(None, ge=0)
    kind: Literal["Absolute", "Recurring", "Relative"] | None = None
    purpose: Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"] | None = None
    profile_id: int | None = Field(None, ge=1)
    stack_level: int | None = Field(None, ge=0)


class LocalListOut(BaseModel):
    version: int
    entries: dict[str, dict[str, Any]]
    charger_version: int | None = Field(None, description="The version this charger last accepted.")


class PointOut(BaseModel):
    id: str
    name: str
    kind: Kind
    unit: str | None
    description: str
    writable: bool
    minimum: float | None
    maximum: float | None
    states: list[str]
    value: float | bool | int | str | None
    text: str = Field(description="The value as people read it (the state text of a multistate point).")
    timestamp: datetime | None
    quality: Quality


class PointWriteIn(BaseModel):
    value: float | bool | int | str


class PointWriteOut(BaseModel):
    accepted: bool
    status: str
    detail: str
    point: PointOut


# -- helpers ---------------------------------------------------------------------------------------------------


def _known(services: Services, charger_id: str) -> None:
    central = services.central
    if charger_id not in central.chargers and not central.admission.decide(charger_id).known:
        raise HTTPException(404, f"no charger {charger_id!r}")


def _out(result: CommandResult) -> CommandOut:
    return CommandOut(
        charger_id=result.charger_id,
        action=result.action,
        outcome=result.outcome,
        status=result.status,
        detail=result.detail,
        request=result.request,
        response=result.response,
        source=result.source,
        sent_at=result.sent_at,
        finished_at=result.finished_at,
    )


async def _send(
    services: Services, charger_id: str, action: str, body: BaseModel | dict[str, Any]
) -> CommandOut:
    _known(services, charger_id)
    payload = body if isinstance(body, dict) else body.model_dump(exclude_none=True, mode="json")
    try:
        result = await services.commands.send(charger_id, action, payload, source="api")
    except CommandError as exc:
        raise HTTPException(422, str(exc)) from None
    return _out(result)


def _point(point: Point) -> PointOut:
    spec = point.spec
    return PointOut(
        id=spec.id,
        name=spec.name,
        kind=spec.kind,
        unit=spec.unit,
        description=spec.description,
        writable=spec.writable,
        minimum=spec.minimum,
        maximum=spec.maximum,
        states=list(spec.states),
        value=point.value,
        text=point.text,
        timestamp=point.timestamp,
        quality=point.quality,
    )


# -- commands --------------------------------------------------------------------------------------------------


@router.post(f"{_commands}/reset", summary="Reset (Soft or Hard)", tags=["commands"])
async def reset(services: Gateway, charger_id: str, body: ResetIn) -> CommandOut:
    return await _send(services, charger_id, "Reset", body)


@router.post(
    f"{_commands}/clear-cache", summary="ClearCache: clear the authorization cache", tags=["commands"]
)
async def clear_cache(services: Gateway, charger_id: str) -> CommandOut:
    return await _send(services, charger_id, "ClearCache", {})


@router.post(f"{_commands}/unlock-connector", summary="UnlockConnector", tags=["commands"])
async def unlock_connector(services: Gateway, charger_id: str, body: UnlockIn) -> CommandOut:
    return await _send(services, charger_id, "UnlockConnector", body)


@router.post(
    f"{_commands}/remote-start-transaction",
    summary="RemoteStartTransaction (id tag, optional connector and TxProfile)",
    tags=["commands"],
)
async def remote_start(services: Gateway, charger_id: str, body: RemoteStartIn) -> CommandOut:
    payload = body.model_dump(exclude_none=True, mode="json")
    if "charging_profile" in payload:
        _round_limits(payload["charging_profile"])
    return await _send(services, charger_id, "RemoteStartTransaction", payload)


@router.post(
    f"{_commands}/remote-stop-transaction",
    summary="RemoteStopTransaction (by transaction, or by the connector it runs on)",
    tags=["commands"],
)
async def remote_stop(services: Gateway, charger_id: str, body: RemoteStopIn) -> CommandOut:
    transaction_id = body.transaction_id
    if transaction_id is None:
        charger = services.central.chargers.get(charger_id)
        connector = charger.connectors.get(body.connector_id or 1) if charger else None
        transaction_id = connector.transaction_id if connector else None
        if transaction_id is None:
            raise HTTPException(
                409, f"no transaction runs on {charger_id} connector {body.connector_id or 1}"
            )
    return await _send(services, charger_id, "RemoteStopTransaction", {"transaction_id": transaction_id})


@router.post(
    f"{_commands}/change-availability",
    summary="ChangeAvailability of a connector, or of the whole charger (connector 0)",
    tags=["commands"],
)
async def change_availability(services: Gateway, charger_id: str, body: AvailabilityIn) -> CommandOut:
    return await _send(services, charger_id, "ChangeAvailability", body)


@router.post(
    f"{_commands}/get-configuration",
    summary="GetConfiguration (all keys, or the keys named, in batches of GetConfigurationMaxKeys)",
    tags=["commands"],
)
async def get_configuration(services: Gateway, charger_id: str, body: GetConfigurationIn) -> CommandOut:
    _known(services, charger_id)
    return _out(await services.configuration.read(charger_id, body.keys, source="api"))


@router.post(f"{_commands}/change-configuration", summary="ChangeConfiguration of one key", tags=["commands"])
async def change_configuration(services: Gateway, charger_id: str, body: ChangeConfigurationIn) -> CommandOut:
    _known(services, charger_id)
    return _out(await services.configuration.change(charger_id, body.key, body.value, source="api"))


@router.post(f"{_commands}/set-charging-profile", summary="SetChargingProfile", tags=["commands"])
async def set_charging_profile(services: Gateway, charger_id: str, body: SetChargingProfileIn) -> CommandOut:
    profile = body.charging_profile.model_dump(exclude_none=True, mode="json")
    _round_limits(profile)
    payload = {"connector_id": body.connector_id, "cs_charging_profiles": profile}
    return await _send(services, charger_id, "SetChargingProfile", payload)


@router.post(f"{_commands}/clear-charging-profile", summary="ClearChargingProfile", tags=["commands"])
async def clear_charging_profile(
    services: Gateway, charger_id: str, body: ClearChargingProfileIn
) -> CommandOut:
    return await _send(services, charger_id, "ClearChargingProfile", body)


@router.post(f"{_commands}/get-composite-schedule", summary="GetCompositeSchedule", tags=["commands"])
async def get_composite_schedule(services: Gateway, charger_id: str, body: CompositeScheduleIn) -> CommandOut:
    return await _send(services, charger_id, "GetCompositeSchedule", body)


@router.post(
    f"{_commands}/trigger-message",
    summary="TriggerMessage (the triggered message is answered even before the charger is Accepted)",
    tags=["commands"],
)
async def trigger_message(services: Gateway, charger_id: str, body: TriggerIn) -> CommandOut:
    session = services.connections.get(charger_id)
    if session is not None:
        session.charge_point.triggered.add(body.requested_message)
    result = await _send(services, charger_id, "TriggerMessage", body)
    if session is not None and result.outcome is not Outcome.ACCEPTED:
        session.charge_point.triggered.discard(body.requested_message)
    return result


@router.post(
    f"{_commands}/send-local-list",
    summary="SendLocalList built from the authorization mode and lists (as the gateway answers online), versioned",
    tags=["commands"],
)
async def send_local_list(services: Gateway, charger_id: str, body: SendLocalListIn) -> CommandOut:
    _known(services, charger_id)
    return _out(await services.local_lists.send(charger_id, body.update_type, source="api"))


@router.post(f"{_commands}/get-local-list-version", summary="GetLocalListVersion", tags=["commands"])
async def get_local_list_version(services: Gateway, charger_id: str) -> CommandOut:
    return await _send(services, charger_id, "GetLocalListVersion", {})


@router.post(
    f"{_commands}/reserve-now", summary="ReserveNow (the gateway numbers the reservation)", tags=["commands"]
)
async def reserve_now(services: Gateway, charger_id: str, body: ReserveNowIn) -> CommandOut:
    _known(services, charger_id)
    expiry = iso(body.expiry_date or utcnow() + timedelta(minutes=15))
    row = (charger_id, body.connector_id, body.id_tag, expiry, iso(utcnow()))
    reservation_id = await services.central.store.write(lambda c: _new_reservation(c, row))
    payload = {**body.model_dump(exclude_none=True, mode="json"), "expiry_date": expiry}
    result = await _send(services, charger_id, "ReserveNow", {**payload, "reservation_id": reservation_id})
    status = result.status or result.outcome.value
    services.central.store.execute_nowait(
        "UPDATE reservations SET status = ? WHERE id = ?", (status, reservation_id)
    )
    return result


@router.post(f"{_commands}/cancel-reservation", summary="CancelReservation", tags=["commands"])
async def cancel_reservation(services: Gateway, charger_id: str, body: CancelReservationIn) -> CommandOut:
    result = await _send(services, charger_id, "CancelReservation", body)
    if result.outcome is Outcome.ACCEPTED:
        services.central.store.execute_nowait(
            "UPDATE reservations SET status = 'Cancelled' WHERE id = ? AND charger_id = ?",
            (body.reservation_id, charger_id),
        )
    return result


@router.post(f"{_commands}/update-firmware", summary="UpdateFirmware", tags=["commands"])
async def update_firmware(services: Gateway, charger_id: str, body: UpdateFirmwareIn) -> CommandOut:
    payload = body.model_dump(exclude_none=True, mode="json")
    payload["retrieve_date"] = iso(body.retrieve_date or utcnow())
    return await _send(services, charger_id, "UpdateFirmware", payload)


@router.post(f"{_commands}/get-diagnostics", summary="GetDiagnostics", tags=["commands"])
async def get_diagnostics(services: Gateway, charger_id: str, body: GetDiagnosticsIn) -> CommandOut:
    return await _send(services, charger_id, "GetDiagnostics", body)


@router.post(f"{_commands}/data-transfer", summary="DataTransfer", tags=["commands"])
async def data_transfer(services: Gateway, charger_id: str, body: DataTransferIn) -> CommandOut:
    return await _send(services, charger_id, "DataTransfer", body)


def _new_reservation(c: sqlite3.Connection, row: tuple[Any, ...]) -> int:
    cursor = c.execute(
        "INSERT INTO reservations (charger_id, connector_id, id_tag, expiry_date, created_at) VALUES (?, ?, ?, ?, ?)",
        row,
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _round_limits(profile: dict[str, Any]) -> None:
    """The 1.6 schema takes limits in steps of 0.1."""
    for period in profile["charging_schedule"]["charging_schedule_period"]:
        period["limit"] = round(period["limit"], 1)


# -- history and state -----------------------------------------------------------------------------------------


@router.get("/commands", summary="Command history, newest first", tags=["commands"])
async def list_commands(services: Gateway, history: History, limit: PageLimit = 1000) -> list[CommandRecord]:
    where, parameters = history.where("sent_at")
    rows = await services.central.store.fetch_all(
        f"SELECT * FROM commands{where} ORDER BY id DESC LIMIT ?", (*parameters, limit)
    )
    records = []
    for row in rows:
        values = dict(row)
        values["request"] = json.loads(values["request"])
        values["response"] = json.loads(values["response"]) if values["response"] else None
        records.append(CommandRecord.model_validate(values))
    return records


@router.get(
    "/chargers/{charger_id}/configuration", summary="Configuration keys as last read", tags=["configuration"]
)
def configuration(services: Gateway, charger_id: str) -> list[ConfigEntryOut]:
    _known(services, charger_id)
    entries: dict[str, ConfigEntry] = services.configuration.keys.get(charger_id, {})
    return [
        ConfigEntryOut(
            key=e.key,
            value=e.value,
            readonly=e.readonly,
            type=e.type,
            read_at=e.read_at,
            write_status=e.write_status,
            write_time=e.write_time,
        )
        for _, e in sorted(entries.items())
    ]


def _smart_out(settings: SmartCharging) -> SmartChargingOut:
    return SmartChargingOut.model_validate(settings, from_attributes=True)


@router.get(
    "/chargers/{charger_id}/connectors/{connector_id}/smart-charging",
    summary="Smart-charging settings of a connector (0: the whole charger)",
    tags=["smart charging"],
)
def get_smart_charging(services: Gateway, charger_id: str, connector_id: int) -> SmartChargingOut:
    _known(services, charger_id)
    return _smart_out(services.smart_charging.get(charger_id, connector_id))


@router.patch(
    "/chargers/{charger_id}/connectors/{connector_id}/smart-charging",
    summary="Change smart-charging settings",
    description="While enabled, a change sends SetChargingProfile (with the fallback chain: ChargePointMaxProfile "
    "-> TxDefaultProfile -> TxProfile); disabling sends ClearChargingProfile. The answer holds the send status.",
    tags=["smart charging"],
)
async def patch_smart_charging(
    services: Gateway, charger_id: str, connector_id: int, body: SmartChargingIn
) -> SmartChargingOut:
    _known(services, charger_id)
    highest = services.central.highest_connector(charger_id)
    if not 0 <= connector_id <= highest:
        raise HTTPException(422, f"{charger_id} has connectors 0 to {highest}")
    try:
        settings = await services.smart_charging.update(
            charger_id, connector_id, body.model_dump(exclude_unset=True), source="api"
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return _smart_out(settings)


@router.get(
    "/local-list", summary="The local authorization list the mapping describes now", tags=["configuration"]
)
async def local_list(
    services: Gateway,
    charger_id: Annotated[str | None, Query(description="Also show this charger's version.")] = None,
) -> LocalListOut:
    version, entries = await services.local_lists.version()
    sent = await services.local_lists.sent(charger_id) if charger_id else None
    return LocalListOut(version=version, entries=entries, charger_version=sent[0] if sent else None)


# -- points ----------------------------------------------------------------------------------------------------


@router.get("/points", summary="Points (charger values, meter and configuration points)", tags=["points"])
def list_points(
    services: Gateway,
    charger_id: Annotated[str | None, Query(description="Only this charger's points.")] = None,
    prefix: Annotated[str | None, Query(description="Only points whose id starts with this.")] = None,
) -> list[PointOut]:
    start = f"{charger_id}/" if charger_id else ""
    points = services.points.points(start + (prefix or ""))
    return [_point(p) for p in points]


@router.get("/points/{point_id:path}", summary="One point", tags=["points"])
def get_point(services: Gateway, point_id: str) -> PointOut:
    point = services.points.get(point_id)
    if point is None:
        raise HTTPException(404, f"no point {point_id!r}")
    return _point(point)


@router.put(
    "/points/{point_id:path}",
    summary="Write a point (limit, smart charging enable, writable configuration keys)",
    description="The write goes to the charger through the command service; the answer says how it ended. "
    "404: no such point; 409: not writable; 422: wrong type or out of range.",
    tags=["points"],
)
async def write_point(services: Gateway, point_id: str, body: PointWriteIn) -> PointWriteOut:
    try:
        result = await services.points.write(point_id, body.value, source="api")
    except WriteError as exc:
        status = {WriteErrorCode.UNKNOWN_POINT: 404, WriteErrorCode.NOT_WRITABLE: 409}.get(exc.code, 422)
        raise HTTPException(status, str(exc)) from None
    point = services.points.get(point_id)
    assert point is not None
    return PointWriteOut(
        accepted=result.accepted, status=result.status, detail=result.detail, point=_point(point)
    )
