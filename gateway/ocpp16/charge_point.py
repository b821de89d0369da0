"""OCPP 1.6J: every message a charger sends, translated into calls on the version-neutral central system.

Handlers only record and answer. Frames are checked before the library sees them, so bad input gets the 1.6
CALLERROR code that fits and the connection stays up.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

import ocpp.exceptions
import ocpp.messages
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import InternalError, OCPPError, PropertyConstraintViolationError, SecurityError
from ocpp.messages import Call, CallError
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint, call_result, datatypes
from ocpp.v16.enums import Action

from gateway.authorization import IdTagInfo
from gateway.central import CentralSystem
from gateway.ocpp16 import plausible, schemas
from gateway.ocppj import CALL, ConnectionLost, FrameError, FrameFault, parse_frame
from gateway.plausibility import Implausible, check_values
from gateway.sources import natural_unit
from gateway.state import BootInfo, SampledValue, StatusReport, iso, utcnow

LOG = logging.getLogger(__name__)
# The library logs every frame at INFO; under "ocpp" so that one logger level quiets it.
FRAME_LOG = logging.getLogger("ocpp.frames")

SUBPROTOCOL = "ocpp1.6"

# Actions a 1.6 charge point sends to a central system (Core). Other 1.6 actions are ones we send, or the security
# extension's, which this gateway does not take yet: both are NotSupported.
RECEIVED_ACTIONS = frozenset(
    {
        Action.authorize,
        Action.boot_notification,
        Action.data_transfer,
        Action.diagnostics_status_notification,
        Action.firmware_status_notification,
        Action.heartbeat,
        Action.meter_values,
        Action.start_transaction,
        Action.status_notification,
        Action.stop_transaction,
    }
)
_KNOWN_ACTIONS = frozenset(action.value for action in Action)

Handler = TypeVar("Handler", bound=Callable[..., Any])
on = cast(Callable[[Action], Callable[[Handler], Handler]], _on)  # the library's @on, typed

# The library raises 2.0.1 code names; 1.6 spells two of them differently.
_CODES_16 = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}
_FAULT_CODES = {FrameFault.FORMAT: "FormationViolation", FrameFault.PROTOCOL: "ProtocolError"}
# OCPP-J 1.6 §4.2.3's descriptions of these two codes; the library's default descriptions have them swapped.
_STANDARD_DESCRIPTIONS = {
    "NotImplemented": "Requested Action is not known by receiver",
    "NotSupported": "Requested Action is recognized but not supported by the receiver",
}
_LIBRARY_DESCRIPTIONS = frozenset(
    {
        ocpp.exceptions.NotImplementedError.default_description,
        ocpp.exceptions.NotSupportedError.default_description,
    }
)

# The library validates each payload in a thread pool by default. Under the GIL that runs no faster, and the two
# thread hops per message (request and answer) were a fifth of the gateway's time per MeterValues in the profile
# (bench/throughput.py), so what the library still validates (answers to our commands) is validated on the loop.
ocpp.messages.ASYNC_VALIDATION = False


@functools.lru_cache(maxsize=4096)
def _snake_key(key: str) -> str:
    """The library's spelling of one payload key in snake case, remembered: its conversion runs two regular
    expressions per key of every message, and OCPP has a few hundred field names."""
    (converted,) = camel_to_snake_case({key: None})
    return cast(str, converted)


def snake_case(data: Any) -> Any:
    """`ocpp.charge_point.camel_to_snake_case`, with the keys' conversion remembered."""
    if isinstance(data, dict):
        return {_snake_key(key): snake_case(value) for key, value in data.items()}
    if isinstance(data, list):
        return [snake_case(value) for value in data]
    return data


