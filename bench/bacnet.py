"""Measure the gateway's BACnet/IP device from a client in another process: read rates and write latency.

The gateway runs as `python -m gateway run` with mappings/example.yaml, a throw-away database and its BACnet
device (instance 4711) on a free UDP port of 127.0.0.1/8. This process is the load generator: a bacpypes3
client Application (`tests.bacnet_peer.build_application`) on another UDP port, and charger CP1 played by the
`ocpp` library's 1.6 ChargePoint over `websockets`. In the example mapping CP1 has base instance 1000 and the
template generic-ac-1, so connector 1's power is analog-input,1018, its limit analog-value,1024 and its
smart-charging switch binary-value,1013.

1. CP1 connects, boots, reports connector 1 Available and sends one MeterValues, so the points have values.
2. ReadProperty rate: for --duration seconds, --concurrency requests in flight, each reading the present-value
   of analog-input,1018.
3. ReadPropertyMultiple rate: the same, each request reading present-value and status-flags of ten CP1
   objects (analog, binary and multi-state; 20 properties a request).
4. Write -> SetChargingProfile: smart charging on connector 1 is switched on once (binary-value,1013 active at
   priority 8), then --writes times, one after the other, the limit analog-value,1024 is written at priority
   8, alternating 10.0 and 11.0 A; each is timed from sending the WriteProperty to its SimpleAck, and to the
   moment CP1's SetChargingProfile handler receives a profile with that limit.
5. The gateway's RSS is taken and it is stopped with SIGINT (killed if it does not stop).

It prints a table and writes bench/results/bacnet.json. The gateway and this process share the machine's
cores, so the gateway's figures include competing with the client (which decodes every answer) for CPU.

    python -m bench bacnet --duration 5 --concurrency 8 --writes 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar, cast

import psutil
import websockets
from bacpypes3.apdu import (
    ErrorRejectAbortNack,
    ReadPropertyMultipleRequest,
    ReadPropertyRequest,
    WritePropertyRequest,
)
from bacpypes3.basetypes import BinaryPV, PropertyIdentifier, PropertyReference, ReadAccessSpecification
from bacpypes3.constructeddata import SequenceOf
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import CharacterString, ObjectIdentifier, Real
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, ChargePointErrorCode, ChargePointStatus
from websockets.asyncio.client import ClientConnection

from bench.connect_many import (
    MIB,
    SUBPROTOCOL,
    Gateway,
    Tally,
    free_port,
    get_json,
    machine_facts,
    meter_values_payload,
    now_iso,
    peak_rss,
    problem_lines,
    report,
    stop_gateway,
    tail,
)
from tests.bacnet_peer import _wait_bound, build_application, free_udp_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "bacnet.json"
MAPPING = ROOT / "mappings" / "example.yaml"
START_TIMEOUT = 60.0
DEVICE_ID = 4711
CHARGER_ID = "CP1"
CLIENT_DEVICE_ID = 4194001
PRIORITY = 8
POWER = "analog-input,1018"  # CP1 connector 1 power (W)
LIMIT = "analog-value,1024"  # CP1 connector 1 limit (A), writable, commandable
ENABLE = "binary-value,1013"  # CP1 connector 1 smart charging, writable
RPM_OBJECTS = (
    "analog-input,1014",  # session energy
    "analog-input,1016",  # energy register
    "analog-input,1018",  # power
    "analog-input,1020",  # current L1
    "analog-input,1021",  # current L2
    "analog-input,1022",  # current L3
    "analog-value,1024",  # limit
    "multi-state-input,1010",  # status
    "multi-state-input,1011",  # error code
    "binary-input,1012",  # charging session
)
RPM_PROPERTIES = ("present-value", "status-flags")
WRITE_VALUES = (10.0, 11.0)
PROFILE_TIMEOUT = 10.0  # seconds for a written limit to reach the charger
DEVICE_TIMEOUT = 15.0  # seconds for the device to answer at all
POWER_TIMEOUT = 10.0  # seconds for CP1's MeterValues to show

Handler = TypeVar("Handler", bound=Callable[..., Any])
on = cast(Callable[[Action], Callable[[Handler], Handler]], _on)  # the library's @on, typed


@dataclass(frozen=True)
class Options:
    duration: float
    concurrency: int
    writes: int
    warmup: float
    port: int
    bacnet_port: int
    output: Path


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench bacnet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each rate test (default 5)")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight in the rate tests (default 8)"
    )
    parser.add_argument("--writes", type=int, default=200, help="limit writes to time (default 200)")
    parser.add_argument(
        "--warmup", type=float, default=0.5, help="untimed seconds before each rate test (default 0.5)"
    )
    parser.add_argument("--port", type=int, default=0, help="gateway HTTP port (default: a free one)")
    parser.add_argument("--bacnet-port", type=int, default=0, help="gateway UDP port (default: a free one)")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help=f"JSON results (default {RESULTS_FILE})"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    if not 1 <= args.concurrency <= 64:
        parser.error("--concurrency must be 1..64 (bacpypes3 spins with hundreds in flight to one peer)")
    if args.writes < 1:
        parser.error("--writes must be at least 1")
    return Options(
        duration=args.duration,
        concurrency=args.concurrency,
        writes=args.writes,
        warmup=args.warmup,
        port=args.port,
        bacnet_port=args.bacnet_port,
        output=args.output,
    )


# -- the gateway process -------------------------------------------------------------------------------------


def start_gateway(workdir: Path, port: int, bacnet_port: int) -> Gateway:
    database = workdir / "db.sqlite3"
    settings = {
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_DATABASE": str(database),
        "GATEWAY_MAPPING": str(MAPPING),
        "GATEWAY_BACNET_ADDRESS": "127.0.0.1/8",
        "GATEWAY_BACNET_PORT": str(bacnet_port),
        "GATEWAY_BACNET_DEVICE_ID": str(DEVICE_ID),
        "GATEWAY_READ_CONFIGURATION": "false",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    # Settings from the caller's environment would make runs incomparable: the gateway gets only ours.
    environment = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    environment.update(settings)
    log_path = workdir / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Gateway(process, port, database, log_path, settings)


def wait_chargers_api(gateway: Gateway, timeout: float = START_TIMEOUT) -> None:
    """Poll GET /api/chargers until it answers 200."""
    url = f"http://127.0.0.1:{gateway.port}/api/chargers"
    deadline = time.monotonic() + timeout
    while True:
        code = gateway.process.poll()
        if code is not None:
            raise RuntimeError(
                f"the gateway exited with code {code} during start-up:\n{tail(gateway.output())}"
            )
        try:
            get_json(url, timeout=1.0)
            return
        except OSError:  # refused, or an HTTP error status
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not answer within {timeout:.0f} s") from None
            time.sleep(0.1)


# -- the charger ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """A SetChargingProfile as CP1's handler received it."""

    arrived: float  # time.perf_counter()
    connector_id: int
    limit: float


