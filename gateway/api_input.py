"""What the REST API takes, checked before an endpoint sees it, as what a charger sends is: a JSON body holds only
valid Unicode and integers a database, a charger and a BMS can hold (±(2^53 - 1)), and a date-time can be put in
UTC. Anything else is a 422 that says which field, never a 500 or a row SQLite refuses afterwards.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.plausibility import Implausible, check_values

MAX_BODY = 1 << 20  # no request of this API is near a megabyte


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("the date-time is outside the calendar once put in UTC") from None


UtcDateTime = Annotated[datetime, AfterValidator(_in_utc)]
"""A date-time in UTC (one without a zone is taken as UTC); one that overflows there is refused."""


class JsonBodyCheck:
    """ASGI middleware: a JSON request body with invalid text or an integer out of range is answered 422."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                await JSONResponse({"detail": "request body too large"}, status_code=413)(
                    scope, receive, send
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = _problem(body)
        if problem is not None:
            await JSONResponse({"detail": problem}, status_code=422)(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _NotJson(ValueError):
    pass


def _not_json(name: str) -> object:
    raise _NotJson(f"{name} is not a JSON value")


def _problem(body: bytes) -> str | None:
    """Why a JSON body cannot be taken, or None (a body that is no JSON at all is left to the endpoint)."""
    if not body:
        return None
    try:
        text = body.decode("utf-8")
        payload = json.loads(text, parse_constant=_not_json)
    except _NotJson as exc:
        return str(exc)
    except ValueError:
        return None
    try:
        check_values(payload, text)
    except Implausible as exc:
        return f"{exc.field or 'body'}: {exc.reason}"
    return None
