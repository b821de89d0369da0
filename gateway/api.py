"""The REST API: chargers (known and discovered), connectors, transactions, message log, mapping reload."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from gateway import __version__
from gateway.api_input import UtcDateTime
from gateway.central import CentralSystem
from gateway.identity import identity_problem
from gateway.settings import RegistrationStatus
from gateway.state import ChargerState, ConnectorState, iso
from gateway.yamlsource import SourceError


def get_central(request: Request) -> CentralSystem:
    central: CentralSystem = request.app.state.central
    return central


Central = Annotated[CentralSystem, Depends(get_central)]
router = APIRouter(prefix="/api")


class BootInfoOut(BaseModel):
    vendor: str
    model: str
    charge_point_serial_number: str | None
    charge_box_serial_number: str | None
    firmware_version: str | None
    iccid: str | None
    imsi: str | None
    meter_type: str | None
    meter_serial_number: str | None


class MeterReadingOut(BaseModel):
    measurand: str
    phase: str | None
    location: str | None
    unit: str | None
    value: str
    context: str | None
    timestamp: datetime


class ConnectorOut(BaseModel):
    connector_id: int = Field(description="0 is the charge point as a whole.")
    status: str | None = None
    error_code: str | None = None
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    status_time: datetime | None = Field(None, description="When the charger says the status began.")
    updated_at: datetime | None = Field(None, description="When the gateway received it.")
    transaction_id: int | None = None
    meter: list[MeterReadingOut] = Field(description="The latest value of each measurand/phase/location.")


class AdmissionOut(BaseModel):
    registration: RegistrationStatus = Field(description="What this charger is told at BootNotification now.")
    source: str = Field(description="mapping-id, added, mapping-pattern or guest.")
    pattern: str | None
    known: bool


class ChargerOut(BaseModel):
    id: str
    name: str | None
    admission: AdmissionOut
    discovered: bool = Field(description="The charger has connected to the gateway at least once.")
    online: bool = False
    connected: bool = False
    connected_since: datetime | None = Field(None, description="When the open WebSocket was accepted.")
    protocol: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    last_boot: datetime | None = None
    last_registration_status: RegistrationStatus | None = Field(
        None, description="The answer to its last boot."
    )
    boot: BootInfoOut | None = None
    diagnostics_status: str | None = None
    firmware_status: str | None = None
    connectors: list[ConnectorOut] = Field(default_factory=list)


class TransactionOut(BaseModel):
    transaction_id: int
    known_start: bool = Field(
        description="False for a StopTransaction of a transaction the gateway never started."
    )
    charger_id: str
    connector_id: int | None
    id_tag: str | None
    id_tag_status: str | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    energy_wh: int | None
    start_time: datetime | None
    stop_time: datetime | None
    minutes_charged: int | None
    stop_reason: str | None = Field(
        description="OCPP's reason (Local when the charger gave none), or Superseded: the charger started another "
        "transaction on the connector without stopping this one."
    )
    flag: str | None = Field(
        None, description="Why a figure is missing or was worked out, e.g. a meter that went backwards."
    )


class MessageOut(BaseModel):
    timestamp: datetime
    charger_id: str
    message_type: str
    summary: str


class AddCharger(BaseModel):
    registration: RegistrationStatus = RegistrationStatus.ACCEPTED
    name: str | None = Field(None, max_length=100)


class MappingSummary(BaseModel):
    file: str
    chargers: int
    patterns: list[str]
    authorization_mode: str
    whitelist: int
    blacklist: int


class Health(BaseModel):
    version: str
    chargers: int
    connected: int
    online: int
    open_transactions: int


def _connector(connector: ConnectorState) -> ConnectorOut:
    reported = asdict(connector.report) if connector.report else {}
    return ConnectorOut(
        connector_id=connector.connector_id,
        status_time=reported.pop("timestamp", None),
        **reported,
        updated_at=connector.updated_at,
        transaction_id=connector.transaction_id,
        meter=[
            MeterReadingOut.model_validate(sample, from_attributes=True)
            for sample in connector.meter.values()
        ],
    )


# What a charger shows of itself once it has connected, named alike in ChargerState and ChargerOut.
_SEEN_FIELDS = [
    "online",
    "connected",
    "connected_since",
    "protocol",
    "first_seen",
    "last_seen",
    "last_boot",
    "diagnostics_status",
    "firmware_status",
]


def _charger(central: CentralSystem, charger_id: str, state: ChargerState | None) -> ChargerOut:
    """A charger as the API shows it: what the mapping says of it, and what it has shown of itself."""
    admission = central.admission.decide(charger_id)
    seen: dict[str, Any] = {}
    if state is not None:
        seen = {name: getattr(state, name) for name in _SEEN_FIELDS}
        seen["last_registration_status"] = state.registration_status
        seen["boot"] = BootInfoOut.model_validate(state.boot, from_attributes=True) if state.boot else None
        seen["connectors"] = [_connector(c) for _, c in sorted(state.connectors.items())]
    return ChargerOut(
        id=charger_id,
        name=admission.name,
        admission=AdmissionOut(
            registration=admission.status,
            source=admission.source.value,
            pattern=admission.pattern,
            known=admission.known,
        ),
        discovered=state is not None,
        **seen,
    )


@router.get("/health", summary="Gateway version and counts")
def health(central: Central) -> Health:
    chargers = central.chargers.values()
    return Health(
        version=__version__,
        chargers=len(central.chargers),
        connected=sum(c.connected for c in chargers),
        online=sum(c.online for c in chargers),
        open_transactions=len(central.open_transactions),
    )


@router.get("/chargers", summary="Known and discovered chargers")
def list_chargers(
    central: Central,
    known: Annotated[
        bool | None, Query(description="Only known (true) or only unknown (false) chargers.")
    ] = None,
    online: Annotated[
        bool | None, Query(description="Only online (true) or offline (false) chargers.")
    ] = None,
) -> list[ChargerOut]:
    ids = sorted(set(central.chargers) | set(central.admission.mapped_ids()) | set(central.added_ids()))
    result = [_charger(central, charger_id, central.chargers.get(charger_id)) for charger_id in ids]
    if known is not None:
        result = [c for c in result if c.admission.known is known]
    if online is not None:
        result = [c for c in result if c.online is online]
    return result


@router.get("/chargers/{charger_id}", summary="One charger with its connectors")
def get_charger(central: Central, charger_id: str) -> ChargerOut:
    state = central.chargers.get(charger_id)
    if state is None and not central.admission.decide(charger_id).known:
        raise HTTPException(404, f"no charger {charger_id!r}")
    return _charger(central, charger_id, state)


@router.get("/chargers/{charger_id}/connectors", summary="A charger's connectors (0 = the charge point)")
def get_connectors(central: Central, charger_id: str) -> list[ConnectorOut]:
    return get_charger(central, charger_id).connectors


@router.put(
    "/chargers/{charger_id}/known",
    summary="Add a (discovered) charger to the known chargers",
    description="Kept in the database. Refused (409) for ids the mapping file lists: change those in the file.",
)
async def add_known(central: Central, charger_id: str, body: AddCharger) -> ChargerOut:
    problem = identity_problem(charger_id)
    if problem:
        raise HTTPException(422, problem)
    try:
        await central.add_known(charger_id, body.registration, body.name)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    return _charger(central, charger_id, central.chargers.get(charger_id))


@router.delete(
    "/chargers/{charger_id}/known", summary="Remove a charger added through the API", status_code=204
)
async def remove_known(central: Central, charger_id: str) -> None:
    if not await central.remove_known(charger_id):
        raise HTTPException(404, f"{charger_id!r} was not added through the API")


class HistoryFilter:
    """The filters every history endpoint takes: one charger, and a time window."""

    def __init__(
        self,
        charger_id: Annotated[str | None, Query(description="Only this charger.")] = None,
        start: Annotated[
            UtcDateTime | None, Query(alias="from", description="Inclusive start (ISO 8601).")
        ] = None,
        end: Annotated[UtcDateTime | None, Query(alias="to", description="Exclusive end (ISO 8601).")] = None,
    ) -> None:
        self.charger_id, self.start, self.end = charger_id, start, end

    def where(self, time_column: str) -> tuple[str, list[Any]]:
        """An SQL WHERE clause (or nothing) and its parameters."""
        clauses: list[str] = []
        parameters: list[Any] = []
        if self.charger_id is not None:
            clauses.append("charger_id = ?")
            parameters.append(self.charger_id)
        if self.start is not None:
            clauses.append(f"{time_column} >= ?")
            parameters.append(iso(self.start))
        if self.end is not None:
            clauses.append(f"{time_column} < ?")
            parameters.append(iso(self.end))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), parameters


History = Annotated[HistoryFilter, Depends()]
PageLimit = Annotated[int, Query(ge=1, le=100_000, description="At most this many rows.")]

_TRANSACTION_SELECT = (
    "SELECT COALESCE(orphan_transaction_id, id) AS transaction_id, orphan_transaction_id IS NULL AS known_start, "
    "charger_id, connector_id, id_tag, id_tag_status, meter_start_wh, meter_stop_wh, energy_wh, start_time, "
    "stop_time, minutes_charged, stop_reason, flag FROM transactions"
)
_MESSAGE_SELECT = "SELECT timestamp, charger_id, message_type, summary FROM message_log"


async def _transactions(central: CentralSystem, history: HistoryFilter, limit: int) -> list[TransactionOut]:
    # A transaction belongs to the time it started; a stop without a known start, to the time it stopped.
    where, parameters = history.where("COALESCE(start_time, stop_time)")
    sql = f"{_TRANSACTION_SELECT}{where} ORDER BY id DESC LIMIT ?"
    return [
        TransactionOut.model_validate(row) for row in await central.store.fetch_all(sql, (*parameters, limit))
    ]


async def _messages(central: CentralSystem, history: HistoryFilter, limit: int) -> list[MessageOut]:
    where, parameters = history.where("timestamp")
    sql = f"{_MESSAGE_SELECT}{where} ORDER BY id DESC LIMIT ?"
    return [
        MessageOut.model_validate(row) for row in await central.store.fetch_all(sql, (*parameters, limit))
    ]


@router.get("/transactions", summary="Transaction history (seed 003 §5.3), newest first")
async def list_transactions(
    central: Central, history: History, limit: PageLimit = 1000
) -> list[TransactionOut]:
    return await _transactions(central, history, limit)


@router.get("/transactions.csv", summary="Transaction history as CSV", response_class=Response)
async def export_transactions(central: Central, history: History, limit: PageLimit = 100_000) -> Response:
    return _csv(await _transactions(central, history, limit), TransactionOut, "transactions.csv")


@router.get("/messages", summary="General message log (seed 003 §5.2), newest first")
async def list_messages(central: Central, history: History, limit: PageLimit = 1000) -> list[MessageOut]:
    return await _messages(central, history, limit)


@router.get("/messages.csv", summary="General message log as CSV", response_class=Response)
async def export_messages(central: Central, history: History, limit: PageLimit = 100_000) -> Response:
    return _csv(await _messages(central, history, limit), MessageOut, "messages.csv")


@router.get("/mapping", summary="The mapping in use")
def mapping_summary(central: Central) -> MappingSummary:
    mapping = central.mapping
    return MappingSummary(
        file=str(central.settings.mapping),
        chargers=sum(1 for c in mapping.chargers if c.id is not None),
        patterns=[c.pattern for c in mapping.chargers if c.pattern is not None],
        authorization_mode=mapping.authorization.mode.value,
        whitelist=len(mapping.authorization.whitelist),
        blacklist=len(mapping.authorization.blacklist),
    )


@router.post(
    "/mapping/reload",
    summary="Re-read the mapping file without a restart",
    description="Chargers, connectors and transactions are kept. A bad file is refused (422, with file, line and "
    "reason) and the running mapping stays.",
)
async def reload_mapping(central: Central) -> MappingSummary:
    try:
        await central.reload_mapping()
    except SourceError as exc:
        raise HTTPException(422, [str(issue) for issue in exc.issues]) from None
    return mapping_summary(central)


# Excel reads a CSV file as UTF-8 only when it starts with a byte order mark (else umlauts come out garbled);
# Python's csv, LibreOffice and pandas (encoding="utf-8-sig") read it either way.
_BOM = "\ufeff"
# A cell that starts with one of these is a formula to a spreadsheet: text from a charger (an id tag, a status
# info) must not run as one, so it is written as text (OWASP, CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv(rows: Sequence[BaseModel], model: type[BaseModel], filename: str) -> Response:
    columns = list(model.model_fields)
    buffer = io.StringIO()
    buffer.write(_BOM)
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        values = row.model_dump()
        writer.writerow([_cell(values[name]) for name in columns])
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value