class BenchCharger(ChargePoint):  # type: ignore[misc]
    """CP1: accepts every SetChargingProfile and queues what it received, with the moment it arrived."""

    def __init__(self, charger_id: str, connection: ClientConnection) -> None:
        super().__init__(charger_id, connection, response_timeout=30.0)
        self.profiles: asyncio.Queue[Profile] = asyncio.Queue()

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> Any:
        arrived = time.perf_counter()
        period = cs_charging_profiles["charging_schedule"]["charging_schedule_period"][0]
        self.profiles.put_nowait(Profile(arrived, connector_id, float(period["limit"])))
        return call_result.SetChargingProfile(status="Accepted")


@contextlib.asynccontextmanager
async def connected_charger(gateway: Gateway) -> AsyncIterator[BenchCharger]:
    """CP1 connected, booted (Accepted), connector 1 Available and one MeterValues sent."""
    connection = await websockets.connect(
        f"{gateway.ws_url}/{CHARGER_ID}", subprotocols=[SUBPROTOCOL], proxy=None
    )
    charger = BenchCharger(CHARGER_ID, connection)
    reader = asyncio.create_task(charger.start(), name=f"reader-{CHARGER_ID}")
    try:
        boot = await charger.call(
            call.BootNotification(charge_point_model="Bench", charge_point_vendor="ocpp-gateway"),
            suppress=False,
        )
        if boot.status != "Accepted":
            raise RuntimeError(f"{CHARGER_ID} was not accepted: {boot.status}")
        await charger.call(
            call.StatusNotification(
                connector_id=1,
                error_code=ChargePointErrorCode.no_error,
                status=ChargePointStatus.available,
                timestamp=now_iso(),
            ),
            suppress=False,
        )
        await charger.call(meter_values_payload(0), suppress=False)  # power 7360 W
        yield charger
    finally:
        await connection.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


# -- the BACnet client ---------------------------------------------------------------------------------------


def read_property(device: Address, obj: str, prop: str) -> Any:
    return ReadPropertyRequest(
        objectIdentifier=ObjectIdentifier(obj),
        propertyIdentifier=PropertyIdentifier(prop),
        destination=device,
    )


