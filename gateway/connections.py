"""The OCPP WebSocket endpoint: subprotocol negotiation, charge point ids, one live connection per charger."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gateway.central import CentralSystem
from gateway.identity import identity_problem
from gateway.ocpp16.charge_point import SUBPROTOCOL as OCPP16
from gateway.ocpp16.charge_point import ChargePoint16
from gateway.ocppj import ConnectionLost

LOG = logging.getLogger(__name__)

ChargePointFactory = Callable[[str, Any, CentralSystem], Any]
# Subprotocols we speak, in our order of preference; OCPP 2.0.1 joins here later.
PROTOCOLS: dict[str, ChargePointFactory] = {OCPP16: ChargePoint16}

CLOSE_REPLACED = 4000  # private-use code: a newer connection with the same charge point id took over
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002


class WebSocketConnection:
    """Adapts a Starlette WebSocket to the `recv()`/`send()` the ocpp library's ChargePoint expects."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def recv(self) -> str | bytes:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise ConnectionLost(int(message.get("code") or 1005))
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def send(self, text: str) -> None:
        try:
            await self.websocket.send_text(text)
        except WebSocketDisconnect as exc:
            raise ConnectionLost(exc.code) from None


@dataclass(eq=False)
class Session:
    """One charger's live connection."""

    charger_id: str
    protocol: str
    websocket: WebSocket
    charge_point: Any
    task: asyncio.Task[Any] | None = None
    close_reason: str | None = field(default=None)
    # Done when the connection has ended: calls waiting for this charger's answers fail at once.
    ended: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    async def close(self, code: int, reason: str) -> None:
        self.close_reason = reason
        if self.websocket.application_state is WebSocketState.CONNECTED:
            try:
                await self.websocket.close(code=code, reason=reason)
            except Exception:  # the peer may already be gone; the session ends either way
                LOG.debug("closing %s", self.charger_id, exc_info=True)
        if self.task is not None:
            self.task.cancel()


class Connections:
    """Every open charger connection, one per charge point id."""

    def __init__(self, central: CentralSystem) -> None:
        self.central = central
        self.sessions: dict[str, Session] = {}
        self._serving: set[asyncio.Future[None]] = set()

    def get(self, charger_id: str) -> Session | None:
        return self.sessions.get(charger_id)

    async def serve(self, websocket: WebSocket, path: str) -> None:
        """Handle one WebSocket connection at `/<prefix...>/<chargePointId>` until it closes."""
        charger_id = path.rstrip("/").rsplit("/", 1)[-1]
        peer = f"{websocket.client.host}:{websocket.client.port}" if websocket.client else "?"
        problem = identity_problem(charger_id)
        if problem is not None:
            LOG.warning("refused connection from %s to /%s: %s", peer, path, problem)
            self.central.log(charger_id[:48] or "-", "Refused", f"from {peer}: {problem}")
            await _deny(websocket, 400, problem)
            return
        offered = list(websocket.scope.get("subprotocols") or [])
        protocol = next((name for name in PROTOCOLS if name in offered), None)
        if protocol is None:
            reason = f"no supported OCPP subprotocol offered (offered: {', '.join(offered) or 'none'}; "
            reason += f"supported: {', '.join(PROTOCOLS)})"
            LOG.warning("refused %s from %s: %s", charger_id, peer, reason)
            self.central.refused(charger_id, f"from {peer}: {reason}")
            # OCPP-J 1.6 §4.1.2 (2.0.1 part 4 §3.1.2): complete the handshake without a Sec-WebSocket-Protocol
            # header, then close at once.
            await websocket.accept()
            await websocket.close(code=CLOSE_PROTOCOL_ERROR, reason=_close_reason(reason))
            return
        await websocket.accept(subprotocol=protocol)
        charge_point = PROTOCOLS[protocol](charger_id, WebSocketConnection(websocket), self.central)
        session = Session(charger_id, protocol, websocket, charge_point)
        previous = self.sessions.get(charger_id)
        self.sessions[charger_id] = session
        if previous is not None:
            self.central.log(charger_id, "Replaced", "a new connection replaces the open one")
            await previous.close(CLOSE_REPLACED, "replaced by a new connection")
        self.central.connected(charger_id, protocol, peer)
        session.task = asyncio.create_task(charge_point.start(), name=f"ocpp-{charger_id}")
        served: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._serving.add(served)
        try:
            await asyncio.wait([session.task])
            session.ended.set_result(None)
            reason = _ending(session)
            if self.sessions.get(charger_id) is session:
                del self.sessions[charger_id]
                self.central.disconnected(charger_id, reason)
            LOG.info("%s: connection ended (%s)", charger_id, reason)
        finally:
            served.set_result(None)
            self._serving.discard(served)

    async def close_all(self) -> None:
        """Close every connection and wait until each one's end is recorded."""
        sessions = list(self.sessions.values())
        await asyncio.gather(*(s.close(CLOSE_GOING_AWAY, "gateway shutting down") for s in sessions))
        if self._serving:
            await asyncio.wait(list(self._serving), timeout=5)


def _close_reason(text: str) -> str:
    """A close frame's reason holds at most 123 bytes (RFC 6455 §5.5)."""
    encoded = text.encode("utf-8")
    return text if len(encoded) <= 123 else encoded[:120].decode("utf-8", "ignore") + "..."


def _ending(session: Session) -> str:
    task = session.task
    assert task is not None
    if task.cancelled():
        return session.close_reason or "closed by the gateway"
    error = task.exception()
    if isinstance(error, ConnectionLost):
        return f"closed by the charger (code {error.code})"
    if error is not None:
        LOG.error("%s: connection failed", session.charger_id, exc_info=error)
        return f"error: {error!r}"
    return "ended"


async def _deny(websocket: WebSocket, status: int, reason: str) -> None:
    """Refuse the WebSocket handshake with an HTTP answer that says why, where the server allows it."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(PlainTextResponse(reason + "\n", status_code=status))
    else:
        await websocket.close(code=1008, reason=_close_reason(reason))
