"""Measure the gateway's Modbus TCP server from clients in another process: read rates and write latency.

The gateway runs as `python -m gateway run` with mappings/example.yaml, a throw-away database, BACnet off and
its Modbus TCP server on a free port of 127.0.0.1, with GATEWAY_MODBUS_READ_GAPS=true: the blocks read below
span addresses the map leaves unused (CP1's input registers 12, 13 and 23; unit 2's unheld pattern slots),
which then read 0 instead of refusing the whole request. This process is the load generator: --concurrency
pymodbus clients, one TCP connection each, and charger CP1 played by the `ocpp` library's 1.6 ChargePoint over
`websockets`. In the example mapping CP1 is in unit 1 at base address 0: connector 1's status is input
register 10, its power float32 input 18-19, its limit float32 holding register 24-25 and its smart-charging
switch coil 13; the charger's last write status is input register 8.

1. CP1 connects, boots, reports connector 1 Available and sends one MeterValues, so the registers have values.
2. Block read rate: for --duration seconds, one request in flight on each connection, each reading CP1's 14
   input registers 10-23 (unit 1).
3. Wide read rate: the same, each request reading 125 input registers (the protocol's most) 0-124 of unit 2.
4. Write -> SetChargingProfile: coil 13 is set once (smart charging on), then --writes times, one after the
   other, a distinct limit (6.0, 6.1, 6.2, ... A: the gateway sends limits in tenths) is written to holding
   registers 24-25 (function 16); each is timed from the start of the write call to its answer, and to the
   moment CP1's SetChargingProfile handler receives a profile with that limit. After MISSED_PROFILES profiles
   in a row that do not arrive, the writes stop (the run fails).
5. The gateway's RSS is taken and it is stopped with SIGINT (killed if it does not stop).

It prints a table and writes bench/results/modbus.json. The gateway and this process share the machine's
cores, so the gateway's figures include competing with the clients (which decode every answer) for CPU.

    python -m bench modbus --duration 4 --concurrency 8 --writes 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU

from bench.common import (
    BenchCharger,
    connected_charger,
    cpu_text,
    freshness_failures,
    freshness_test,
    gateway_rows,
    next_profile,
    rate_test,
    run_against_gateway,
)
from bench.connect_many import (
    ROOT,
    Gateway,
    Tally,
    free_port,
    latency_text,
    options_settings,
    print_rows,
    report,
    spawn_gateway,
)

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "modbus.json"
MAPPING = ROOT / "mappings" / "example.yaml"
FLOAT32 = AsyncModbusTcpClient.DATATYPE.FLOAT32
UNIT = 1  # CP1's unit
BLOCK = (10, 14)  # CP1 connector 1: input registers 10-23 (status ... current L3)
WIDE_UNIT = 2  # the "M1-*" pattern's unit
WIDE = (0, 125)  # input registers 0-124: the most one request may read
POWER = 18  # CP1 connector 1 power, float32 W, input registers 18-19
WRITE_STATUS = 8  # input register: 1 pending, 2 accepted, 3 stored, 4 rejected, ...
SMART_CHARGING = 13  # coil
LIMIT = 24  # holding registers 24-25, float32 A, 0..32
GATEWAY_BLOCK = (9000, 14)  # identification "OCGW", versions, checksum, counts, uptime
WARMUP_LIMIT = 5.0
FIRST_LIMIT, LIMIT_STEPS = 6.0, 200  # 6.0, 6.1, ... 25.9 A
MISSED_PROFILES = 3  # in a row: the writes stop
PENDING = 1
CLIENT_TIMEOUT = 5.0  # seconds a client waits for an answer
SERVER_TIMEOUT = 15.0  # seconds for the server to answer at all
POWER_TIMEOUT = 10.0  # seconds for CP1's MeterValues to show
SETTLE_TIMEOUT = 5.0  # seconds for the smart-charging switch's write to settle

Operation = Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]]


@dataclass(frozen=True)
class Options:
    duration: float
    concurrency: int
    writes: int
    warmup: float
    port: int
    modbus_port: int
    output: Path


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench modbus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of each rate test (default 4)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="client connections, one request in flight on each (default 8)",
    )
    parser.add_argument("--writes", type=int, default=200, help="limit writes to time (default 200)")
    parser.add_argument(
        "--warmup", type=float, default=0.5, help="untimed seconds before each rate test (default 0.5)"
    )
    parser.add_argument("--port", type=int, default=0, help="gateway HTTP port (default: a free one)")
    parser.add_argument(
        "--modbus-port", type=int, default=0, help="gateway Modbus TCP port (default: a free one)"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help=f"JSON results (default {RESULTS_FILE})"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be 1..256")
    if args.writes < 1:
        parser.error("--writes must be at least 1")
    return Options(
        duration=args.duration,
        concurrency=args.concurrency,
        writes=args.writes,
        warmup=args.warmup,
        port=args.port,
        modbus_port=args.modbus_port,
        output=args.output,
    )


def start_gateway(workdir: Path, port: int, modbus_port: int) -> Gateway:
    return spawn_gateway(
        workdir,
        port,
        {
            "GATEWAY_MAPPING": str(MAPPING),
            "GATEWAY_BACNET_ENABLED": "false",
            "GATEWAY_MODBUS_ENABLED": "true",
            "GATEWAY_MODBUS_HOST": "127.0.0.1",
            "GATEWAY_MODBUS_PORT": str(modbus_port),
            "GATEWAY_MODBUS_READ_GAPS": "true",
            "GATEWAY_MODBUS_MAX_CONNECTIONS": "512",  # --concurrency goes up to 256, beyond the default 32
            "GATEWAY_READ_CONFIGURATION": "false",
            "GATEWAY_LOG_LEVEL": "warning",
        },
    )


# -- the Modbus clients --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connected_clients(port: int, count: int) -> AsyncIterator[asyncio.Queue[AsyncModbusTcpClient]]:
    """`count` clients, each on its own connection, in a pool: a pymodbus client has one request in flight at
    a time (its transaction lock), so concurrency comes from connections, like a BMS polling in parallel."""
    clients = [
        AsyncModbusTcpClient("127.0.0.1", port=port, timeout=CLIENT_TIMEOUT, retries=0) for _ in range(count)
    ]
    try:
        for client in clients:
            if not await client.connect():
                raise RuntimeError(f"no Modbus TCP connection to 127.0.0.1:{port}")
        pool: asyncio.Queue[AsyncModbusTcpClient] = asyncio.Queue()
        for client in clients:
            pool.put_nowait(client)
        yield pool
    finally:
        for client in clients:
            client.close()


async def pooled(pool: asyncio.Queue[AsyncModbusTcpClient], operation: Operation) -> ModbusPDU:
    client = await pool.get()
    try:
        return await operation(client)
    finally:
        pool.put_nowait(client)


def checked(response: ModbusPDU) -> ModbusPDU:
    if response.isError():
        raise RuntimeError(f"Modbus exception {response.exception_code} to function {response.function_code}")
    return response


def registers_read(count: int) -> Callable[[Any], int]:
    """An answer's register count, checked: raises if it is an exception or not `count` registers."""

    def read(response: Any) -> int:
        got = len(checked(response).registers)
        if got != count:
            raise RuntimeError(f"{got} registers answered, {count} asked")
        return got

    return read


