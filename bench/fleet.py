"""A large site: the gateway with 1,000 chargers mapped (`bench.site`), its start-up, and its memory and CPU with
0, 100 and 1,000 chargers connected, each charging and sending MeterValues every 10 s.

1. The gateway starts with the site mapping (BACnet and Modbus on, loopback ports of their own). Start-up is the
   time from starting the process to its first answers over BACnet (a ReadProperty of the device's name) and
   Modbus (a read of the gateway block), both polled every 20 ms with hand-made frames.
2. With no charger connected its RSS is taken.
3. Then each stage connects chargers up to its count (boot, StatusNotification Charging) and keeps every connected
   charger sending MeterValues (energy, power, three currents) every --interval seconds, each at its own moment,
   for a --window of seconds; the gateway's CPU share and RSS over the window are its figures.

The chargers are played by this process with plain WebSocket frames (little work per message), the gateway runs
in its own process. Chargers do not answer GetConfiguration, so GATEWAY_READ_CONFIGURATION=false.

    python -m bench fleet --stages 0,100,1000 --window 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import websockets
from websockets.asyncio.client import ClientConnection

from bench.common import cpu_seconds
from bench.connect_many import (
    SUBPROTOCOL,
    Tally,
    free_port,
    latency_text,
    machine_facts,
    mib,
    now_iso,
    options_settings,
    output_figures,
    output_text,
    peak_rss,
    print_rows,
    raise_open_files_limit,
    report,
    spawn_gateway,
    stop_gateway,
    tail,
    wait_healthy,
)
from bench.ocpp_load import exchange, meter_values
from bench.site import charger_id, write_site

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "fleet.json"
DEVICE_ID = 4712
START_TIMEOUT = 60.0
TARGETS = {"start_seconds": 5.0, "rss_mib": 300.0, "cpu_percent": 25.0}


@dataclass(frozen=True)
class Options:
    mapped: int
    stages: tuple[int, ...]
    window: float
    interval: float
    concurrency: int
    output: Path


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mapped", type=int, default=1000, help="chargers in the mapping (default 1000)")
    parser.add_argument(
        "--stages", default="0,100,1000", help="connected chargers at each stage (default 0,100,1000)"
    )
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per stage (default 30)")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between a charger's MeterValues (default 10)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=100, help="chargers connecting at once (default 100)"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help=f"JSON results (default {RESULTS_FILE})"
    )
    args = parser.parse_args(argv)
    stages = tuple(int(part) for part in args.stages.split(","))
    if list(stages) != sorted(stages) or not all(0 <= n <= args.mapped for n in stages):
        parser.error("--stages must rise, each at most --mapped")
    return Options(args.mapped, stages, args.window, args.interval, args.concurrency, args.output)


# -- start-up: the first BACnet and Modbus answers -------------------------------------------------------------


def _read_device_name(invoke_id: int) -> bytes:
    """A BACnet/IP ReadProperty of the device's object-name (BVLC, NPDU expecting a reply, confirmed APDU)."""
    object_id = (8 << 22) | DEVICE_ID
    apdu = bytes([0x00, 0x05, invoke_id, 0x0C, 0x0C]) + object_id.to_bytes(4, "big") + bytes([0x19, 77])
    npdu = bytes([0x01, 0x04])
    return bytes([0x81, 0x0A]) + (4 + len(npdu) + len(apdu)).to_bytes(2, "big") + npdu + apdu


