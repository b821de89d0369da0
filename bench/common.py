"""What the protocol benchmarks (`bench.bacnet`, `bench.modbus`) share: the gateway in its own process,
charger CP1 recording each SetChargingProfile as it arrives, and a rate test with requests in flight."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import psutil
import websockets
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, ChargePointErrorCode, ChargePointStatus
from websockets.asyncio.client import ClientConnection

from bench.connect_many import (
    SUBPROTOCOL,
    Gateway,
    Tally,
    latency_text,
    machine_facts,
    meter_values_payload,
    mib,
    now_iso,
    output_figures,
    output_text,
    peak_rss,
    stop_gateway,
    tail,
    wait_healthy,
)

CHARGER_ID = "CP1"
PROFILE_TIMEOUT = 10.0  # seconds for a written limit to reach the charger

Handler = TypeVar("Handler", bound=Callable[..., Any])
on = cast(Callable[[Action], Callable[[Handler], Handler]], _on)  # the library's @on, typed


# -- the gateway process -------------------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


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


# -- freshness: a charger's MeterValues to the value a BMS reads -------------------------------------------------


FRESHNESS_SAMPLES = 200
FRESHNESS_TIMEOUT = 5.0  # seconds for one new value to show


def power_meter_values(power: float) -> Any:
    """CP1's MeterValues for connector 1 with this power (W)."""
    sampled = [{"value": f"{power:.0f}", "measurand": "Power.Active.Import", "unit": "W"}]
    return call.MeterValues(connector_id=1, meter_value=[{"timestamp": now_iso(), "sampled_value": sampled}])


async def freshness_test(
    charger: BenchCharger, read_power: Callable[[], Awaitable[float]], samples: int = FRESHNESS_SAMPLES
) -> dict[str, Any]:
    """For each sample CP1 sends a new power and the client reads it back as fast as answers come: the time from
    sending the MeterValues to the first read that shows the new value (it includes one read's round trip)."""
    tally, reads = Tally(), 0
    for index in range(samples):
        power = 1000.0 + 10 * index  # never the value before
        sent = time.perf_counter()
        answer = asyncio.create_task(charger.call(power_meter_values(power), suppress=False))
        try:
            async with asyncio.timeout(FRESHNESS_TIMEOUT):
                while True:
                    reads += 1
                    if await read_power() == power:
                        break
            tally.latencies.append(time.perf_counter() - sent)
        except Exception as error:
            tally.fail(error)
        await answer
        await asyncio.sleep(0.005)  # apart, as meter values are
    return {"samples": samples, "reads": reads, "fresh": tally.summary()}


def freshness_failures(figures: dict[str, Any]) -> list[str]:
    fresh = figures["freshness"]["fresh"]
    if fresh["failures"] or fresh["count"] != figures["freshness"]["samples"]:
        return [f"freshness: {fresh['failures']} of {figures['freshness']['samples']} values never showed"]
    return []


# -- the rate test -------------------------------------------------------------------------------------------


class RateOptions(Protocol):
    """What a rate test takes from a benchmark's options."""

    @property
    def duration(self) -> float: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def warmup(self) -> float: ...


async def rate_test(
    make: Callable[[], Any],
    send: Callable[[Any], Awaitable[Any]],
    count: Callable[[Any], int],
    options: RateOptions,
    gateway: psutil.Process,
    unit: str = "properties",
) -> dict[str, Any]:
    """Keep `options.concurrency` requests in flight for `options.duration` seconds (after an untimed
    warm-up); `count` gives the values (`unit`: properties, registers) an answer carries, and raises if it is
    not the answer wanted."""

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
        unit: sum(properties),
        f"{unit}_per_second": sum(properties) / elapsed,
        "latency": tally.summary(),
        "gateway_cpu_percent": 100 * gateway_cpu / elapsed,
        "bench_cpu_percent": 100 * bench_cpu / elapsed,
    }


# -- one gateway, one client: the run and its table -----------------------------------------------------------


def run_against_gateway(
    benchmark: str,
    package: str,
    gateway: Callable[[Path], Gateway],
    settings: dict[str, Any],
    client: Callable[[Gateway, psutil.Process], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    """Start the gateway (in a temporary folder), time its start, run the client against it, stop it, and gather
    the figures with the machine (and `package`'s version) and the settings."""
    machine = machine_facts()
    with contextlib.suppress(metadata.PackageNotFoundError):
        machine["packages"][package] = metadata.version(package)
    result: dict[str, Any] = {"benchmark": benchmark, "started_at": now_iso(), "machine": machine}
    with tempfile.TemporaryDirectory(prefix="ocpp-bench-") as temporary:
        started_gateway = gateway(Path(temporary))
        result["settings"] = {
            **settings,
            "gateway_environment": started_gateway.environment,
        }
        figures: dict[str, Any] = {}
        try:
            started = time.perf_counter()
            wait_healthy(started_gateway)
            figures["gateway_start_seconds"] = time.perf_counter() - started
            process = psutil.Process(started_gateway.process.pid)
            figures.update(asyncio.run(client(started_gateway, process)))
            figures["rss_peak_bytes"] = peak_rss(process.pid)
        except BaseException:
            print(f"gateway output:\n{tail(started_gateway.output())}", file=sys.stderr)
            raise
        finally:
            figures["gateway_stop"] = stop_gateway(started_gateway)
        output = started_gateway.output()
    figures["gateway_output"] = output_figures(output)
    result["results"] = figures
    return result


def cpu_text(test: dict[str, Any]) -> str:
    return f"{test['gateway_cpu_percent']:.0f} % of one core (bench: {test['bench_cpu_percent']:.0f} %)"


def gateway_rows(figures: dict[str, Any], after_reads: str) -> list[tuple[str, str]]:
    """The rows every client benchmark ends with: the write-through, start-up, memory, stop and output."""
    write, stop, fresh = figures["write"], figures["gateway_stop"], figures["freshness"]
    return [
        (
            "MeterValues -> value readable p50 / p99",
            f"{latency_text(fresh['fresh'])}, {fresh['samples']} values, {fresh['reads']} reads",
        ),
        (
            "write -> SetChargingProfile p50 / p99",
            f"{latency_text(write['set_charging_profile'])}, {write['writes']} writes in {write['seconds']:.2f} s",
        ),
        ("gateway start-up", f"{figures['gateway_start_seconds']:.2f} s"),
        ("gateway RSS before reads", mib(figures["rss_before_bytes"])),
        ("gateway RSS after reads", mib(figures[after_reads])),
        ("gateway RSS after writes", mib(figures["rss_after_bytes"])),
        ("gateway peak RSS", mib(figures["rss_peak_bytes"])),
        (
            "gateway stop (SIGINT)",
            f"exit {stop['exit_code']} after {stop['seconds']:.2f} s{' (KILLED)' if stop['killed'] else ''}",
        ),
        ("gateway output", output_text(figures["gateway_output"])),
    ]