async def read_float(client: AsyncModbusTcpClient, address: int) -> float:
    response = checked(await client.read_input_registers(address, count=2, device_id=UNIT))
    value = AsyncModbusTcpClient.convert_from_registers(response.registers, FLOAT32)
    assert isinstance(value, float)
    return value


async def read_register(client: AsyncModbusTcpClient, address: int) -> int:
    response = checked(await client.read_input_registers(address, count=1, device_id=UNIT))
    return int(response.registers[0])


async def wait_server(client: AsyncModbusTcpClient) -> str:
    """The gateway block's identification (unit 1), once the server answers (within SERVER_TIMEOUT)."""
    deadline = time.monotonic() + SERVER_TIMEOUT
    while True:
        try:
            address, count = GATEWAY_BLOCK
            response = checked(await client.read_input_registers(address, count=count, device_id=UNIT))
            return b"".join(word.to_bytes(2, "big") for word in response.registers[:2]).decode(
                "ascii", "replace"
            )
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def wait_power(client: AsyncModbusTcpClient) -> float:
    """CP1's power once the gateway shows the MeterValues sent (7360 W); the last read after POWER_TIMEOUT."""
    deadline = time.monotonic() + POWER_TIMEOUT
    while True:
        value = await read_float(client, POWER)
        if value == 7360.0 or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def settled_write_status(client: AsyncModbusTcpClient) -> int:
    """CP1's write status once no write is pending (the last read after SETTLE_TIMEOUT)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        status = await read_register(client, WRITE_STATUS)
        if status != PENDING or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.02)


def limit_for(index: int) -> float:
    """The n-th limit written: each differs from the one before (an unchanged limit is not sent again)."""
    return round(FIRST_LIMIT + (index % LIMIT_STEPS) / 10, 1)


async def write_test(client: AsyncModbusTcpClient, charger: BenchCharger, options: Options) -> dict[str, Any]:
    """Switch smart charging on, then time `options.writes` limit writes to the SetChargingProfile each
    sends."""
    checked(await client.write_coil(SMART_CHARGING, True, device_id=UNIT))
    switch_status = await settled_write_status(client)

    async def write(limit: float) -> ModbusPDU:
        words = AsyncModbusTcpClient.convert_to_registers(limit, FLOAT32)
        return checked(await client.write_registers(LIMIT, words, device_id=UNIT))

    # One untimed write first: the first profile also pays for first-time work in both processes.
    await write(WARMUP_LIMIT)
    await next_profile(charger, WARMUP_LIMIT)
    ack_tally, profile_tally = Tally(), Tally()
    unexpected = missed = 0
    started = time.perf_counter()
    for index in range(options.writes):
        limit = limit_for(index)
        while not charger.profiles.empty():
            charger.profiles.get_nowait()
            unexpected += 1
        sent = time.perf_counter()
        try:
            await write(limit)
        except Exception as error:
            ack_tally.fail(error)
            continue
        ack_tally.latencies.append(time.perf_counter() - sent)
        try:
            profile, others = await next_profile(charger, limit)
        except Exception as error:
            profile_tally.fail(error)
            missed += 1
            if missed >= MISSED_PROFILES:
                break
            continue
        missed = 0
        unexpected += others
        profile_tally.latencies.append(profile.arrived - sent)
    elapsed = time.perf_counter() - started
    return {
        "writes": options.writes,
        "seconds": elapsed,
        "writes_per_second": options.writes / elapsed,
        "smart_charging_write_status": switch_status,
        "write_ack": ack_tally.summary(),
        "set_charging_profile": profile_tally.summary(),
        "unexpected_profiles": unexpected,
        "write_status_after": await settled_write_status(client),
    }


async def run_clients(options: Options, gateway: Gateway, process: psutil.Process) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    port = int(gateway.environment["GATEWAY_MODBUS_PORT"])
    async with connected_clients(port, options.concurrency) as pool:
        first = await pool.get()
        pool.put_nowait(first)
        figures["identification"] = await wait_server(first)
        async with connected_charger(gateway) as charger:
            figures["power_read"] = await wait_power(first)
            sample = checked(await first.read_input_registers(BLOCK[0], count=BLOCK[1], device_id=UNIT))
            figures["block_sample"] = list(sample.registers)
            figures["rss_before_bytes"] = process.memory_info().rss

            def read(unit: int, address: int, count: int) -> Operation:
                return lambda client: client.read_input_registers(address, count=count, device_id=unit)

            block = read(UNIT, *BLOCK)
            figures["block_read"] = await rate_test(
                lambda: block,
                lambda op: pooled(pool, op),
                registers_read(BLOCK[1]),
                options,
                process,
                unit="registers",
            )
            wide = read(WIDE_UNIT, *WIDE)
            figures["wide_read"] = await rate_test(
                lambda: wide,
                lambda op: pooled(pool, op),
                registers_read(WIDE[1]),
                options,
                process,
                unit="registers",
            )
            figures["rss_after_reads_bytes"] = process.memory_info().rss
            figures["freshness"] = await freshness_test(charger, lambda: read_float(first, POWER))
            figures["write"] = await write_test(first, charger, options)
            figures["rss_after_bytes"] = process.memory_info().rss
    return figures


# -- the run -------------------------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    settings = {
        **options_settings(options),
        "block_read": {"unit": UNIT, "table": "input", "address": BLOCK[0], "count": BLOCK[1]},
        "wide_read": {"unit": WIDE_UNIT, "table": "input", "address": WIDE[0], "count": WIDE[1]},
        "write": {
            "unit": UNIT,
            "holding": LIMIT,
            "type": "float32",
            "values": f"{FIRST_LIMIT} + n / 10 (n < {LIMIT_STEPS})",
            "enable_coil": SMART_CHARGING,
        },
    }
    return run_against_gateway(
        "modbus",
        "pymodbus",
        lambda workdir: start_gateway(
            workdir, options.port or free_port(), options.modbus_port or free_port()
        ),
        settings,
        lambda gateway, process: run_clients(options, gateway, process),
    )


def print_table(result: dict[str, Any]) -> None:
    settings, figures = result["settings"], result["results"]
    block, wide, write = figures["block_read"], figures["wide_read"], figures["write"]

    def rate(test: dict[str, Any], what: str) -> str:
        return (
            f"{test['requests_per_second']:.0f} requests/s = {test['registers_per_second']:.0f} registers/s "
            f"({what}, {test['requests']} in {test['seconds']:.1f} s, {settings['concurrency']} connections)"
        )

    rows = [
        ("14-register read rate", rate(block, f"unit {UNIT} input {BLOCK[0]}-{sum(BLOCK) - 1}")),
        ("14-register read p50 / p99", latency_text(block["latency"])),
        ("gateway CPU (14-register reads)", cpu_text(block)),
        ("125-register read rate", rate(wide, f"unit {WIDE_UNIT} input {WIDE[0]}-{sum(WIDE) - 1}")),
        ("125-register read p50 / p99", latency_text(wide["latency"])),
        ("gateway CPU (125-register reads)", cpu_text(wide)),
        ("write (function 16) answer p50 / p99", latency_text(write["write_ack"])),
        *gateway_rows(figures, "rss_after_reads_bytes"),
    ]
    machine = result["machine"]
    print_rows(
        f"modbus: server {figures['identification']!r} on {machine['cpu_count']} cores, "
        f"Python {machine['python']}, pymodbus {machine['packages'].get('pymodbus')}, "
        f"rate tests {settings['duration']:.0f} s each",
        rows,
        [
            ("14-register read", block["latency"]),
            ("125-register read", wide["latency"]),
            ("write", write["write_ack"]),
            ("SetChargingProfile", write["set_charging_profile"]),
        ],
        figures["gateway_output"],
    )


def failed(result: dict[str, Any]) -> list[str]:
    """What makes the run a failure (the figures are still written)."""
    figures = result["results"]
    reasons = []
    if figures["identification"] != "OCGW":
        reasons.append(f"the gateway block reads {figures['identification']!r}, not 'OCGW'")
    if figures["power_read"] != 7360.0:
        reasons.append(f"input {POWER} read {figures['power_read']}, not the 7360 W CP1 sent")
    for name in ("block_read", "wide_read"):
        test = figures[name]
        if test["latency"]["failures"]:
            reasons.append(f"{name}: {test['latency']['failures']} failed")
        if test["requests"] == 0:
            reasons.append(f"{name}: no request answered")
    write = figures["write"]
    for name in ("write_ack", "set_charging_profile"):
        if write[name]["failures"]:
            reasons.append(f"{name}: {write[name]['failures']} failed")
    if write["set_charging_profile"]["count"] != write["writes"]:
        reasons.append(f"only {write['set_charging_profile']['count']} of {write['writes']} profiles arrived")
    reasons += freshness_failures(figures)
    if figures["gateway_stop"]["killed"]:
        reasons.append("the gateway did not stop on SIGINT and was killed")
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return report(run(options), options.output, print_table, failed)


if __name__ == "__main__":
    sys.exit(main())