class ChargePoint16(ChargePoint):  # type: ignore[misc]
    """One connected OCPP 1.6J charger."""

    def __init__(self, charger_id: str, connection: Any, central: CentralSystem) -> None:
        super().__init__(
            charger_id, connection, response_timeout=central.settings.response_timeout, logger=FRAME_LOG
        )
        self.central = central
        self._max_bytes = central.settings.max_message_bytes
        # Actions a TriggerMessage asked for, allowed while the charger is not Accepted (OCPP 1.6 §4.2).
        self.triggered: set[str] = set()
        # Follow-ups of the message being handled, run once its answer is sent (they may send commands).
        self._after_answer: list[Callable[[], None]] = []
        # Whether this connection has shown the charger is up: a BootNotification, or any first message of a
        # charger that reconnected without booting (what waited for it goes out then).
        self._up = False

    # -- framing and gatekeeping -----------------------------------------------------------------------------

    async def route_message(self, raw_msg: str | bytes) -> None:
        try:
            frame = parse_frame(raw_msg, self._max_bytes)
        except FrameError as error:
            await self._refuse_frame(error)
            return
        self.central.touch(self.id)
        if frame.message_type != CALL:
            await super().route_message(frame.raw)
            return
        call = Call(frame.unique_id, frame.action, frame.payload)
        try:
            self._admit(call.action)
            await self._handle_call(call, frame.raw)
        except ConnectionLost:
            raise
        except Exception as exc:
            await self._answer_error(call, exc)

    async def _answer_error(self, call: Call, exc: Exception) -> None:
        """Answer a CALL that failed with the 1.6 CALLERROR for it; a bug of ours is an InternalError."""
        if isinstance(exc, OCPPError):
            error = exc
        else:
            LOG.error("%s: %s failed", self.id, call.action, exc_info=exc)
            error = InternalError(description=f"the central system failed to handle {call.action}")
        code = _CODES_16.get(error.code, error.code)
        cause = error.details.get("cause") if isinstance(error.details, dict) else None
        description = str(cause or error.description or code)
        standard = _STANDARD_DESCRIPTIONS.get(code)
        if standard is not None and not description.startswith(standard):
            description = standard if description in _LIBRARY_DESCRIPTIONS else f"{standard}: {description}"
        await self._send_call_error(call.unique_id, code, description)
        self.central.log(self.id, "CALLERROR", f"{call.action}: {code}: {description}")

    async def _handle_call(self, msg: Call, raw: str) -> None:
        """Validate, dispatch and answer one CALL. Unlike the library's version, errors propagate to
        `route_message`, which answers and logs them in one place."""
        self._after_answer = []
        if not self._up and msg.action != Action.boot_notification:
            self._up = True
            self._after_answer.append(lambda: self.central.resumed(self.id))
        schemas.validate(msg)
        try:
            check_values(msg.payload, raw)
            plausible.check(msg.action, msg.payload, self._limits())
        except Implausible as exc:
            raise PropertyConstraintViolationError(description=str(exc)) from None
        handler = self.route_map[msg.action]["_on_action"]
        response = handler(**snake_case(msg.payload))
        if inspect.isawaitable(response):
            response = await response
        result = msg.create_call_result(snake_to_camel_case(remove_nones(serialize_as_dict(response))))
        schemas.validate(result)
        try:
            await self._send(result.to_json())
        finally:
            follow_ups, self._after_answer = self._after_answer, []
        for follow_up in follow_ups:
            follow_up()

    def _limits(self) -> plausible.Limits:
        settings = self.central.settings
        return plausible.Limits(
            highest_connector=self.central.highest_connector(self.id),
            now=utcnow(),
            max_age=timedelta(days=settings.timestamp_max_age_days),
            max_ahead=timedelta(seconds=settings.timestamp_max_ahead),
        )

    def _admit(self, action: str) -> None:
        if action not in RECEIVED_ACTIONS:
            if action in _KNOWN_ACTIONS:
                raise _error("NotSupported", f"this central system does not take {action} requests")
            raise _error("NotImplemented", f"unknown action {action!r}")
        if action == Action.boot_notification or action in self.triggered:
            self.triggered.discard(action)
            return
        admission = self.central.admission.decide(self.id)
        if not admission.accepted:
            raise SecurityError(
                description=f"registration is {admission.status.value}: only BootNotification is answered"
            )

    async def _refuse_frame(self, error: FrameError) -> None:
        code = _FAULT_CODES[error.fault]
        if error.unique_id is not None:
            await self._send_call_error(error.unique_id, code, error.description)
            self.central.log(self.id, "CALLERROR", f"{code}: {error.description}")
        else:
            self.central.log(self.id, "BadFrame", f"unanswerable: {error.description}")

    async def _send_call_error(self, unique_id: Any, code: str, description: str) -> None:
        await self._send(CallError(unique_id, code, description, {}).to_json())

    # -- charger-initiated messages --------------------------------------------------------------------------

    @on(Action.boot_notification)
    async def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kw: Any) -> Any:
        info = BootInfo(vendor=charge_point_vendor, model=charge_point_model, **kw)
        admission = await self.central.boot(self.id, info)
        interval = self.central.heartbeat_interval_for(admission)
        self.central.log(
            self.id,
            "BootNotification",
            f"{charge_point_vendor} {charge_point_model} serial {kw.get('charge_point_serial_number') or '-'} "
            f"firmware {kw.get('firmware_version') or '-'} -> {admission.status.value} ({admission.source.value}), "
            f"interval {interval} s",
        )
        if admission.accepted:
            self._up = True
            self._after_answer.append(lambda: self.central.booted(self.id))
        return call_result.BootNotification(
            current_time=_now(), interval=interval, status=admission.status.value
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        now = _now()
        self.central.log(self.id, "Heartbeat", now)
        return call_result.Heartbeat(current_time=now)

    @on(Action.status_notification)
    def on_status_notification(self, connector_id: int, timestamp: str | None = None, **report: Any) -> Any:
        moment = plausible.timestamp(timestamp, "timestamp") if timestamp else None
        state = StatusReport(**report, timestamp=moment)
        applied = self.central.status_notification(self.id, connector_id, state)
        extra = f" ({state.info})" if state.info else ""
        if not applied:
            extra += ": older than the status shown, which stays"
        self.central.log(
            self.id,
            "StatusNotification",
            f"connector {connector_id}: {state.status}, {state.error_code}{extra}",
        )
        return call_result.StatusNotification()

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], transaction_id: int | None = None
    ) -> Any:
        samples = _samples(meter_value)
        result = await self.central.meter_values(self.id, connector_id, transaction_id, samples)
        notes = []
        if transaction_id is not None and result.transaction_id is None:
            notes.append(
                f"transaction {transaction_id} is not the connector's open one: kept as its own values"
            )
        if not result.stored:
            notes.append("already stored (resent)")
        elif result.older:
            notes.append(f"{result.older} older than the values shown: stored, not shown")
        self.central.log(
            self.id,
            "MeterValues",
            f"connector {connector_id}, transaction {transaction_id or '-'}: {_describe(samples)}"
            + "".join(f"; {note}" for note in notes),
        )
        return call_result.MeterValues()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        info = self.central.authorize(id_tag)
        self.central.log(self.id, "Authorize", f"{id_tag} -> {info.status.value}")
        return call_result.Authorize(id_tag_info=_id_tag_info(info))

    @on(Action.start_transaction)
    async def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
    ) -> Any:
        result = await self.central.start_transaction(
            self.id,
            connector_id,
            id_tag,
            meter_start,
            plausible.timestamp(timestamp, "timestamp"),
            reservation_id,
        )
        again = " (repeated)" if result.repeated else ""
        if result.superseded is not None:
            again += f", closing transaction {result.superseded.transaction_id} still open on the connector"
        self.central.log(
            self.id,
            "StartTransaction",
            f"connector {connector_id}, {id_tag} -> {result.id_tag_info.status.value}, "
            f"transaction {result.transaction_id}{again}, meter {meter_start} Wh",
        )
        if not result.repeated:
            self._after_answer.append(lambda: self.central.transaction_started(self.id, connector_id))
        return call_result.StartTransaction(
            transaction_id=result.transaction_id, id_tag_info=_id_tag_info(result.id_tag_info)
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self,
        meter_stop: int,
        timestamp: str,
        transaction_id: int,
        reason: str | None = None,
        id_tag: str | None = None,
        transaction_data: list[dict[str, Any]] | None = None,
    ) -> Any:
        samples = _samples(transaction_data or [])
        result = await self.central.stop_transaction(
            self.id,
            transaction_id,
            meter_stop,
            plausible.timestamp(timestamp, "timestamp"),
            reason,
            id_tag,
            samples,
        )
        energy = f"{result.energy_wh} Wh" if result.energy_wh is not None else f"no energy ({result.flag})"
        if not result.known:
            outcome = (
                "unknown transaction, already recorded"
                if result.repeated
                else "unknown transaction, recorded"
            )
        elif result.updated_from is not None:
            outcome = f"stopped again with a higher meter (was {result.updated_from} Wh): now {energy}"
        elif result.repeated:
            outcome = "already stopped"
        else:
            outcome = f"{energy} in {result.minutes_charged} min"
        self.central.log(
            self.id,
            "StopTransaction",
            f"transaction {transaction_id}, meter {meter_stop} Wh, reason {reason or 'Local'}: {outcome}",
        )
        info = self.central.authorize(id_tag) if id_tag else None
        return call_result.StopTransaction(id_tag_info=_id_tag_info(info) if info else None)

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        status, answer = self.central.data_transfer(self.id, vendor_id, message_id, data)
        replied = f", answer {_clip(answer)}" if answer is not None else ""
        self.central.log(
            self.id,
            "DataTransfer",
            f"{_clip(vendor_id, 60, False)}/{_clip(message_id, 60, False) if message_id else '-'} -> "
            f"{status.value}{replied}, data {_clip(data)}",
        )
        return call_result.DataTransfer(status=status.value, data=answer)

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(self, status: str) -> Any:
        self.central.diagnostics_status(self.id, status)
        self.central.log(self.id, "DiagnosticsStatusNotification", status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, status: str) -> Any:
        self.central.firmware_status(self.id, status)
        self.central.log(self.id, "FirmwareStatusNotification", status)
        return call_result.FirmwareStatusNotification()