async def first_bacnet_answer(port: int, started: float) -> float:
    """Seconds from `started` until the device answers a ReadProperty (a complex ACK)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.setblocking(False)
        invoke = 0
        while time.perf_counter() - started < START_TIMEOUT:
            invoke = (invoke + 1) % 256
            probe.sendto(_read_device_name(invoke), ("127.0.0.1", port))
            try:
                answer = await asyncio.wait_for(loop.sock_recv(probe, 1500), 0.02)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if len(answer) > 6 and answer[6] & 0xF0 == 0x30:  # complex ACK after BVLC (4) and NPDU (2)
                return time.perf_counter() - started
    raise TimeoutError("the BACnet device never answered")


async def first_modbus_answer(port: int, started: float) -> float:
    """Seconds from `started` until the server answers a read of the gateway block (unit 1, input 9000)."""
    request = struct.pack(">HHHBBHH", 1, 0, 6, 1, 4, 9000, 2)
    while time.perf_counter() - started < START_TIMEOUT:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.5)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.02)
            continue
        try:
            writer.write(request)
            answer = await asyncio.wait_for(reader.readexactly(13), 10.0)
            if answer[7] == 4 and answer[9:13] == b"OCGW":
                return time.perf_counter() - started
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.02)
        finally:
            writer.close()
    raise TimeoutError("the Modbus server never answered")


# -- the chargers ------------------------------------------------------------------------------------------------


class Chargers:
    """Connected bench chargers, each sending MeterValues every `interval` seconds."""

    def __init__(self, ws_url: str, options: Options) -> None:
        self.ws_url = ws_url
        self.options = options
        self.connections: list[ClientConnection] = []
        self.senders: list[asyncio.Task[None]] = []
        self.connect = Tally()
        self.meter_values = Tally()
        self._ids = 0
        self._random = random.Random(10)

    async def grow(self, count: int) -> float:
        """Connect chargers until `count` are; returns the seconds it took."""
        limit = asyncio.Semaphore(self.options.concurrency)
        started = time.perf_counter()
        numbers = range(len(self.connections) + 1, count + 1)
        await asyncio.gather(*(self._join(number, limit) for number in numbers))
        return time.perf_counter() - started

    async def _join(self, number: int, limit: asyncio.Semaphore) -> None:
        async with limit:
            sent = time.perf_counter()
            try:
                connection = await websockets.connect(
                    f"{self.ws_url}/{charger_id(number)}",
                    subprotocols=[SUBPROTOCOL],
                    compression=None,
                    proxy=None,
                )
                boot = await self._exchange(
                    connection,
                    "BootNotification",
                    {"chargePointVendor": "ocpp-gateway", "chargePointModel": "Bench"},
                )
                if boot.get("status") != "Accepted":
                    raise RuntimeError(f"{charger_id(number)}: {boot}")
                status = {
                    "connectorId": 1,
                    "errorCode": "NoError",
                    "status": "Charging",
                    "timestamp": now_iso(),
                }
                await self._exchange(connection, "StatusNotification", status)
            except Exception as error:
                self.connect.fail(error)
                return
            self.connect.latencies.append(time.perf_counter() - sent)
            self.connections.append(connection)
            self.senders.append(asyncio.create_task(self._send_meter_values(connection, number)))

    async def _exchange(self, connection: ClientConnection, action: str, payload: dict[str, Any]) -> Any:
        """The CALLRESULT's payload; a CALLERROR or no answer within 30 s raises."""
        self._ids += 1
        answer = await asyncio.wait_for(
            exchange(connection, str(self._ids), action, json.dumps(payload)), 30.0
        )
        if answer[0] != 3:
            raise RuntimeError(f"{action}: {answer}")
        return answer[2]

    async def _send_meter_values(self, connection: ClientConnection, number: int) -> None:
        await asyncio.sleep(self._random.uniform(0, self.options.interval))
        energy = 1_000_000 + 1000 * number
        while True:
            energy += 20
            payload = meter_values(energy, now_iso())
            sent = time.perf_counter()
            try:
                await self._exchange(connection, "MeterValues", payload)
                self.meter_values.latencies.append(time.perf_counter() - sent)
            except websockets.ConnectionClosed:
                return
            except Exception as error:
                self.meter_values.fail(error)
            await asyncio.sleep(max(0.0, self.options.interval - (time.perf_counter() - sent)))

    async def close(self) -> None:
        for sender in self.senders:
            sender.cancel()
        await asyncio.gather(*self.senders, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)


async def stage(chargers: Chargers, count: int, options: Options, gateway: psutil.Process) -> dict[str, Any]:
    """Grow to `count` chargers, then measure the gateway over the window."""
    connect_seconds = await chargers.grow(count)
    await asyncio.sleep(min(2.0, options.window))  # the burst of boots settles
    rss: list[int] = []
    before, started = cpu_seconds(gateway), time.perf_counter()
    while time.perf_counter() - started < options.window:
        rss.append(gateway.memory_info().rss)
        await asyncio.sleep(1.0)
    elapsed = time.perf_counter() - started
    return {
        "chargers": len(chargers.connections),
        "connect_seconds": connect_seconds,
        "window_seconds": elapsed,
        "cpu_percent": 100 * (cpu_seconds(gateway) - before) / elapsed,
        "rss_end_bytes": rss[-1],
        "rss_max_bytes": max(rss),
    }


