"""OCPP-J RPC framing checks shared by every OCPP version: size, JSON, the frame's shape.

A frame that fails is answered with a CALLERROR when its unique id can be found (even in broken JSON, by looking
at the start of the text), and only logged when it cannot; either way the connection stays up.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_UNIQUE_ID_LENGTH = 36

# The unique id of a CALL, read off the start of a frame that cannot be parsed as a whole.
_CALL_ID = re.compile(r'\s*\[\s*2\s*,\s*"((?:[^"\\]|\\.){1,36})"')


class ConnectionLost(Exception):
    """The WebSocket under an OCPP-J session closed."""

    def __init__(self, code: int) -> None:
        super().__init__(f"closed with code {code}")
        self.code = code


class FrameFault(Enum):
    """What is wrong with a frame; each OCPP version names the matching CALLERROR code."""

    FORMAT = "format"  # not a well-formed RPC frame (1.6: FormationViolation, 2.0.1: FormatViolation)
    PROTOCOL = "protocol"  # a frame that is incomplete (ProtocolError)


class FrameError(Exception):
    """A frame that cannot be routed; `unique_id` is None when the sender cannot be answered."""

    def __init__(self, fault: FrameFault, description: str, unique_id: Any = None) -> None:
        super().__init__(description)
        self.fault = fault
        self.description = description
        self.unique_id = unique_id


@dataclass(frozen=True)
class Frame:
    """A well-formed frame: a CALL (action and payload set), a CALLRESULT or a CALLERROR."""

    message_type: int
    unique_id: str
    action: str | None
    payload: Any
    raw: str


def recover_call_id(text: str) -> str | None:
    """The unique id of a CALL frame whose text cannot be parsed, if the start of the text shows it."""
    match = _CALL_ID.match(text[:128])
    if match is None:
        return None
    try:
        unique_id: str = json.loads(f'"{match.group(1)}"')
    except ValueError:  # an id with a broken escape cannot be echoed back faithfully
        return None
    return unique_id


def parse_frame(raw: str | bytes, max_bytes: int) -> Frame:
    """Check one WebSocket message and return it as a `Frame`, or raise `FrameError`."""
    if isinstance(raw, bytes):
        text = raw.decode("utf-8", errors="replace")
        raise FrameError(
            FrameFault.FORMAT, "OCPP-J messages are text frames, got a binary frame", recover_call_id(text)
        )
    # A byte order mark has no place in a WebSocket text frame (RFC 8259 §8.1), but some chargers' JSON writers
    # put one there: it is read past, so the message is answered rather than lost.
    raw = raw.removeprefix("\ufeff")
    size = len(raw) if len(raw) * 4 <= max_bytes else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise FrameError(
            FrameFault.FORMAT,
            f"message of {size} bytes exceeds the limit of {max_bytes} bytes",
            recover_call_id(raw),
        )
    try:
        frame = json.loads(raw, parse_constant=_not_json)
    except ValueError as exc:
        raise FrameError(
            FrameFault.FORMAT, f"message is not valid JSON: {exc}", recover_call_id(raw)
        ) from None
    except RecursionError:
        raise FrameError(FrameFault.FORMAT, "message is nested too deeply", recover_call_id(raw)) from None
    if not isinstance(frame, list) or not frame:
        raise FrameError(FrameFault.FORMAT, "message is not an OCPP-J array [MessageTypeId, UniqueId, ...]")
    message_type = frame[0]
    unique_id = frame[1] if len(frame) > 1 and isinstance(frame[1], str | int) else None
    if isinstance(message_type, bool) or not isinstance(message_type, int):
        raise FrameError(
            FrameFault.FORMAT, "MessageTypeId must be the number 2, 3 or 4", _answerable(frame, unique_id)
        )
    if message_type == CALL:
        return _call(frame, unique_id, raw)
    if (
        message_type == CALLRESULT
        and len(frame) == 3
        and isinstance(unique_id, str)
        and isinstance(frame[2], dict)
    ):
        return Frame(CALLRESULT, unique_id, None, frame[2], raw)
    if message_type == CALLERROR and len(frame) == 5 and isinstance(unique_id, str):
        return Frame(CALLERROR, unique_id, None, frame[2:], raw)
    if message_type in (CALLRESULT, CALLERROR):
        # A broken answer cannot be answered; the call waiting for it times out.
        raise FrameError(
            FrameFault.FORMAT, f"malformed {'CALLRESULT' if message_type == 3 else 'CALLERROR'} frame"
        )
    raise FrameError(FrameFault.FORMAT, f"unknown MessageTypeId {message_type}", unique_id)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _answerable(frame: list[Any], unique_id: Any) -> Any:
    return unique_id if frame and frame[0] in (CALL, str(CALL)) else None


def _call(frame: list[Any], unique_id: Any, raw: str) -> Frame:
    if unique_id is None:
        raise FrameError(FrameFault.FORMAT, "CALL without a UniqueId string")
    if not isinstance(unique_id, str):
        raise FrameError(FrameFault.FORMAT, "UniqueId must be a string", unique_id)
    if not unique_id or len(unique_id) > MAX_UNIQUE_ID_LENGTH:
        raise FrameError(
            FrameFault.FORMAT, f"UniqueId must be 1 to {MAX_UNIQUE_ID_LENGTH} characters", unique_id
        )
    if len(frame) < 4:
        raise FrameError(
            FrameFault.PROTOCOL, "CALL needs 4 elements: [2, UniqueId, Action, Payload]", unique_id
        )
    if len(frame) > 4:
        raise FrameError(FrameFault.FORMAT, "CALL has more than 4 elements", unique_id)
    action, payload = frame[2], frame[3]
    if not isinstance(action, str) or not action:
        raise FrameError(FrameFault.FORMAT, "Action must be a non-empty string", unique_id)
    if not isinstance(payload, dict):
        raise FrameError(FrameFault.FORMAT, "Payload must be a JSON object", unique_id)
    return Frame(CALL, unique_id, action, payload, raw)
