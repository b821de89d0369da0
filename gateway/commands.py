"""The command service: the one place that sends central-system messages to chargers.

Every command (from the API, a BMS write or the gateway itself) goes through `CommandService.send`. Calls to one
charger queue behind each other; calls to different chargers run concurrently. Each call ends in one recorded
outcome: accepted, rejected, not supported, timed out, charger offline, or failed (a CALLERROR or a bad answer).
A charger whose connection drops fails its pending and queued calls at once instead of at the timeout.

Commands are never sent from inside a message handler (the library's call lock would deadlock with the answer
the charger is waiting for): follow-ups such as reading the configuration after a boot run as tasks here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload
from ocpp.v16 import call

from gateway.plausibility import safe_value
from gateway.state import iso, utcnow

if TYPE_CHECKING:
    from gateway.central import CentralSystem
    from gateway.connections import Connections

LOG = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How a command ended, in the words the API and the points use."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NOT_SUPPORTED = "not-supported"
    TIMED_OUT = "timed-out"
    OFFLINE = "offline"
    FAILED = "failed"


# Answer statuses that mean the charger did (or will do) what was asked.
_DONE = frozenset({"Accepted", "Unlocked", "RebootRequired", "Scheduled"})
# Answer statuses that mean the charger cannot do this kind of thing at all (TriggerMessage answers NotImplemented).
_UNSUPPORTED = frozenset({"NotSupported", "NotImplemented", "UnknownVendorId", "UnknownMessageId"})
_UNSUPPORTED_ERRORS = frozenset({"NotSupported", "NotImplemented"})


@dataclass(frozen=True)
class CommandResult:
    """One command and how it ended. `status` is the charger's own answer status, verbatim."""

    charger_id: str
    action: str
    request: dict[str, Any]
    source: str
    outcome: Outcome
    status: str | None
    response: dict[str, Any] | None
    detail: str
    sent_at: datetime
    finished_at: datetime

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    def summary(self) -> str:
        """`Reset(type=Soft): accepted` and the like, for the message log and the `last_command` point."""
        arguments = ", ".join(f"{k}={_short(v)}" for k, v in self.request.items() if v is not None)
        answer = self.status if self.status and self.status != "Accepted" else self.outcome.value
        extra = f" ({self.detail})" if self.detail and self.outcome is not Outcome.ACCEPTED else ""
        return f"{self.action}({arguments}): {answer}{extra}"


def _wire(payload: Any) -> dict[str, Any]:
    """A library payload as it goes over the wire (camelCase, no nulls)."""
    wire: dict[str, Any] = snake_to_camel_case(remove_nones(serialize_as_dict(payload)))
    return wire


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 60 else text[:57] + "..."


class CommandError(ValueError):
    """A command that cannot be sent as asked (the 1.6 schema refuses its payload); nothing was sent."""


ResultListener = Callable[[CommandResult], None]


class CommandService:
    """Sends OCPP calls to connected chargers and records every outcome."""

    def __init__(self, central: CentralSystem, connections: Connections) -> None:
        self.central = central
        self.connections = connections
        self.listeners: list[ResultListener] = []
        self._queues: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- sending ---------------------------------------------------------------------------------------------

    async def send(
        self, charger_id: str, action: str, payload: dict[str, Any], *, source: str
    ) -> CommandResult:
        """Send one call (`action` is the 1.6 action name, `payload` its fields in snake_case) and wait for its
        outcome, which is recorded with the request and answer as they went over the wire (camelCase).
        Never raises for what the charger does."""
        request = getattr(call, action)(**payload)
        payload = _wire(request)
        try:
            await validate_payload(Call("-", action, payload), "1.6")
        except OCPPError as exc:
            cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
            raise CommandError(f"{action}: {cause or exc.description}") from None
        except (ArithmeticError, ValueError) as exc:  # the schema check itself failed on the value (1e308)
            raise CommandError(f"{action}: a value cannot be sent: {exc}") from None
        sent_at = utcnow()
        session = self.connections.get(charger_id)
        if session is not None and asyncio.current_task() is session.task:
            # The charger's message loop would wait for our answer while we wait for its: a deadlock.
            raise RuntimeError("a command cannot be sent from inside a message handler: spawn() it")
        lock = self._queues.setdefault(charger_id, asyncio.Lock())
        async with lock:
            session = self.connections.get(charger_id)
            if session is None or session.ended.done():
                result = self._result(
                    charger_id, action, payload, source, sent_at, Outcome.OFFLINE, "not connected"
                )
            else:
                result = await self._call(session, charger_id, action, request, payload, source, sent_at)
        self._record(result)
        return result

    async def _call(
        self,
        session: Any,
        charger_id: str,
        action: str,
        request: Any,
        payload: dict[str, Any],
        source: str,
        sent_at: datetime,
    ) -> CommandResult:
        def ended(
            outcome: Outcome, detail: str, status: str | None = None, response: Any = None
        ) -> CommandResult:
            return self._result(
                charger_id, action, payload, source, sent_at, outcome, detail, status, response
            )

        attempt = asyncio.create_task(
            session.charge_point.call(request, suppress=False), name=f"{action}-{charger_id}"
        )
        await asyncio.wait([attempt, session.ended], return_when=asyncio.FIRST_COMPLETED)
        if not attempt.done():
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            return ended(Outcome.OFFLINE, "the connection closed before the answer")
        error = attempt.exception()
        if isinstance(error, TimeoutError):
            return ended(Outcome.TIMED_OUT, f"no answer within {self.central.settings.response_timeout:g} s")
        if isinstance(error, OCPPError):
            description = error.description or ""
            if error.code in _UNSUPPORTED_ERRORS:
                return ended(Outcome.NOT_SUPPORTED, f"CALLERROR {error.code}: {description}".strip(": "))
            return ended(Outcome.FAILED, f"CALLERROR {error.code}: {description}".strip(": "))
        if error is not None:
            # An answer the 1.6 schema refuses, a CALLERROR code 1.6 does not define, or the socket failing.
            return ended(Outcome.FAILED, f"{type(error).__name__}: {error}")
        response = safe_value(_wire(attempt.result()))
        status = response.get("status")
        if status is None or status in _DONE:
            return ended(Outcome.ACCEPTED, "", status, response)
        outcome = Outcome.NOT_SUPPORTED if status in _UNSUPPORTED else Outcome.REJECTED
        return ended(outcome, "", status, response)

    def _result(
        self,
        charger_id: str,
        action: str,
        payload: dict[str, Any],
        source: str,
        sent_at: datetime,
        outcome: Outcome,
        detail: str,
        status: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> CommandResult:
        return CommandResult(
            charger_id, action, payload, source, outcome, status, response, detail, sent_at, utcnow()
        )

    def _record(self, result: CommandResult) -> None:
        self.central.log(result.charger_id, "Command", f"{result.summary()} [{result.source}]")
        self.central.store.execute_nowait(
            "INSERT INTO commands (charger_id, action, request, source, outcome, status, response, detail, "
            "sent_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.charger_id,
                result.action,
                json.dumps(result.request, default=str),
                result.source,
                result.outcome.value,
                result.status,
                json.dumps(result.response, default=str) if result.response is not None else None,
                result.detail,
                iso(result.sent_at),
                iso(result.finished_at),
            ),
        )
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                LOG.exception("command listener failed")

    # -- follow-ups ------------------------------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a follow-up (never inside a message handler's call); stopped with the service."""
        if self._closed:
            work.close()
            return
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error("%s failed", task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        """Stop every follow-up task and wait for them."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