def read_property_multiple(device: Address) -> Any:
    specs = [
        ReadAccessSpecification(
            objectIdentifier=ObjectIdentifier(obj),
            listOfPropertyReferences=[
                PropertyReference(propertyIdentifier=PropertyIdentifier(prop)) for prop in RPM_PROPERTIES
            ],
        )
        for obj in RPM_OBJECTS
    ]
    return ReadPropertyMultipleRequest(
        listOfReadAccessSpecs=SequenceOf(ReadAccessSpecification)(specs), destination=device
    )


def write_property(device: Address, obj: str, value: Any) -> Any:
    request = WritePropertyRequest(
        objectIdentifier=ObjectIdentifier(obj),
        propertyIdentifier=PropertyIdentifier("present-value"),
        propertyValue=value,
        destination=device,
    )
    request.priority = PRIORITY
    return request


def rpm_properties_read(ack: Any) -> int:
    """Properties an RPM answer carries a value for; raises if any is an access error."""
    count = 0
    for result in ack.listOfReadAccessResults:
        for element in result.listOfResults:
            error = element.readResult.propertyAccessError
            if error is not None:
                raise RuntimeError(
                    f"{result.objectIdentifier} {element.propertyIdentifier}: "
                    f"{error.errorClass}:{error.errorCode}"
                )
            count += 1
    return count


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def wait_device(app: Any, device: Address) -> str:
    """The device's object-name, once the device answers (within DEVICE_TIMEOUT)."""
    deadline = time.monotonic() + DEVICE_TIMEOUT
    while True:
        try:
            ack = await app.request(read_property(device, f"device,{DEVICE_ID}", "object-name"))
            return str(ack.propertyValue.cast_out(CharacterString))
        except ErrorRejectAbortNack:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def wait_power(app: Any, device: Address) -> float:
    """CP1's power, once the gateway shows the MeterValues sent (7360 W); the last read after POWER_TIMEOUT."""
    deadline = time.monotonic() + POWER_TIMEOUT
    while True:
        ack = await app.request(read_property(device, POWER, "present-value"))
        value = float(ack.propertyValue.cast_out(Real))
        if value == 7360.0 or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def rate_test(
    make: Callable[[], Any],
    send: Callable[[Any], Awaitable[Any]],
    count: Callable[[Any], int],
    options: Options,
    gateway: psutil.Process,
) -> dict[str, Any]:
    """Keep `options.concurrency` requests in flight for `options.duration` seconds (after an untimed warm-up);
    `count` gives the properties an answer carries (and raises if it is not the answer wanted)."""

    async def worker(until: float, tally: Tally | None, properties: list[int]) -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            try:
                ack = await send(make())
                read = count(ack)
            except Exception as error:
                if tally is not None:
                    tally.fail(error)
                continue
            if tally is not None:
                tally.latencies.append(time.perf_counter() - started)
                properties.append(read)

    if options.warmup:
        until = time.perf_counter() + options.warmup
        await asyncio.gather(*(worker(until, None, []) for _ in range(options.concurrency)))
    tally, properties = Tally(), [0]
    bench = psutil.Process()
    gateway_before, bench_before = cpu_seconds(gateway), cpu_seconds(bench)
    started = time.perf_counter()
    until = started + options.duration
    await asyncio.gather(*(worker(until, tally, properties) for _ in range(options.concurrency)))
    elapsed = time.perf_counter() - started
    gateway_cpu, bench_cpu = cpu_seconds(gateway) - gateway_before, cpu_seconds(bench) - bench_before
    return {
        "seconds": elapsed,
        "requests": len(tally.latencies),
        "requests_per_second": len(tally.latencies) / elapsed,
        "properties": sum(properties),
        "properties_per_second": sum(properties) / elapsed,
        "latency": tally.summary(),
        "gateway_cpu_percent": 100 * gateway_cpu / elapsed,
        "bench_cpu_percent": 100 * bench_cpu / elapsed,
    }


async def next_profile(charger: BenchCharger, limit: float) -> tuple[Profile, int]:
    """The first profile for connector 1 with this limit, and how many others arrived before it; TimeoutError
    after PROFILE_TIMEOUT."""
    others = 0
    async with asyncio.timeout(PROFILE_TIMEOUT):
        while True:
            profile = await charger.profiles.get()
            if profile.connector_id == 1 and abs(profile.limit - limit) < 0.05:
                return profile, others
            others += 1


