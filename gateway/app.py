"""The FastAPI application: OCPP WebSockets, the REST API and the landing text on one port.

`create_app(settings)` builds it; its lifespan starts the services in order (database, central system,
housekeeping) and stops them in reverse, closing every charger connection first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import PlainTextResponse

from gateway import __version__
from gateway.api import router
from gateway.api_commands import router as commands_router
from gateway.api_input import JsonBodyCheck
from gateway.connections import PROTOCOLS, Connections
from gateway.mapping import Mapping, load_mapping
from gateway.scheduler import Housekeeping
from gateway.services import Services
from gateway.settings import Settings
from gateway.store import Store


def create_app(settings: Settings, mapping: Mapping | None = None) -> FastAPI:
    """Build the gateway app; the mapping is read from `settings.mapping` unless given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = mapping if mapping is not None else await asyncio.to_thread(load_mapping, settings.mapping)
        store = Store(settings.database)
        await store.start()
        services = Services(settings, store, loaded)
        housekeeping = Housekeeping(services.central)
        try:
            await services.start()
            await housekeeping.start()
            app.state.services = services
            app.state.central = services.central
            app.state.connections = services.connections
            yield
        finally:
            await services.stop()
            await housekeeping.stop()
            await store.stop()

    app = FastAPI(
        title="OCPP gateway",
        version=__version__,
        summary="OCPP 1.6J central system for a building's EV chargers.",
        lifespan=lifespan,
    )
    app.add_middleware(JsonBodyCheck)
    app.include_router(router)
    app.include_router(commands_router)

    @app.get("/", include_in_schema=False)
    def landing(request: Request) -> PlainTextResponse:
        return PlainTextResponse(_landing_text(request, settings), status_code=200)

    @app.get("/{path:path}", include_in_schema=False)
    def not_a_websocket(request: Request, path: str) -> PlainTextResponse:
        return PlainTextResponse(
            _landing_text(request, settings),
            status_code=426,
            headers={"Upgrade": "websocket", "Connection": "Upgrade"},
        )

    @app.websocket("/{path:path}")
    async def ocpp(websocket: WebSocket, path: str) -> None:
        connections: Connections = websocket.app.state.connections
        await connections.serve(websocket, path)

    return app


def _landing_text(request: Request, settings: Settings) -> str:
    scheme = "wss" if settings.tls else "ws"
    host = request.headers.get("host", f"<gateway>:{settings.http_port}")
    return (
        f"OCPP gateway {__version__}: this is an OCPP-J WebSocket endpoint, not a web page.\n"
        f"Configure each charger with the central system URL {scheme}://{host}/ ; the charger appends its\n"
        f"charge point id: {scheme}://{host}/<chargePointId> (a path prefix before the id is allowed).\n"
        f"OCPP subprotocols: {', '.join(PROTOCOLS)}. The REST API is under /api, its documentation at /docs.\n"
    )