async def run_site(options: Options, gateway: Any, started: float) -> dict[str, Any]:
    env = gateway.environment
    bacnet, modbus = await asyncio.gather(
        first_bacnet_answer(int(env["GATEWAY_BACNET_PORT"]), started),
        first_modbus_answer(int(env["GATEWAY_MODBUS_PORT"]), started),
    )
    figures: dict[str, Any] = {"start": {"bacnet_seconds": bacnet, "modbus_seconds": modbus}}
    figures["start"]["seconds"] = max(bacnet, modbus)
    await asyncio.to_thread(wait_healthy, gateway)
    process = psutil.Process(gateway.process.pid)
    chargers = Chargers(gateway.ws_url, options)
    try:
        figures["stages"] = [await stage(chargers, count, options, process) for count in options.stages]
    finally:
        await chargers.close()
    figures["connect"] = chargers.connect.summary()
    figures["meter_values"] = chargers.meter_values.summary()
    return figures


def run(options: Options) -> dict[str, Any]:
    open_files = raise_open_files_limit()
    result: dict[str, Any] = {"benchmark": "fleet", "started_at": now_iso(), "machine": machine_facts()}
    with tempfile.TemporaryDirectory(prefix="ocpp-bench-") as temporary:
        workdir = Path(temporary)
        settings = {
            "GATEWAY_MAPPING": str(write_site(workdir, options.mapped)),
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_BACNET_ADDRESS": "127.0.0.1/8",
            "GATEWAY_BACNET_PORT": str(free_port(socket.SOCK_DGRAM)),
            "GATEWAY_BACNET_DEVICE_ID": str(DEVICE_ID),
            "GATEWAY_MODBUS_HOST": "127.0.0.1",
            "GATEWAY_MODBUS_PORT": str(free_port(socket.SOCK_STREAM)),
            "GATEWAY_READ_CONFIGURATION": "false",
        }
        started = time.perf_counter()
        gateway = spawn_gateway(workdir, free_port(), settings, preexec_fn=raise_open_files_limit)
        result["settings"] = {
            **options_settings(options),
            "gateway_environment": gateway.environment,
            "bench_open_files_limit": open_files,
        }
        figures: dict[str, Any] = {}
        try:
            figures.update(asyncio.run(run_site(options, gateway, started)))
            figures["rss_peak_bytes"] = peak_rss(gateway.process.pid)
        except BaseException:
            print(f"gateway output:\n{tail(gateway.output())}", file=sys.stderr)
            raise
        finally:
            figures["gateway_stop"] = stop_gateway(gateway)
        figures["gateway_output"] = output_figures(gateway.output())
    result["results"] = figures
    return result


def print_table(result: dict[str, Any]) -> None:
    figures, settings = result["results"], result["settings"]
    start = figures["start"]
    rows = [
        (
            f"start-up, {settings['mapped']} chargers mapped",
            f"{start['seconds']:.2f} s (BACnet {start['bacnet_seconds']:.2f} s, Modbus {start['modbus_seconds']:.2f} s;"
            f" target < {TARGETS['start_seconds']:.0f} s)",
        )
    ]
    for row in figures["stages"]:
        rows.append(
            (
                f"{row['chargers']} connected, MeterValues every {settings['interval']:.0f} s",
                f"RSS {mib(row['rss_end_bytes'])} (max {mib(row['rss_max_bytes'])}), CPU {row['cpu_percent']:.1f} % "
                f"of one core over {row['window_seconds']:.0f} s; connected in {row['connect_seconds']:.1f} s",
            )
        )
    rows += [
        ("MeterValues answered p50 / p99", latency_text(figures["meter_values"])),
        ("gateway peak RSS", mib(figures["rss_peak_bytes"])),
        ("gateway output", output_text(figures["gateway_output"])),
    ]
    tallies = [("connect", figures["connect"]), ("meter_values", figures["meter_values"])]
    print_rows(
        f"fleet: a site with {settings['mapped']} chargers mapped", rows, tallies, figures["gateway_output"]
    )


def failed(result: dict[str, Any]) -> list[str]:
    figures = result["results"]
    reasons = []
    for row, wanted in zip(figures["stages"], result["settings"]["stages"], strict=True):
        if row["chargers"] != wanted:
            reasons.append(f"only {row['chargers']} of {wanted} chargers connected")
    for name in ("connect", "meter_values"):
        if figures[name]["failures"]:
            reasons.append(f"{name}: {figures[name]['failures']} failed")
    if figures["gateway_stop"]["killed"]:
        reasons.append("the gateway did not stop on SIGINT and was killed")
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return report(run(options), options.output, print_table, failed)


if __name__ == "__main__":
    sys.exit(main())
