"""The OCPP load generator, a process of its own: K chargers, each sending its next CALL as soon as the answer to
the last one arrives (OCPP-J allows one outstanding CALL per direction), for a measured window after a warm-up.

Frames are made ahead (a new unique id is spliced into each), answers are only checked for their type and id, so
this process spends little per message and the central system under test is what limits the rate. Each charger
boots, reports its connector Available, and then repeats a cycle of eight MeterValues (energy, power and three
currents), one StatusNotification and one Heartbeat, the mix a charging site sends.

    python -m bench.ocpp_load ws://127.0.0.1:8887 --chargers 50 --duration 10

It prints one JSON object: messages answered in the window, messages per second, latency percentiles, errors,
and this process's CPU share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psutil
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from bench.connect_many import percentile_ms

SUBPROTOCOL = Subprotocol("ocpp1.6")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def meter_values(energy_wh: int, timestamp: str) -> dict[str, Any]:
    """A MeterValues payload for connector 1: the energy register, 7360 W and 10.7 A on each phase."""
    sampled = [
        {
            "value": str(energy_wh),
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "unit": "Wh",
        },
        {"value": "7360", "context": "Sample.Periodic", "measurand": "Power.Active.Import", "unit": "W"},
        *(
            {
                "value": "10.7",
                "context": "Sample.Periodic",
                "measurand": "Current.Import",
                "phase": p,
                "unit": "A",
            }
            for p in ("L1", "L2", "L3")
        ),
    ]
    return {"connectorId": 1, "meterValue": [{"timestamp": timestamp, "sampledValue": sampled}]}


# Each MeterValues is sent with the time of sending (to the millisecond) in place of this: a reading the gateway
# has stored already (the same time and values) is a resent one, which it does not store again.
SENT_AT = "__SENT_AT__"


def cycle_payloads() -> list[tuple[str, str]]:
    """(action, payload JSON) of one cycle: 8 MeterValues, a StatusNotification, a Heartbeat."""
    now = _now()
    cycle = [("MeterValues", json.dumps(meter_values(1_000_000 + step * 20, SENT_AT))) for step in range(8)]
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": now}
    cycle.append(("StatusNotification", json.dumps(status)))
    cycle.append(("Heartbeat", "{}"))
    return cycle


class Totals:
    """What every charger counted while the window was open."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.by_action: Counter[str] = Counter()

    def fail(self, kind: str, example: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, example[:300])


async def exchange(connection: ClientConnection, unique_id: str, action: str, payload: str) -> list[Any]:
    """Send one CALL (`payload` is its JSON) and return the answer with the same unique id."""
    await connection.send(f'[2,"{unique_id}","{action}",{payload}]')
    answer: list[Any] = json.loads(await connection.recv())
    if answer[1] != unique_id:
        raise RuntimeError(f"answer to {answer[1]!r}, expected {unique_id!r}")
    return answer


async def charger(url: str, charger_id: str, window: tuple[float, float], totals: Totals) -> None:
    """Connect, boot, then send as fast as answers come until the window closes; count what lands in it."""
    opens, closes = window
    async with websockets.connect(
        f"{url}/{charger_id}", subprotocols=[SUBPROTOCOL], compression=None, proxy=None, max_size=2**20
    ) as connection:
        boot = await exchange(
            connection,
            "boot",
            "BootNotification",
            json.dumps({"chargePointVendor": "ocpp-gateway", "chargePointModel": "Bench"}),
        )
        if boot[0] != 3 or boot[2].get("status") != "Accepted":
            raise RuntimeError(f"{charger_id} not accepted: {boot}")
        status = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": _now()}
        await exchange(connection, "status", "StatusNotification", json.dumps(status))
        cycle = cycle_payloads()
        sent = 0
        while True:
            started = time.perf_counter()
            if started >= closes:
                return
            action, payload = cycle[sent % len(cycle)]
            if action == "MeterValues":
                payload = payload.replace(SENT_AT, datetime.now(UTC).isoformat(timespec="milliseconds"))
            sent += 1
            answer = await exchange(connection, f"{charger_id}-{sent}", action, payload)
            finished = time.perf_counter()
            if started < opens:
                continue  # warm-up
            if answer[0] == 3:
                totals.latencies.append(finished - started)
                totals.by_action[action] += 1
            else:
                totals.fail(str(answer[2]), json.dumps(answer))


async def run(url: str, chargers: int, prefix: str, warmup: float, duration: float) -> dict[str, Any]:
    totals = Totals()
    me = psutil.Process()
    # Every charger connects and boots first (up to 5 s for a large K), then the warm-up, then the window.
    opens = time.perf_counter() + 5.0 + warmup
    closes = opens + duration
    cpu_before: Any = None

    async def mark_window() -> None:
        nonlocal cpu_before
        await asyncio.sleep(opens - time.perf_counter())
        cpu_before = me.cpu_times()

    marker = asyncio.create_task(mark_window())
    results = await asyncio.gather(
        *(charger(url, f"{prefix}{n:04d}", (opens, closes), totals) for n in range(1, chargers + 1)),
        return_exceptions=True,
    )
    await marker
    cpu_after = me.cpu_times()
    for outcome in results:
        if isinstance(outcome, BaseException):
            totals.fail(type(outcome).__name__, str(outcome))
    answered = len(totals.latencies)
    cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
    return {
        "chargers": chargers,
        "warmup_seconds": warmup,
        "window_seconds": duration,
        "messages": answered,
        "messages_per_second": answered / duration,
        "by_action": dict(totals.by_action),
        "latency_p50_ms": percentile_ms(totals.latencies, 50),
        "latency_p99_ms": percentile_ms(totals.latencies, 99),
        "errors": {k: {"count": n, "example": totals.examples[k]} for k, n in totals.errors.items()},
        "load_cpu_percent": 100 * cpu / duration,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ocpp_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="central system URL, without the charger id (ws://127.0.0.1:8887)")
    parser.add_argument("--chargers", type=int, default=50, help="chargers (default 50)")
    parser.add_argument("--prefix", default="BENCH-", help="charger ids: <prefix>0001, ... (default BENCH-)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window (default 2)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the window (default 10)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.chargers, args.prefix, args.warmup, args.duration))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
