"""Running the gateway under uvicorn in the current event loop (the CLI, the tests and the benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.central import CentralSystem
from gateway.mapping import Mapping
from gateway.settings import Settings
from gateway.yamlsource import SourceError

LOG = logging.getLogger(__name__)


def uvicorn_config(app: FastAPI, settings: Settings, *, log_config: bool = True) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        ssl_certfile=str(settings.tls_certfile) if settings.tls_certfile else None,
        ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None,
        log_level=settings.log_level,
        # Frames up to 4x our message limit reach the app, which answers them with a CALLERROR; past that the
        # WebSocket layer closes the connection (1009) rather than buffer without bound.
        ws_max_size=max(4 * settings.max_message_bytes, 1 << 20),
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        log_config=uvicorn.config.LOGGING_CONFIG if log_config else None,
    )


async def serve(settings: Settings, mapping: Mapping | None = None) -> bool:
    """Run the gateway until SIGINT or SIGTERM; SIGHUP re-reads the mapping file (`systemctl reload`). False if
    it could not start (the log says why)."""
    app = create_app(settings, mapping)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(_reload_mapping(app)))
    server = uvicorn.Server(uvicorn_config(app, settings))
    try:
        await server.serve()
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
    return bool(server.started)


async def _reload_mapping(app: FastAPI) -> None:
    central: CentralSystem | None = getattr(app.state, "central", None)
    if central is None:
        return
    try:
        mapping = await central.reload_mapping()
    except SourceError as exc:
        LOG.error("mapping reload refused, the running mapping stays:\n%s", exc)
        return
    LOG.info("mapping reloaded: %d charger entries", len(mapping.chargers))


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the embedding program owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningGateway:
    app: FastAPI
    server: uvicorn.Server
    port: int
    settings: Settings

    @property
    def central(self) -> CentralSystem:
        central: CentralSystem = self.app.state.central
        return central

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.settings.tls else 'ws'}://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.settings.tls else 'http'}://127.0.0.1:{self.port}"


@asynccontextmanager
async def running(settings: Settings, mapping: Mapping | None = None) -> AsyncIterator[RunningGateway]:
    """Start the gateway in this loop (port 0 picks a free port) and stop it on exit."""
    app = create_app(settings, mapping)
    server = _EmbeddedServer(uvicorn_config(app, settings, log_config=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error
            raise RuntimeError("gateway stopped during start-up")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningGateway(app, server, port, settings)
    finally:
        server.should_exit = True
        await task