async def write_test(app: Any, device: Address, charger: BenchCharger, options: Options) -> dict[str, Any]:
    """Switch smart charging on, then time `options.writes` limit writes to the SetChargingProfile each sends."""
    await app.request(write_property(device, ENABLE, BinaryPV("active")))
    await asyncio.sleep(0.5)  # let the gateway store "enabled" before the first limit arrives
    # One untimed write first: the first profile also pays for first-time work in both processes.
    await app.request(write_property(device, LIMIT, Real(9.0)))
    await next_profile(charger, 9.0)
    ack_tally, profile_tally = Tally(), Tally()
    unexpected = 0
    started = time.perf_counter()
    for index in range(options.writes):
        limit = WRITE_VALUES[index % len(WRITE_VALUES)]
        while not charger.profiles.empty():
            charger.profiles.get_nowait()
            unexpected += 1
        sent = time.perf_counter()
        try:
            await app.request(write_property(device, LIMIT, Real(limit)))
        except Exception as error:
            ack_tally.fail(error)
            continue
        ack_tally.latencies.append(time.perf_counter() - sent)
        try:
            profile, others = await next_profile(charger, limit)
        except Exception as error:
            profile_tally.fail(error)
            continue
        unexpected += others
        profile_tally.latencies.append(profile.arrived - sent)
    elapsed = time.perf_counter() - started
    return {
        "writes": options.writes,
        "seconds": elapsed,
        "writes_per_second": options.writes / elapsed,
        "write_ack": ack_tally.summary(),
        "set_charging_profile": profile_tally.summary(),
        "unexpected_profiles": unexpected,
    }


async def run_client(options: Options, gateway: Gateway, process: psutil.Process) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    app = build_application(f"127.0.0.1:{free_udp_port()}", CLIENT_DEVICE_ID, 1476, "segmented-both")
    try:
        figures["client_address"] = await _wait_bound(app, 5.0)
        device = Address(f"127.0.0.1:{gateway.environment['GATEWAY_BACNET_PORT']}")
        figures["device_name"] = await wait_device(app, device)
        async with connected_charger(gateway) as charger:
            figures["power_read"] = await wait_power(app, device)
            figures["rss_before_bytes"] = process.memory_info().rss

            def read_one(ack: Any) -> int:
                float(ack.propertyValue.cast_out(Real))
                return 1

            figures["read_property"] = await rate_test(
                lambda: read_property(device, POWER, "present-value"), app.request, read_one, options, process
            )
            figures["rss_after_read_property_bytes"] = process.memory_info().rss
            figures["read_property_multiple"] = await rate_test(
                lambda: read_property_multiple(device), app.request, rpm_properties_read, options, process
            )
            figures["rss_after_read_property_multiple_bytes"] = process.memory_info().rss
            figures["write"] = await write_test(app, device, charger, options)
            figures["rss_after_bytes"] = process.memory_info().rss
    finally:
        app.close()
    return figures


# -- the run -------------------------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    machine = machine_facts()
    with contextlib.suppress(metadata.PackageNotFoundError):
        machine["packages"]["bacpypes3"] = metadata.version("bacpypes3")
    result: dict[str, Any] = {"benchmark": "bacnet", "started_at": now_iso(), "machine": machine}
    with tempfile.TemporaryDirectory(prefix="ocpp-bench-") as temporary:
        gateway = start_gateway(
            Path(temporary), options.port or free_port(), options.bacnet_port or free_udp_port()
        )
        result["settings"] = {
            **{
                name: str(value) if isinstance(value, Path) else value
                for name, value in asdict(options).items()
            },
            "gateway_environment": gateway.environment,
            "read_property": {"object": POWER, "property": "present-value"},
            "read_property_multiple": {"objects": list(RPM_OBJECTS), "properties": list(RPM_PROPERTIES)},
            "write": {"object": LIMIT, "priority": PRIORITY, "values": list(WRITE_VALUES), "enable": ENABLE},
        }
        figures: dict[str, Any] = {}
        try:
            started = time.perf_counter()
            wait_chargers_api(gateway)
            figures["gateway_start_seconds"] = time.perf_counter() - started
            process = psutil.Process(gateway.process.pid)
            figures.update(asyncio.run(run_client(options, gateway, process)))
            figures["rss_peak_bytes"] = peak_rss(process.pid)
        except BaseException:
            print(f"gateway output:\n{tail(gateway.output())}", file=sys.stderr)
            raise
        finally:
            figures["gateway_stop"] = stop_gateway(gateway)
        output = gateway.output()
    figures["gateway_output"] = {
        "lines": len(output.splitlines()),
        "warnings": sum("WARNING" in line for line in output.splitlines()),
        "problems": problem_lines(output)[:50],
        "tail": output.splitlines()[-40:],
    }
    result["results"] = figures
    return result