def _error(code: str, description: str) -> OCPPError:
    error_class = next(cls for cls in OCPPError.__subclasses__() if cls.code == code)
    error: OCPPError = error_class(description=description)
    return error


def _now() -> str:
    return iso(utcnow()) or ""


def _samples(meter_values: list[dict[str, Any]]) -> list[SampledValue]:
    samples = []
    for meter_value in meter_values:
        moment = plausible.timestamp(meter_value["timestamp"], "meterValue.timestamp")
        for sampled in meter_value["sampled_value"]:
            fields = {
                key: sampled.get(key) for key in ("measurand", "phase", "context", "location", "format")
            }
            present = {k: v for k, v in fields.items() if v is not None}
            # OCPP's default unit is Wh whatever the measurand; a charger that leaves the unit out of a current or
            # voltage reading means amperes or volts (and a power factor has no unit).
            unit = sampled.get("unit") or natural_unit(fields["measurand"] or "Energy.Active.Import.Register")
            samples.append(SampledValue(moment, sampled["value"], unit=unit, **present))
    return samples


def _describe(samples: list[SampledValue]) -> str:
    parts = [
        f"{s.measurand}{'.' + s.phase if s.phase else ''}={s.value} {s.unit or ''}".strip() for s in samples
    ]
    return "; ".join(parts[:6]) + (f"; +{len(parts) - 6} more" if len(parts) > 6 else "")


def _clip(text: str | None, limit: int = 200, quoted: bool = True) -> str:
    """Text a charger sent, fit for one log line: control characters escaped, lone surrogates (which SQLite cannot
    store) replaced, at most `limit` characters of it with the full length said."""
    if text is None:
        return "-"
    shown = json.dumps(text[:limit], ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")
    shown = shown if quoted else shown[1:-1]
    return shown if len(text) <= limit else f"{shown}... ({len(text)} characters)"


def _id_tag_info(info: IdTagInfo) -> datatypes.IdTagInfo:
    return datatypes.IdTagInfo(
        status=info.status.value, parent_id_tag=info.parent_id_tag, expiry_date=iso(info.expiry_date)
    )
