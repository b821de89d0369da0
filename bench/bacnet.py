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
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
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
    Gateway,
    Tally,
    free_port,
    latency_text,
    options_settings,
    print_rows,
    report,
    spawn_gateway,
)
from tests.bacnet_peer import _wait_bound, build_application, free_udp_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "bacnet.json"
MAPPING = ROOT / "mappings" / "example.yaml"
DEVICE_ID = 4711
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
DEVICE_TIMEOUT = 15.0  # seconds for the device to answer at all
POWER_TIMEOUT = 10.0  # seconds for CP1's MeterValues to show


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
    return spawn_gateway(
        workdir,
        port,
        {
            "GATEWAY_MAPPING": str(MAPPING),
            "GATEWAY_BACNET_ADDRESS": "127.0.0.1/8",
            "GATEWAY_BACNET_PORT": str(bacnet_port),
            "GATEWAY_BACNET_DEVICE_ID": str(DEVICE_ID),
            "GATEWAY_MODBUS_ENABLED": "false",  # measured on its own (bench/modbus.py)
            "GATEWAY_READ_CONFIGURATION": "false",
            "GATEWAY_LOG_LEVEL": "warning",
        },
    )


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


async def read_power(app: Any, device: Address) -> float:
    ack = await app.request(read_property(device, POWER, "present-value"))
    return float(ack.propertyValue.cast_out(Real))


async def wait_power(app: Any, device: Address) -> float:
    """CP1's power, once the gateway shows the MeterValues sent (7360 W); the last read after POWER_TIMEOUT."""
    deadline = time.monotonic() + POWER_TIMEOUT
    while True:
        ack = await app.request(read_property(device, POWER, "present-value"))
        value = float(ack.propertyValue.cast_out(Real))
        if value == 7360.0 or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


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
            figures["freshness"] = await freshness_test(charger, lambda: read_power(app, device))
            figures["write"] = await write_test(app, device, charger, options)
            figures["rss_after_bytes"] = process.memory_info().rss
    finally:
        app.close()
    return figures


# -- the run -------------------------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    settings = {
        **options_settings(options),
        "read_property": {"object": POWER, "property": "present-value"},
        "read_property_multiple": {"objects": list(RPM_OBJECTS), "properties": list(RPM_PROPERTIES)},
        "write": {"object": LIMIT, "priority": PRIORITY, "values": list(WRITE_VALUES), "enable": ENABLE},
    }
    return run_against_gateway(
        "bacnet",
        "bacpypes3",
        lambda workdir: start_gateway(
            workdir, options.port or free_port(), options.bacnet_port or free_udp_port()
        ),
        settings,
        lambda gateway, process: run_client(options, gateway, process),
    )


def print_table(result: dict[str, Any]) -> None:
    settings, figures = result["settings"], result["results"]
    rp, rpm, write = figures["read_property"], figures["read_property_multiple"], figures["write"]
    per_request = len(RPM_OBJECTS) * len(RPM_PROPERTIES)
    rows = [
        (
            "ReadProperty rate",
            f"{rp['requests_per_second']:.0f} requests/s ({rp['requests']} in {rp['seconds']:.1f} s, "
            f"concurrency {settings['concurrency']})",
        ),
        ("ReadProperty p50 / p99", latency_text(rp["latency"])),
        ("gateway CPU (ReadProperty)", cpu_text(rp)),
        (
            "ReadPropertyMultiple rate",
            f"{rpm['requests_per_second']:.0f} requests/s = {rpm['properties_per_second']:.0f} properties/s "
            f"({len(RPM_OBJECTS)} objects x {len(RPM_PROPERTIES)} = {per_request} a request)",
        ),
        ("ReadPropertyMultiple p50 / p99", latency_text(rpm["latency"])),
        ("gateway CPU (ReadPropertyMultiple)", cpu_text(rpm)),
        ("WriteProperty ack p50 / p99", latency_text(write["write_ack"])),
        *gateway_rows(figures, "rss_after_read_property_multiple_bytes"),
    ]
    machine = result["machine"]
    print_rows(
        f"bacnet: device {DEVICE_ID} ({figures['device_name']}) on {machine['cpu_count']} cores, "
        f"Python {machine['python']}, bacpypes3 {machine['packages'].get('bacpypes3')}, "
        f"rate tests {settings['duration']:.0f} s each",
        rows,
        [
            ("ReadProperty", rp["latency"]),
            ("ReadPropertyMultiple", rpm["latency"]),
            ("WriteProperty", write["write_ack"]),
            ("SetChargingProfile", write["set_charging_profile"]),
        ],
        figures["gateway_output"],
    )


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
    reasons += freshness_failures(figures)
    if figures["gateway_stop"]["killed"]:
        reasons.append("the gateway did not stop on SIGINT and was killed")
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return report(run(options), options.output, print_table, failed)


if __name__ == "__main__":
    sys.exit(main())
