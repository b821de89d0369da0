"""One simulated OCPP 1.6J charger on a WebSocket: the `ocpp` package's ChargePoint, playing a profile.

It connects to `<url>/<id>` (subprotocol ocpp1.6) and sends BootNotification; Accepted starts the heartbeats
(at the interval the central system returned), Pending and Rejected wait that interval and boot again (while
Pending it answers the central system's calls, while Rejected it answers nothing, as OCPP 1.6 §4.2 says). Then it
reports every connector (0 too) and runs sessions on each connector: after an idle time the car plugs in
(Preparing), the id tag is authorized (if the profile sends Authorize), StartTransaction, Charging with
MeterValues every MeterValueSampleInterval seconds, then StopTransaction (Local or EVDisconnected), Finishing
and Available. The energy register keeps growing across sessions and reconnections; the current follows the
charging profiles in force and the configuration's caps (see `physics`).

It answers what its profile receives: charging profiles, availability, remote start and stop, reset (its
transactions stop, the socket closes, it reconnects and boots again), the local list, configuration (a change
takes effect), unlock, trigger, reservations, data transfer, diagnostics and firmware (the status notifications
only where the profile sends them). A call the profile does not receive gets CALLERROR NotSupported (a feature
profile it recognizes but lacks) or NotImplemented. It never sends a call its profile does not send.

Every frame is counted per action, with the CALLERRORs both ways, disconnections and anything unexpected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import websockets
from ocpp.exceptions import OCPPError
from ocpp.messages import CallError
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint, call, call_result
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from gateway.simulator.physics import (
    TX,
    Car,
    Converter,
    InstalledProfile,
    LocalList,
    Meter,
    OperatingPoint,
    ProfileRules,
    ProfileStack,
    dc_voltage,
    from_amps,
    iso,
    operating_point,
    parse_time,
)
from gateway.simulator.profiles import ChargerProfile

LOG = logging.getLogger(__name__)
# The library logs every frame at INFO under the logger it is given.
FRAME_LOG = logging.getLogger("gateway.simulator.frames")

Handler = TypeVar("Handler", bound=Callable[..., Any])
on = cast(Callable[[str], Callable[[Handler], Handler]], _on)  # the library's @on, typed

IDLE = OperatingPoint(0.0, 0.0, 0.0, "SuspendedEV")
TRIGGERABLE = frozenset(
    {
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    }
)
# CALLERRORs a charger answers by design (its profile's refusals); any other it sends is a problem.
REFUSALS = frozenset({"NotImplemented", "NotSupported"})
_DESCRIPTIONS = {
    "NotImplemented": "Requested Action is not known by receiver",
    "NotSupported": "Requested Action is recognized but not supported by the receiver",
}
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Behaviour:
    """How a simulated charger behaves; times in seconds."""

    interval: float = 10.0  # MeterValueSampleInterval to start with
    session: float = 120.0  # mean session length
    idle: float | None = (
        60.0  # mean idle time between sessions; None: sessions only on RemoteStartTransaction
    )
    id_tag: str = "SIM-TAG"
    unplug: float = 1.0  # mean time from StopTransaction (Finishing) to Available
    step: float = 0.5  # between the status notifications of a diagnostics upload or a firmware update
    reconnect: float = 2.0  # mean delay before reconnecting after the connection dropped
    response_timeout: float = 30.0
    config: tuple[tuple[str, str], ...] = ()  # configuration values other than the profile's


@dataclass
class Stats:
    """What one charger did: frames per action, CALLERRORs both ways, connections and sessions."""

    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    errors_sent: Counter[str] = field(default_factory=Counter)  # CALLERRORs we answered, by code
    errors_received: Counter[str] = field(default_factory=Counter)  # "<action>: <code>" for our calls
    boots: Counter[str] = field(default_factory=Counter)  # BootNotification answers by status
    connects: int = 0
    connect_failures: int = 0
    connect_error: str | None = None  # why the last connection attempt failed
    disconnects: int = 0  # connections the other side closed or lost
    reconnects: int = 0
    sessions_started: int = 0
    sessions_ended: int = 0
    refused: int = 0  # id tags the central system did not accept
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        LOG.warning("%s", text)


@dataclass
class Reservation:
    reservation_id: int
    id_tag: str
    expiry: datetime


@dataclass(eq=False)
class Connector:
    """One connector's state; it outlives connections, so sessions and the register carry on."""

    connector_id: int
    meter: Meter
    initial_wh: float
    status: str = "Available"
    operative: bool = True
    scheduled: bool | None = None  # availability to apply once the session ends
    busy: bool = False  # a session is being set up or runs
    transaction_id: int | None = None
    id_tag: str | None = None
    meter_start: int = 0
    started_at: datetime | None = None
    ends_at: float = 0.0  # loop time the car leaves
    car: Car | None = None
    stop_reason: str | None = None  # a stop asked for (Remote, UnlockCommand, ...)
    # (reason, meterStop, timestamp) of a StopTransaction not yet answered: sent again after a reconnection
    stopping: tuple[str, int, str] | None = None
    remote: tuple[str, dict[str, Any] | None] | None = None  # a RemoteStartTransaction to carry out
    reservation: Reservation | None = None
    next_session: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class SimulatedCharger(ChargePoint):  # type: ignore[misc]
    """A charger of `profile` at `<url>/<id>`; `run(stop)` keeps it connected until `stop` is set."""

    def __init__(
        self,
        profile: ChargerProfile,
        charger_id: str,
        url: str,
        behaviour: Behaviour | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        super().__init__(charger_id, None, response_timeout=self.behaviour.response_timeout, logger=FRAME_LOG)
        self.profile = profile
        self.url = f"{url.rstrip('/')}/{charger_id}"
        self.rng = rng or random.Random()
        self.stats = Stats()
        self.config: dict[str, str] = {entry.key: entry.value for entry in profile.configuration}
        self.readonly = {entry.key for entry in profile.configuration if entry.readonly}
        if "MeterValueSampleInterval" in self.config:
            self.config["MeterValueSampleInterval"] = f"{self.behaviour.interval:g}"
        self.config.update(dict(self.behaviour.config))
        self.registration: str | None = None
        self.connected = False
        self.operative = True  # connector 0
        self.status0 = "Available"
        self.profiles = ProfileStack()
        self.local_list = LocalList()
        self.connectors = {n: self._new_connector(n) for n in range(1, profile.connectors + 1)}
        self._interval = float(self.config.get("HeartbeatInterval", "300"))
        self._heartbeat_changed = asyncio.Event()
        self._boot_now = asyncio.Event()
        self._reset_requested = asyncio.Event()
        self._reset_type = "Soft"
        self._halt_reason: str | None = None
        self._connector_tasks: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._follow_ups: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def _new_connector(self, connector_id: int) -> Connector:
        register = float(self.rng.randint(1_000, 5_000_000))  # a meter that has seen some use
        return Connector(connector_id, Meter(register), initial_wh=register)

    # -- running ---------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, and reconnect after a drop or a reset, until `stop` is set; then stop the sessions and close."""
        first = True
        while not stop.is_set():
            if not first:
                self.stats.reconnects += 1
            first = False
            outcome = "failed"
            try:
                async with websockets.connect(
                    self.url, subprotocols=[Subprotocol("ocpp1.6")], open_timeout=10, close_timeout=2
                ) as ws:
                    outcome = await self._online(ws, stop)
            except (OSError, WebSocketException, TimeoutError) as exc:
                if outcome == "failed":
                    self.stats.connect_failures += 1
                    self.stats.connect_error = str(exc) or type(exc).__name__
                    LOG.info("%s: cannot connect: %s", self.id, exc)
            if stop.is_set():
                break
            if outcome == "dropped":
                self.stats.disconnects += 1
            elif outcome == "reset":
                continue
            delay = self.behaviour.reconnect * self.rng.uniform(0.5, 1.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _online(self, ws: Any, stop: asyncio.Event) -> str:
        """One connection: "dropped" when the other side closed it, "reset" or "stopped" when we did, "error"
        when our own operation failed."""
        self._connection = ws
        # the library's queue of answers to our calls: none left over from the last connection
        self._response_queue: asyncio.Queue[Any] = asyncio.Queue()
        self._halt_reason = None
        self._reset_requested.clear()
        for c in self.connectors.values():
            if c.transaction_id is None and c.stopping is None:
                c.busy, c.remote = False, None  # a session being set up when the connection went is gone
        self.connected = True
        self.stats.connects += 1
        listener = asyncio.create_task(self._listen())
        operate = asyncio.create_task(self._guard(self._operate(), "operation"))
        stopping = asyncio.create_task(stop.wait())
        resetting = asyncio.create_task(self._reset_requested.wait())
        try:
            await asyncio.wait({listener, operate, stopping, resetting}, return_when=asyncio.FIRST_COMPLETED)
            if listener.done():
                return "dropped"
            if stop.is_set():
                outcome, reason = "stopped", "Local"
            elif resetting.done():
                outcome, reason = "reset", "HardReset" if self._reset_type == "Hard" else "SoftReset"
            else:
                outcome, reason = "error", "Other"  # our operation failed (a problem is recorded): start over
            await self._halt(reason)
            await ws.close()
            return outcome
        finally:
            self.connected = False
            pending = [listener, operate, stopping, resetting, *self._connector_tasks, *self._tasks]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._connector_tasks = []
            self._tasks.clear()

    async def _listen(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.start()

    async def _guard(self, work: Awaitable[None], name: str) -> None:
        """Run a task's work: a closed connection ends it quietly, anything else is a problem."""
        try:
            await work
        except ConnectionClosed:
            pass
        except Exception as exc:
            LOG.exception("%s: %s failed", self.id, name)
            self.stats.problem(f"{self.id}: {name} failed: {exc!r}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._guard(work, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _operate(self) -> None:
        await self._boot()
        await self._status0(self.status0 if self.operative else "Unavailable")
        for c in self.connectors.values():
            running = c.transaction_id is not None and c.stopping is None
            await self._status(c, c.meter.point.status if running else self._idle_status(c))
        now = self._loop_time()
        for c in self.connectors.values():
            c.next_session = now + self._idle_time(first=True)
            self._connector_tasks.append(
                asyncio.create_task(self._guard(self._connector_loop(c), f"connector {c.connector_id}"))
            )
        while True:
            self._heartbeat_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._heartbeat_changed.wait(), self._interval)
                continue
            await self._call(call.Heartbeat())

    async def _halt(self, reason: str) -> None:
        """Stop every transaction with `reason` (the connector loops send StopTransaction) and wait for them."""
        self._halt_reason = reason
        for c in self.connectors.values():
            c.wake.set()
        if self._connector_tasks:
            await asyncio.wait(self._connector_tasks, timeout=10)

    # -- boot and heartbeat ----------------------------------------------------------------------------------

    async def _boot(self) -> None:
        while True:
            self._boot_now.clear()
            answer = await self._call(self._boot_notification())
            if answer is None:
                wait = 10.0
            else:
                self.registration = answer.status
                self.stats.boots[answer.status] += 1
                if answer.status == "Accepted":
                    if answer.interval > 0:
                        self._set_heartbeat(answer.interval)
                    return
                wait = float(answer.interval) if answer.interval > 0 else 10.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._boot_now.wait(), wait)

    def _boot_notification(self) -> Any:
        return call.BootNotification(
            charge_point_vendor=self.profile.vendor,
            charge_point_model=self.profile.model,
            charge_point_serial_number=self.id[-25:],
            firmware_version=self.profile.firmware,
        )

    def _set_heartbeat(self, interval: float) -> None:
        self._interval = interval
        if "HeartbeatInterval" in self.config:
            self.config["HeartbeatInterval"] = f"{interval:g}"
        self._heartbeat_changed.set()

    # -- sessions --------------------------------------------------------------------------------------------

    async def _connector_loop(self, c: Connector) -> None:
        if c.stopping is not None:
            await self._send_stop(c)
        elif c.transaction_id is not None:
            await self._charge(c)
        while self._halt_reason is None:
            c.wake.clear()
            now = self._loop_time()
            if c.remote is not None:
                id_tag, profile = c.remote
                c.remote = None
                await self._session(c, id_tag, remote=True, profile=profile)
                continue
            automatic = self.behaviour.idle is not None
            if automatic and now >= c.next_session:
                c.next_session = now + self._idle_time()
                reservation = self._reservation(c)
                tag = reservation.id_tag if reservation else self.behaviour.id_tag
                if self._free(c, tag):
                    c.busy = True
                    await self._session(c, tag, remote=False)
                    c.next_session = self._loop_time() + self._idle_time()
                continue
            timeout = c.next_session - now if automatic else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.wake.wait(), timeout)

    async def _session(
        self, c: Connector, id_tag: str, *, remote: bool, profile: dict[str, Any] | None = None
    ) -> None:
        """One session from plug-in to unplugging (c.busy is set by the caller)."""
        try:
            await self._start_session(c, id_tag, remote, profile)
        finally:
            if c.transaction_id is None and c.stopping is None:
                c.busy = False
        if c.transaction_id is None and c.status == "Preparing":
            await self._status(c, self._idle_status(c))  # not authorized, or not started: the car leaves

    async def _start_session(
        self, c: Connector, id_tag: str, remote: bool, profile: dict[str, Any] | None
    ) -> None:
        await self._status(c, "Preparing")
        if not remote or self.config.get("AuthorizeRemoteTxRequests") == "true":
            answer = await self._call(call.Authorize(id_tag=id_tag))
            if answer is not None and answer.id_tag_info.get("status") != "Accepted":
                self.stats.refused += 1
                return
        if self._halt_reason is not None:
            return
        reservation = self._reservation(c)
        mine = reservation is not None and reservation.id_tag.lower() == id_tag.lower()
        reservation_id = reservation.reservation_id if reservation is not None and mine else None
        meter_start = int(c.meter.energy_wh)
        started = datetime.now(UTC)
        answer = await self._call(
            call.StartTransaction(
                connector_id=c.connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                timestamp=iso(started),
                reservation_id=reservation_id,
            )
        )
        if answer is None:
            return
        if reservation_id is not None:
            c.reservation = None
        c.transaction_id, c.id_tag, c.meter_start, c.started_at = (
            answer.transaction_id,
            id_tag,
            meter_start,
            started,
        )
        c.ends_at = self._loop_time() + self.behaviour.session * self.rng.uniform(0.5, 1.5)
        c.car = self._new_car()
        c.meter.updated = self._loop_time()
        self.stats.sessions_started += 1
        if profile is not None:
            installed = InstalledProfile.from_ocpp(c.connector_id, profile, started)
            self.profiles.install(installed, self._rules(), self._transactions())
        if answer.id_tag_info.get("status") != "Accepted":
            self.stats.refused += 1
            c.stop_reason = "DeAuthorized"
        self._refresh()
        await self._status(c, c.meter.point.status)
        await self._charge(c)

    async def _charge(self, c: Connector) -> None:
        """Meter values until the car leaves or a stop is asked for, then StopTransaction. A new
        MeterValueSampleInterval takes effect at once."""
        last_sample = self._loop_time()
        while True:
            c.wake.clear()
            reason = c.stop_reason or self._halt_reason
            now = self._loop_time()
            if reason is None and now >= c.ends_at:
                reason = self.rng.choice(("EVDisconnected", "Local"))
            if reason is not None:
                break
            await self._send_statuses(self._refresh())
            interval = self._sample_interval()
            if interval > 0 and now >= last_sample + interval:
                await self._meter_values(c, "Sample.Periodic")
                last_sample = now
            wake_at = min(c.ends_at, last_sample + interval) if interval > 0 else c.ends_at
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.wake.wait(), max(0.0, wake_at - self._loop_time()))
        self._refresh()
        c.stopping = (reason, int(c.meter.energy_wh), iso(datetime.now(UTC)))
        await self._send_stop(c)

    async def _send_stop(self, c: Connector) -> None:
        assert c.stopping is not None and c.transaction_id is not None
        reason, meter_stop, timestamp = c.stopping
        end = [
            {
                "timestamp": timestamp,
                "sampled_value": [
                    {
                        "value": str(meter_stop),
                        "context": "Transaction.End",
                        "measurand": "Energy.Active.Import.Register",
                        "unit": "Wh",
                    }
                ],
            }
        ]
        await self._call(
            call.StopTransaction(
                meter_stop=meter_stop,
                timestamp=timestamp,
                transaction_id=c.transaction_id,
                reason=reason,
                id_tag=c.id_tag if reason == "Local" else None,
                transaction_data=end,
            )
        )
        self.stats.sessions_ended += 1
        self.profiles.transaction_ended(c.transaction_id)
        c.transaction_id, c.id_tag, c.car, c.stopping, c.stop_reason = None, None, None, None, None
        c.meter.point = IDLE
        self._refresh()
        if reason in ("SoftReset", "HardReset") or self._halt_reason is not None:
            c.busy = False
            return
        await self._status(c, "Finishing")
        await asyncio.sleep(self.behaviour.unplug * self.rng.uniform(0.5, 1.5))
        if c.scheduled is not None:
            c.operative, c.scheduled = c.scheduled, None
        c.busy = False
        await self._status(c, self._idle_status(c))

    async def _meter_values(self, c: Connector, context: str) -> None:
        self._refresh()
        point = c.meter.point
        values: list[dict[str, Any]] = [
            _sample(f"{int(c.meter.energy_wh)}", context, "Energy.Active.Import.Register", "Wh"),
            _sample(f"{point.power:.0f}", context, "Power.Active.Import", "W"),
        ]
        if self.profile.dc:
            values.append(_sample(f"{point.current:.1f}", context, "Current.Import", "A"))
            voltage = point.voltage or dc_voltage(c.car.soc if c.car else 0.0)
            values.append(_sample(f"{voltage:.1f}", context, "Voltage", "V"))
            if c.car is not None:
                values.append(_sample(f"{c.car.soc:.0f}", context, "SoC", "Percent"))
        else:
            for phase in ("L1", "L2", "L3")[: self.profile.phases]:
                values.append(_sample(f"{point.current:.1f}", context, "Current.Import", "A", phase))
        await self._call(
            call.MeterValues(
                connector_id=c.connector_id,
                transaction_id=c.transaction_id,
                meter_value=[{"timestamp": iso(datetime.now(UTC)), "sampled_value": values}],
            )
        )

    # -- physics ---------------------------------------------------------------------------------------------

    def _refresh(self) -> list[Connector]:
        """Integrate every meter up to now and set the operating points the limits allow; returns the connectors
        whose status changes (their `status` is not updated: sending it does that)."""
        now = self._loop_time()
        moment = datetime.now(UTC)
        drawing = [c for c in self.connectors.values() if c.transaction_id is not None and c.stopping is None]
        changed = []
        for c in self.connectors.values():
            c.meter.advance(now, c.car)
            if c not in drawing or c.car is None:
                c.meter.point = IDLE
                continue
            voltage = dc_voltage(c.car.soc) if self.profile.dc else self.profile.voltage
            limit = self.profiles.connector_limit(
                c.connector_id,
                moment,
                Converter(self.profile, voltage),
                c.transaction_id,
                c.started_at,
                sharing=len(drawing),
            )
            c.meter.point = operating_point(self.profile, c.car, limit, self.cap())
            if c.status in ("Charging", "SuspendedEVSE", "SuspendedEV") and c.meter.point.status != c.status:
                changed.append(c)
        return changed

    def cap(self) -> float | None:
        """The current the configuration allows (A), if a key caps it."""
        caps = []
        for key in self.profile.current_caps:
            with contextlib.suppress(KeyError, ValueError):
                caps.append(float(self.config[key]))
        return min(caps) if caps else None

    def applied_limit(self, connector_id: int) -> float | None:
        """The limit in force for a connector (A) from the charging profiles, before caps."""
        c = self.connectors[connector_id]
        voltage = dc_voltage(c.car.soc) if self.profile.dc and c.car else self.profile.voltage
        return self.profiles.connector_limit(
            connector_id, datetime.now(UTC), Converter(self.profile, voltage), c.transaction_id, c.started_at
        )

    def energy_wh(self) -> float:
        """Energy delivered since this charger was made, up to now."""
        now = self._loop_time()
        total = 0.0
        for c in self.connectors.values():
            running = c.meter.point.power * max(0.0, now - c.meter.updated) / 3600.0
            total += c.meter.energy_wh + running - c.initial_wh
        return total

    def charging(self) -> int:
        return sum(1 for c in self.connectors.values() if c.status == "Charging")

    def _new_car(self) -> Car:
        if self.profile.dc:
            return Car(
                max_current=500.0,
                max_power=self.rng.choice((50_000.0, 100_000.0, 150_000.0)),
                battery_wh=self.rng.choice((40_000.0, 60_000.0, 80_000.0)),
                soc=self.rng.uniform(10.0, 60.0),
            )
        return Car(max_current=32.0)

    def _rules(self) -> ProfileRules:
        text = self.config.get(
            "ChargingScheduleAllowedChargingRateUnit",
            self.config.get("ChargeScheduleAllowedChargingRateUnit", ""),
        )
        units = {unit for name, unit in (("Current", "A"), ("Power", "W")) if name in text} or {"A", "W"}
        return ProfileRules(
            connectors=self.profile.connectors,
            units=frozenset(units),
            max_stack_level=_int(self.config.get("ChargeProfileMaxStackLevel"), 8),
            max_periods=_int(self.config.get("ChargingScheduleMaxPeriods"), 24),
            max_installed=_int(self.config.get("MaxChargingProfilesInstalled"), 16),
        )

    def _transactions(self) -> dict[int, int]:
        return {n: c.transaction_id for n, c in self.connectors.items() if c.transaction_id is not None}

    # -- helpers ---------------------------------------------------------------------------------------------

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def _idle_time(self, first: bool = False) -> float:
        mean = self.behaviour.idle or 0.0
        return mean * (self.rng.uniform(0.0, 1.0) if first else self.rng.uniform(0.5, 1.5))

    def _sample_interval(self) -> float:
        try:
            return max(0.0, float(self.config.get("MeterValueSampleInterval", self.behaviour.interval)))
        except ValueError:
            return self.behaviour.interval

    def _reservation(self, c: Connector) -> Reservation | None:
        if c.reservation is not None and c.reservation.expiry <= datetime.now(UTC):
            c.reservation = None
        return c.reservation

    def _free(self, c: Connector, id_tag: str) -> bool:
        reservation = self._reservation(c)
        return (
            c.operative
            and not c.busy
            and c.transaction_id is None
            and (reservation is None or reservation.id_tag.lower() == id_tag.lower())
        )

    def _idle_status(self, c: Connector) -> str:
        if not c.operative:
            return "Unavailable"
        return "Reserved" if self._reservation(c) else "Available"

    async def _status(self, c: Connector, status: str) -> None:
        c.status = status
        await self._call(
            call.StatusNotification(
                connector_id=c.connector_id,
                error_code="NoError",
                status=status,
                timestamp=iso(datetime.now(UTC)),
            )
        )

    async def _status0(self, status: str) -> None:
        self.status0 = status
        await self._call(
            call.StatusNotification(
                connector_id=0, error_code="NoError", status=status, timestamp=iso(datetime.now(UTC))
            )
        )

    async def _send_statuses(self, connectors: list[Connector]) -> None:
        for c in connectors:
            if c.transaction_id is not None and c.stopping is None:
                await self._status(c, c.meter.point.status)

    async def _call(self, payload: Any) -> Any:
        """Send a call the profile sends (anything else is not sent: None); a CALLERROR or no answer is counted
        and gives None. A closed connection raises."""
        action = type(payload).__name__
        if action not in self.profile.sends:
            return None
        try:
            return await self.call(payload, suppress=False)
        except OCPPError as error:
            self.stats.errors_received[f"{action}: {error.code}"] += 1
            self.stats.problem(f"{self.id}: {action} got CALLERROR {error.code}: {error.description}")
        except TimeoutError:
            if self.connected:
                self.stats.problem(f"{self.id}: no answer to {action} within {self._response_timeout} s")
        return None

    def _after(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `work` once the answer to the call being handled is sent (a handler must not call: the answer
        to its call would wait behind it)."""
        self._follow_ups.append(work)

    # -- frames ----------------------------------------------------------------------------------------------

    async def route_message(self, raw_msg: str | bytes) -> None:
        frame: Any = None
        try:
            frame = json.loads(raw_msg)
            is_call = isinstance(frame, list) and len(frame) >= 3 and frame[0] == 2
        except ValueError:
            is_call = False
        if is_call:
            action = str(frame[2])
            self.stats.received[action] += 1
            if self.registration == "Rejected":
                return  # OCPP 1.6 §4.2: a rejected charger answers nothing
            code = self.profile.refusal(action)
            if code is not None:
                await self._send(CallError(frame[1], code, _DESCRIPTIONS[code], {}).to_json())
                return
        elif isinstance(frame, list) and frame and frame[0] in (3, 4):
            self.stats.received["CALLRESULT" if frame[0] == 3 else "CALLERROR"] += 1
        await super().route_message(raw_msg)

    async def _handle_call(self, msg: Any) -> Any:
        self._follow_ups = []
        response = await super()._handle_call(msg)
        follow_ups, self._follow_ups = self._follow_ups, []
        for work in follow_ups:
            self._spawn(work(), f"{msg.action} follow-up")
        return response

    async def _send(self, message: str) -> None:
        await super()._send(message)
        frame = json.loads(message)
        if frame[0] == 2:
            self.stats.sent[frame[2]] += 1
        elif frame[0] == 4:
            self.stats.errors_sent[frame[2]] += 1
            if frame[2] not in REFUSALS:
                self.stats.problem(f"{self.id}: answered CALLERROR {frame[2]}: {frame[3]}")

    # -- Core ------------------------------------------------------------------------------------------------

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str) -> Any:
        if connector_id != 0 and connector_id not in self.connectors:
            return call_result.ChangeAvailability(status="Rejected")
        operative = type == "Operative"
        targets = list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        scheduled = False
        to_report: list[Connector] = []
        for c in targets:
            if c.busy or c.transaction_id is not None:
                c.scheduled = None if c.operative == operative else operative
                scheduled = scheduled or c.scheduled is not None
            else:
                c.operative, c.scheduled = operative, None
                if not operative:
                    c.reservation = None
                if c.status != self._idle_status(c):
                    to_report.append(c)
        report0 = connector_id == 0 and self.operative != operative
        if connector_id == 0:
            self.operative = operative

        async def report() -> None:
            if report0:
                await self._status0("Available" if operative else "Unavailable")
            for c in to_report:
                if not c.busy:
                    await self._status(c, self._idle_status(c))

        self._after(report)
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str) -> Any:
        if key not in self.config:
            return call_result.ChangeConfiguration(status="NotSupported")
        if key in self.readonly or not _fits(self._default(key), value):
            return call_result.ChangeConfiguration(status="Rejected")
        self.config[key] = value
        if key == "HeartbeatInterval":
            self._set_heartbeat(float(value))
        elif key == "MeterValueSampleInterval":
            for c in self.connectors.values():
                c.wake.set()
        elif key in self.profile.current_caps:
            changed = self._refresh()
            self._after(lambda: self._send_statuses(changed))
        return call_result.ChangeConfiguration(status="Accepted")

    def _default(self, key: str) -> str:
        entry = self.profile.config(key)
        return entry.value if entry else ""

    @on("ClearCache")
    def on_clear_cache(self) -> Any:
        return call_result.ClearCache(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: str | None = None) -> Any:
        if vendor_id not in self.profile.vendor_ids:
            return call_result.DataTransfer(status="UnknownVendorId")
        return call_result.DataTransfer(status="Accepted", data=data)

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        names = key or list(self.config)
        known = [
            {"key": name, "readonly": name in self.readonly, "value": self.config[name]}
            for name in names
            if name in self.config
        ]
        unknown = [name for name in names if name not in self.config]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("RemoteStartTransaction")
    def on_remote_start_transaction(
        self, id_tag: str, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None
    ) -> Any:
        if charging_profile is not None and charging_profile.get("charging_profile_purpose") != TX:
            return call_result.RemoteStartTransaction(status="Rejected")
        if connector_id is not None:
            c = self.connectors.get(connector_id)
            chosen = c if c is not None and self._free(c, id_tag) else None
        else:
            chosen = next((c for c in self.connectors.values() if self._free(c, id_tag)), None)
        if chosen is None or not self.operative:
            return call_result.RemoteStartTransaction(status="Rejected")
        chosen.busy = True
        chosen.remote = (id_tag, charging_profile)
        chosen.wake.set()
        return call_result.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def on_remote_stop_transaction(self, transaction_id: int) -> Any:
        for c in self.connectors.values():
            if c.transaction_id == transaction_id and c.stopping is None:
                c.stop_reason = "Remote"
                c.wake.set()
                return call_result.RemoteStopTransaction(status="Accepted")
        return call_result.RemoteStopTransaction(status="Rejected")

    @on("Reset")
    def on_reset(self, type: str) -> Any:
        async def reset() -> None:
            self._reset_type = type
            self._reset_requested.set()

        self._after(reset)
        return call_result.Reset(status="Accepted")

    @on("UnlockConnector")
    def on_unlock_connector(self, connector_id: int) -> Any:
        c = self.connectors.get(connector_id)
        if c is None:
            return call_result.UnlockConnector(status="UnlockFailed")
        if c.transaction_id is not None and c.stopping is None:
            c.stop_reason = "UnlockCommand"
            c.wake.set()
        return call_result.UnlockConnector(status="Unlocked")

    # -- Firmware Management ---------------------------------------------------------------------------------

    @on("GetDiagnostics")
    def on_get_diagnostics(self, location: str, **_: Any) -> Any:
        async def upload() -> None:
            for index, status in enumerate(("Uploading", "Uploaded")):
                await asyncio.sleep(self.behaviour.step if index else 0)
                await self._call(call.DiagnosticsStatusNotification(status=status))

        self._after(upload)
        return call_result.GetDiagnostics(file_name=f"{self.id}-diagnostics.zip"[:255])

    @on("UpdateFirmware")
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> Any:
        async def update() -> None:
            start = parse_time(retrieve_date) or datetime.now(UTC)
            await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
            for index, status in enumerate(("Downloading", "Downloaded", "Installing", "Installed")):
                await asyncio.sleep(self.behaviour.step if index else 0)
                await self._call(call.FirmwareStatusNotification(status=status))

        self._after(update)
        return call_result.UpdateFirmware()

    # -- Local Auth List Management --------------------------------------------------------------------------

    @on("GetLocalListVersion")
    def on_get_local_list_version(self) -> Any:
        if self.config.get("LocalAuthListEnabled") == "false":
            return call_result.GetLocalListVersion(list_version=-1)
        return call_result.GetLocalListVersion(list_version=self.local_list.version)

    @on("SendLocalList")
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
    ) -> Any:
        if self.config.get("LocalAuthListEnabled") == "false":
            return call_result.SendLocalList(status="NotSupported")
        limit = _int(self.config.get("LocalAuthListMaxLength"), 1000)
        status = self.local_list.update(list_version, update_type, local_authorization_list or [], limit)
        return call_result.SendLocalList(status=status)

    # -- Reservation -----------------------------------------------------------------------------------------

    @on("ReserveNow")
    def on_reserve_now(
        self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int, **_: Any
    ) -> Any:
        c = self.connectors.get(connector_id)
        if c is None:
            return call_result.ReserveNow(status="Rejected")
        if not c.operative:
            return call_result.ReserveNow(status="Unavailable")
        held = self._reservation(c)
        if c.busy or c.transaction_id is not None or (held and held.reservation_id != reservation_id):
            return call_result.ReserveNow(status="Occupied")
        expiry = parse_time(expiry_date) or datetime.now(UTC)
        c.reservation = Reservation(reservation_id, id_tag, expiry)

        async def reserved() -> None:
            await self._status(c, "Reserved")
            await asyncio.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()))
            if c.reservation is not None and c.reservation.reservation_id == reservation_id and not c.busy:
                c.reservation = None
                await self._status(c, self._idle_status(c))

        self._after(reserved)
        return call_result.ReserveNow(status="Accepted")

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int) -> Any:
        held = [
            c
            for c in self.connectors.values()
            if c.reservation and c.reservation.reservation_id == reservation_id
        ]
        if not held:
            return call_result.CancelReservation(status="Rejected")
        c = held[0]
        c.reservation = None
        if not c.busy:
            self._after(lambda: self._status(c, self._idle_status(c)))
        return call_result.CancelReservation(status="Accepted")

    # -- Smart Charging --------------------------------------------------------------------------------------

    @on("SetChargingProfile")
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        profile = InstalledProfile.from_ocpp(connector_id, cs_charging_profiles, datetime.now(UTC))
        status = self.profiles.install(profile, self._rules(), self._transactions())
        if status == "Accepted":
            changed = self._refresh()
            self._after(lambda: self._send_statuses(changed))
        return call_result.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        status = self.profiles.clear(id, connector_id, charging_profile_purpose, stack_level)
        if status == "Accepted":
            changed = self._refresh()
            self._after(lambda: self._send_statuses(changed))
        return call_result.ClearChargingProfile(status=status)

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None
    ) -> Any:
        unit = charging_rate_unit or "A"
        if (connector_id != 0 and connector_id not in self.connectors) or unit not in self._rules().units:
            return call_result.GetCompositeSchedule(status="Rejected")
        c = self.connectors.get(connector_id)
        voltage = dc_voltage(c.car.soc) if self.profile.dc and c and c.car else self.profile.voltage
        cap = self.cap()
        rating = self.profile.max_current
        if connector_id != 0 and cap is not None:
            rating = min(rating, cap)
        now = datetime.now(UTC)
        periods = self.profiles.composite(
            connector_id,
            now,
            duration,
            Converter(self.profile, voltage),
            c.transaction_id if c else None,
            c.started_at if c else None,
            default=rating,
        )
        schedule = {
            "duration": duration,
            "start_schedule": iso(now),
            "charging_rate_unit": unit,
            "charging_schedule_period": [
                {"start_period": start, "limit": round(from_amps(value, unit, self.profile, voltage), 1)}
                for start, value in periods
            ],
        }
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=iso(now), charging_schedule=schedule
        )

    # -- Remote Trigger --------------------------------------------------------------------------------------

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None) -> Any:
        if requested_message not in TRIGGERABLE or requested_message not in self.profile.sends:
            return call_result.TriggerMessage(status="NotImplemented")
        if connector_id is not None and connector_id not in self.connectors and connector_id != 0:
            return call_result.TriggerMessage(status="Rejected")
        self._after(lambda: self._triggered(requested_message, connector_id))
        return call_result.TriggerMessage(status="Accepted")

    async def _triggered(self, message: str, connector_id: int | None) -> None:
        targets = [c for n, c in self.connectors.items() if connector_id in (None, 0, n)]
        if message == "BootNotification":
            if self.registration != "Accepted":
                self._boot_now.set()
            else:
                answer = await self._call(self._boot_notification())
                if answer is not None:
                    self.stats.boots[answer.status] += 1
        elif message == "Heartbeat":
            await self._call(call.Heartbeat())
        elif message == "StatusNotification":
            if connector_id in (None, 0):
                await self._status0(self.status0)
            for c in targets if connector_id != 0 else []:
                await self._status(c, c.status)
        elif message == "MeterValues":
            for c in targets:
                await self._meter_values(c, "Trigger")
        elif message == "DiagnosticsStatusNotification":
            await self._call(call.DiagnosticsStatusNotification(status="Idle"))
        elif message == "FirmwareStatusNotification":
            await self._call(call.FirmwareStatusNotification(status="Idle"))


def _sample(value: str, context: str, measurand: str, unit: str, phase: str | None = None) -> dict[str, Any]:
    sample = {"value": value, "context": context, "measurand": measurand, "unit": unit}
    if phase is not None:
        sample["phase"] = phase
    return sample


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _fits(default: str, value: str) -> bool:
    """A new value of a key looks like the key's value: a number stays a number, a boolean a boolean."""
    if default.lower() in ("true", "false"):
        return value.lower() in ("true", "false")
    try:
        float(default)
    except ValueError:
        return True
    try:
        return float(value) >= 0
    except ValueError:
        return False
