"""Shared fixtures: a gateway on a free loopback port with its own SQLite file, and chargers made from the
`ocpp` package's ChargePoint over `websockets` (an independent client stack)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from ocpp.v16 import ChargePoint, call
from websockets.asyncio.client import ClientConnection

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings

TEST_MAPPING: dict[str, Any] = {
    "chargers": [
        {"id": "CP1", "name": "Bay 1", "registration": "Accepted"},
        {"id": "CP2", "registration": "Accepted"},
        {"id": "BLOCKED-1", "registration": "Rejected", "retry_interval": 600},
        {"id": "WAIT-1", "registration": "Pending"},
        {"pattern": "C1-*", "name": "amina C", "registration": "Accepted"},
    ],
    "authorization": {
        "mode": "all-except-blacklist",
        "whitelist": ["TAG-OK", {"id_tag": "TAG-OLD", "expiry_date": "2020-01-01T00:00:00Z"}],
        "blacklist": ["TAG-STOLEN"],
    },
}


class Charger(ChargePoint):  # type: ignore[misc]
    """A test charger: the library's 1.6 ChargePoint with a `boot()` shortcut."""

    async def boot(self, vendor: str = "TestVendor", model: str = "TestModel", **fields: Any) -> Any:
        return await self.call(
            call.BootNotification(charge_point_vendor=vendor, charge_point_model=model, **fields)
        )


async def eventually(check: Callable[[], Awaitable[Any]], expected: Any, timeout: float = 5.0) -> Any:
    """Poll `check` until it returns `expected`, or the last value after `timeout` (a value reaches BACnet or
    Modbus once the charger's message is handled; a client in another process reads it a moment later)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value == expected or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.02)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "http_host": "127.0.0.1",
        "http_port": 0,
        "database": tmp_path / "gateway.sqlite3",
        "mapping": tmp_path / "mapping.yaml",
        "response_timeout": 2,
        # Most tests script every frame a charger sees; the configuration read after boot is tested on its own.
        "read_configuration": False,
        # Tests send charger timestamps of fixed dates; the window around now is tested on its own.
        "timestamp_max_age_days": 36500,
        # BACnet and Modbus tests switch their server on, on a port of their own.
        "bacnet_enabled": False,
        "modbus_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def mapping() -> Mapping:
    return Mapping.model_validate(TEST_MAPPING)


@pytest.fixture
async def gateway(settings: Settings, mapping: Mapping) -> AsyncIterator[RunningGateway]:
    async with running(settings, mapping) as running_gateway:
        yield running_gateway
    await _no_tasks_left()


async def _no_tasks_left() -> None:
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not left, f"tasks left behind: {left}"


@asynccontextmanager
async def connect_charger(
    gateway: RunningGateway | str,
    charger_id: str,
    path_prefix: str = "",
    cls: type[Charger] = Charger,
    **connect_options: Any,
) -> AsyncIterator[Charger]:
    """Connect a charger at `<ws_url>/<prefix><id>` (a running gateway or a ws:// URL) and run its message loop
    while inside the block."""
    base = gateway if isinstance(gateway, str) else gateway.ws_url
    url = f"{base}/{path_prefix}{charger_id}"
    subprotocols = [websockets.Subprotocol("ocpp1.6")]
    async with websockets.connect(url, subprotocols=subprotocols, **connect_options) as ws:
        charger = cls(charger_id, ws, response_timeout=5)
        task = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


ChargerFactory = Callable[..., AbstractAsyncContextManager[Charger]]


@pytest.fixture
def charger(gateway: RunningGateway) -> ChargerFactory:
    def factory(charger_id: str, **kwargs: Any) -> AbstractAsyncContextManager[Charger]:
        return connect_charger(gateway, charger_id, **kwargs)

    return factory


@asynccontextmanager
async def raw_socket(gateway: RunningGateway, charger_id: str) -> AsyncIterator[ClientConnection]:
    """A bare WebSocket speaking ocpp1.6, for frames the ocpp library would never send."""
    url = f"{gateway.ws_url}/{charger_id}"
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("ocpp1.6")]) as ws:
        yield ws


async def exchange(ws: ClientConnection, frame: str | list[Any] | bytes, timeout: float = 5) -> list[Any]:
    """Send one frame and return the decoded answer."""
    await ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))
    answer = await asyncio.wait_for(ws.recv(), timeout)
    decoded: list[Any] = json.loads(answer)
    return decoded


@pytest.fixture
async def api(gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.http_url, timeout=10) as client:
        yield client
