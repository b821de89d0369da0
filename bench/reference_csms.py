"""The bare reference central system: the `ocpp` package's 1.6 ChargePoint on a `websockets` server, the way its
own examples build one, answering what a charger sends and nothing more (no state, no storage, no BACnet or
Modbus). Payloads are validated against the 1.6 JSON schemas, requests and answers, with the gateway's setting
(on the event loop, `ocpp.messages.ASYNC_VALIDATION = False`).

    python -m bench.reference_csms --port 9000

It prints `ready <port>` once it listens and stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import ocpp.messages
import websockets
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection
from websockets.typing import Subprotocol

# The gateway's validation setting (gateway/ocpp16/charge_point.py): jsonschema validation of every request and
# answer, on the event loop rather than in the library's default thread pool.
ocpp.messages.ASYNC_VALIDATION = False

Handler = TypeVar("Handler", bound=Callable[..., Any])
on = cast(Callable[[Action], Callable[[Handler], Handler]], _on)  # the library's @on, typed
_transactions = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class ReferenceChargePoint(ChargePoint):  # type: ignore[misc]
    """Answers the messages a 1.6 charger sends: accepted, with the current time where one is due."""

    @on(Action.boot_notification)
    def on_boot_notification(self, **_: Any) -> Any:
        return call_result.BootNotification(
            current_time=_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(self, **_: Any) -> Any:
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return call_result.MeterValues()

    @on(Action.authorize)
    def on_authorize(self, **_: Any) -> Any:
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    def on_start_transaction(self, **_: Any) -> Any:
        return call_result.StartTransaction(
            transaction_id=next(_transactions), id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.stop_transaction)
    def on_stop_transaction(self, **_: Any) -> Any:
        return call_result.StopTransaction()


async def _serve_charger(connection: ServerConnection) -> None:
    charger_id = (connection.request.path if connection.request else "/").rstrip("/").rsplit("/", 1)[-1]
    charge_point = ReferenceChargePoint(charger_id, connection)
    with contextlib.suppress(websockets.ConnectionClosed):
        await charge_point.start()


async def serve(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with websockets.serve(
        _serve_charger,
        "127.0.0.1",
        port,
        subprotocols=[Subprotocol("ocpp1.6")],
        max_size=65536,
        compression=None,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"ready {bound}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reference_csms", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