def print_table(result: dict[str, Any]) -> None:
    settings, figures = result["settings"], result["results"]
    rp, rpm, write = figures["read_property"], figures["read_property_multiple"], figures["write"]

    def latency(tally: dict[str, Any]) -> str:
        if tally["count"] == 0:
            return f"none answered, {tally['failures']} failed"
        failed = f", {tally['failures']} failed" if tally["failures"] else ""
        return f"{tally['p50_ms']:.2f} / {tally['p99_ms']:.2f} ms (max {tally['max_ms']:.1f}{failed})"

    def cpu(test: dict[str, Any]) -> str:
        return f"{test['gateway_cpu_percent']:.0f} % of one core (bench: {test['bench_cpu_percent']:.0f} %)"

    def mib(value: int | None) -> str:
        return "-" if value is None else f"{value / MIB:.1f} MiB"

    stop = figures["gateway_stop"]
    per_request = len(RPM_OBJECTS) * len(RPM_PROPERTIES)
    rows = [
        (
            "ReadProperty rate",
            f"{rp['requests_per_second']:.0f} requests/s ({rp['requests']} in {rp['seconds']:.1f} s, "
            f"concurrency {settings['concurrency']})",
        ),
        ("ReadProperty p50 / p99", latency(rp["latency"])),
        ("gateway CPU (ReadProperty)", cpu(rp)),
        (
            "ReadPropertyMultiple rate",
            f"{rpm['requests_per_second']:.0f} requests/s = {rpm['properties_per_second']:.0f} properties/s "
            f"({len(RPM_OBJECTS)} objects x {len(RPM_PROPERTIES)} = {per_request} a request)",
        ),
        ("ReadPropertyMultiple p50 / p99", latency(rpm["latency"])),
        ("gateway CPU (ReadPropertyMultiple)", cpu(rpm)),
        ("WriteProperty ack p50 / p99", latency(write["write_ack"])),
        (
            "write -> SetChargingProfile p50 / p99",
            f"{latency(write['set_charging_profile'])}, {write['writes']} writes in {write['seconds']:.2f} s",
        ),
        ("gateway start-up", f"{figures['gateway_start_seconds']:.2f} s"),
        ("gateway RSS before reads", mib(figures["rss_before_bytes"])),
        ("gateway RSS after reads", mib(figures["rss_after_read_property_multiple_bytes"])),
        ("gateway RSS after writes", mib(figures["rss_after_bytes"])),
        ("gateway peak RSS", mib(figures["rss_peak_bytes"])),
        (
            "gateway stop (SIGINT)",
            f"exit {stop['exit_code']} after {stop['seconds']:.2f} s{' (KILLED)' if stop['killed'] else ''}",
        ),
        (
            "gateway output",
            f"{figures['gateway_output']['lines']} lines, {figures['gateway_output']['warnings']} warnings, "
            f"{len(figures['gateway_output']['problems'])} error lines",
        ),
    ]
    machine = result["machine"]
    print(
        f"\nbacnet: device {DEVICE_ID} ({figures['device_name']}) on {machine['cpu_count']} cores, "
        f"Python {machine['python']}, bacpypes3 {machine['packages'].get('bacpypes3')}, "
        f"rate tests {settings['duration']:.0f} s each"
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for test, tally in (
        ("ReadProperty", rp["latency"]),
        ("ReadPropertyMultiple", rpm["latency"]),
        ("WriteProperty", write["write_ack"]),
        ("SetChargingProfile", write["set_charging_profile"]),
    ):
        for kind, error in tally["errors"].items():
            print(f"  ! {test}: {error['count']} x {kind}: {error['example']}")
    for line in figures["gateway_output"]["problems"][:10]:
        print(f"  ! gateway: {line}")


def failed(result: dict[str, Any]) -> list[str]:
    """What makes the run a failure (the figures are still written)."""
    figures = result["results"]
    reasons = []
    if figures["power_read"] != 7360.0:
        reasons.append(f"{POWER} read {figures['power_read']}, not the 7360 W CP1 sent")
    for name in ("read_property", "read_property_multiple"):
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
    if figures["gateway_stop"]["killed"]:
        reasons.append("the gateway did not stop on SIGINT and was killed")
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return report(run(options), options.output, print_table, failed)


if __name__ == "__main__":
    sys.exit(main())
