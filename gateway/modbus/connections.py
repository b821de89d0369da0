"""The Modbus TCP listener and its connections: every request answered in the order it came, however many a
client pipelines; at most `modbus_max_connections` open at once, and a connection idle for
`modbus_idle_timeout` seconds closed (Modbus Messaging on TCP/IP Implementation Guide V1.0b §4.2)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gateway.modbus.framing import FrameReader, FramingError, encode

LOG = logging.getLogger(__name__)

Answer = Callable[[int, bytes], bytes]  # (unit, request PDU) -> response PDU


class Listener:
    """A TCP server whose connections are answered by `answer`."""

    def __init__(self, answer: Answer, max_connections: int, idle_timeout: float) -> None:
        self.answer = answer
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.open: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._full = False  # the limit was reached and logged; logged again once below it and reached again

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, reuse_address=True)

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self.open):
            connection.close()
        await self._server.wait_closed()
        self._server = None

    def admit(self, connection: Connection) -> bool:
        if len(self.open) >= self.max_connections:
            if not self._full:
                self._full = True
                LOG.warning(
                    "Modbus TCP: %d connections open, the limit (GATEWAY_MODBUS_MAX_CONNECTIONS): new ones are "
                    "closed until one ends",
                    len(self.open),
                )
            return False
        self.open.add(connection)
        return True

    def leave(self, connection: Connection) -> None:
        self.open.discard(connection)
        if self._full and len(self.open) < self.max_connections:
            self._full = False
            LOG.info("Modbus TCP: below the connection limit again")


class Connection(asyncio.Protocol):
    """One client: its requests answered in order, each as soon as it is complete."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.reader = FrameReader()
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self._last = 0.0
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.peer = transport.get_extra_info("peername")
        if not self.listener.admit(self):
            transport.close()
            return
        self.transport = transport
        self._last = asyncio.get_running_loop().time()
        if self.listener.idle_timeout > 0:
            self._watch(self.listener.idle_timeout)

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self._last = asyncio.get_running_loop().time()
        try:
            frames = self.reader.feed(data)
        except FramingError as error:
            LOG.info("Modbus TCP: closed the connection from %s: %s is no Modbus request", self.peer, error)
            self.close()
            return
        if frames:
            answers = [encode(f.transaction, f.unit, self.listener.answer(f.unit, f.pdu)) for f in frames]
            self.transport.write(b"".join(answers))

    def pause_writing(self) -> None:
        # a client that pipelines without reading its answers waits for them to go out
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self.transport is not None:
            self.transport = None
            self.listener.leave(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _watch(self, delay: float) -> None:
        self._idle = asyncio.get_running_loop().call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        self._idle = None
        if self.transport is None:
            return
        timeout = self.listener.idle_timeout
        idle = asyncio.get_running_loop().time() - self._last
        if idle >= timeout:
            LOG.info("Modbus TCP: closed the connection from %s, idle for %g s", self.peer, timeout)
            self.close()
        else:
            self._watch(timeout - idle)
