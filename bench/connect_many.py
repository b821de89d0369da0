"""Connect many chargers to a gateway in its own process; measure connect time, latencies, memory and CPU.

The gateway runs as `python -m gateway run` on a free loopback port with a throw-away database and
GATEWAY_GUEST_RESPONSE=Accepted, so every bench charger (BENCH-0001, BENCH-0002, ...) is accepted. This
process plays the chargers with the `ocpp` library's 1.6 ChargePoint over `websockets`:

1. each charger connects and sends BootNotification, then StatusNotification for connector 1, at most
   --concurrency of them at a time;
2. every charger sends one MeterValues, all at once;
3. for --window seconds every charger stays connected and sends one Heartbeat at a random moment, while the
   gateway's CPU time is measured;
4. every charger disconnects and the gateway is stopped with SIGINT (killed if it does not stop).

It prints a table and writes bench/results/connect_many.json. The gateway and this process share the machine's
cores, so the gateway's figures include competing with the charger simulation for CPU.

    python -m bench.connect_many --chargers 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import websockets
from ocpp.v16 import ChargePoint, call, datatypes
from ocpp.v16.enums import (
    ChargePointErrorCode,
    ChargePointStatus,
    Measurand,
    Phase,
    ReadingContext,
    UnitOfMeasure,
)
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "connect_many.json"
SUBPROTOCOL = Subprotocol("ocpp1.6")
MIB = 1024 * 1024
SAMPLES_PER_METER_VALUES = 5  # what `_meter_values` sends: energy, power and three phase currents
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
PHASES = ("connect", "boot", "status", "meter_values", "heartbeat")


@dataclass(frozen=True)
class Options:
    chargers: int
    concurrency: int
    window: float
    port: int
    compression: bool
    response_timeout: float
    output: Path


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=1000, help="chargers to connect (default 1000)")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="connect+boot at most this many at a time"
    )
    parser.add_argument("--window", type=float, default=10.0, help="seconds of the CPU window (default 10)")
    parser.add_argument("--port", type=int, default=0, help="gateway port (default: a free one)")
    parser.add_argument(
        "--no-compression",
        dest="compression",
        action="store_false",
        help="do not offer permessage-deflate (websockets offers it by default; many chargers do not)",
    )
    parser.add_argument(
        "--response-timeout",
        type=float,
        default=30.0,
        help="seconds a charger waits for an answer (default 30)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help=f"JSON results (default {RESULTS_FILE})"
    )
    args = parser.parse_args(argv)
    if args.chargers < 1 or args.chargers > 9999:
        parser.error("--chargers must be 1..9999")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.window <= 0:
        parser.error("--window must be positive")
    return Options(
        chargers=args.chargers,
        concurrency=args.concurrency,
        window=args.window,
        port=args.port,
        compression=args.compression,
        response_timeout=args.response_timeout,
        output=args.output,
    )


# -- process limits and machine facts ------------------------------------------------------------------------


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; returns the soft limit in force.

    Also the gateway's `preexec_fn`, so it must stay simple: it runs in the child between fork and exec.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine_facts() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in ("ocpp-gateway", "ocpp", "websockets", "uvicorn", "fastapi", "starlette", "psutil"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": packages,
    }


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A free TCP port on loopback (a UDP one with kind=SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- the gateway process -------------------------------------------------------------------------------------


@dataclass
class Gateway:
    """The gateway under test, in its own process."""

    process: subprocess.Popen[bytes]
    port: int
    database: Path
    log_path: Path
    environment: dict[str, str]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/health"

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def spawn_gateway(
    workdir: Path, port: int, settings: dict[str, str], preexec_fn: Callable[[], object] | None = None
) -> Gateway:
    """`python -m gateway run` with only these GATEWAY_ settings (HTTP on 127.0.0.1:`port`, a database in
    `workdir` unless given) and its output in `workdir`/gateway.log."""
    settings = {
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_DATABASE": str(workdir / "db.sqlite3"),
        **settings,
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
            preexec_fn=preexec_fn,
        )
    return Gateway(process, port, Path(settings["GATEWAY_DATABASE"]), log_path, settings)


def start_gateway(workdir: Path, port: int) -> Gateway:
    settings = {
        "GATEWAY_GUEST_RESPONSE": "Accepted",
        "GATEWAY_LOG_LEVEL": "warning",
        # The BACnet device runs (each charger's points become objects) on loopback, on a port of its own.
        "GATEWAY_BACNET_ADDRESS": "127.0.0.1/8",
        "GATEWAY_BACNET_PORT": str(free_port(socket.SOCK_DGRAM)),
        # So does the Modbus server (a gateway already on 5020 must not stop the bench).
        "GATEWAY_MODBUS_HOST": "127.0.0.1",
        "GATEWAY_MODBUS_PORT": str(free_port(socket.SOCK_STREAM)),
        # The bench chargers answer no GetConfiguration; the read after boot is measured elsewhere.
        "GATEWAY_READ_CONFIGURATION": "false",
    }
    return spawn_gateway(workdir, port, settings, preexec_fn=raise_open_files_limit)


def get_json(url: str, timeout: float = 5.0) -> Any:
    """GET a JSON document, never through a proxy (the gateway is on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_healthy(gateway: Gateway, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code = gateway.process.poll()
        if code is not None:
            raise RuntimeError(
                f"the gateway exited with code {code} during start-up:\n{tail(gateway.output())}"
            )
        try:
            health: dict[str, Any] = get_json(gateway.health_url, timeout=1.0)
            return health
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not answer within {timeout:.0f} s") from None
            time.sleep(0.1)


def stop_gateway(gateway: Gateway, timeout: float = STOP_TIMEOUT) -> dict[str, Any]:
    """SIGINT, wait, kill if needed."""
    started = time.perf_counter()
    killed = False
    if gateway.process.poll() is None:
        gateway.process.send_signal(signal.SIGINT)
        try:
            gateway.process.wait(timeout)
        except subprocess.TimeoutExpired:
            gateway.process.kill()
            gateway.process.wait()
            killed = True
    return {
        "exit_code": gateway.process.returncode,
        "seconds": time.perf_counter() - started,
        "killed": killed,
    }


def peak_rss(pid: int) -> int | None:
    """The process's peak resident set (VmHWM) on Linux, else None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def database_counts(database: Path) -> dict[str, int]:
    """Rows in the gateway's tables once it has stopped: did the writes of the run arrive?"""
    counts: dict[str, int] = {}
    connection = sqlite3.connect(database)
    try:
        for table in ("chargers", "connectors", "meter_values", "message_log"):
            counts[table] = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        connection.close()
    return counts


def options_settings(options: object) -> dict[str, Any]:
    """A dataclass of options as JSON values (paths as text)."""
    return {
        name: str(value) if isinstance(value, Path) else value
        for name, value in asdict(options).items()  # type: ignore[call-overload]
    }


def output_figures(output: str) -> dict[str, Any]:
    """What the gateway printed: line and warning counts, error lines, the last lines."""
    lines = output.splitlines()
    return {
        "lines": len(lines),
        "warnings": sum("WARNING" in line for line in lines),
        "problems": problem_lines(output)[:50],
        "tail": lines[-40:],
    }


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def problem_lines(text: str) -> list[str]:
    """Lines of the gateway's output that name an error (warnings are counted apart)."""
    markers = ("ERROR", "CRITICAL", "Traceback", "Exception", "Error:")
    return [line for line in text.splitlines() if any(marker in line for marker in markers)]


# -- the chargers --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Latencies (seconds) and failures of one kind of exchange."""

    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def fail(self, error: BaseException) -> None:
        kind = type(error).__name__
        self.failures[kind] += 1
        self.examples.setdefault(kind, str(error)[:300])

    def summary(self) -> dict[str, Any]:
        return {
            "count": len(self.latencies),
            "failures": sum(self.failures.values()),
            "p50_ms": percentile_ms(self.latencies, 50),
            "p99_ms": percentile_ms(self.latencies, 99),
            "max_ms": max(self.latencies) * 1000 if self.latencies else None,
            "errors": {
                kind: {"count": n, "example": self.examples[kind]} for kind, n in self.failures.items()
            },
        }


def percentile_ms(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] * 1000


@dataclass
class Charger:
    """One simulated charger: its WebSocket, its ocpp ChargePoint and the task reading its messages."""

    id: str
    connection: ClientConnection
    charge_point: Any
    reader: asyncio.Task[Any]

    async def close(self) -> None:
        await self.connection.close()
        self.reader.cancel()
        # The reader ends with ConnectionClosed once the socket is closed; that is the expected end.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def meter_values_payload(index: int) -> Any:
    sampled = [
        datatypes.SampledValue(
            value=str(1_000_000 + index),
            context=ReadingContext.sample_periodic,
            measurand=Measurand.energy_active_import_register,
            unit=UnitOfMeasure.wh,
        ),
        datatypes.SampledValue(
            value="7360",
            context=ReadingContext.sample_periodic,
            measurand=Measurand.power_active_import,
            unit=UnitOfMeasure.w,
        ),
    ]
    sampled += [
        datatypes.SampledValue(
            value="10.7",
            context=ReadingContext.sample_periodic,
            measurand=Measurand.current_import,
            phase=phase,
            unit=UnitOfMeasure.a,
        )
        for phase in (Phase.l1, Phase.l2, Phase.l3)
    ]
    assert len(sampled) == SAMPLES_PER_METER_VALUES
    return call.MeterValues(
        connector_id=1, meter_value=[datatypes.MeterValue(timestamp=now_iso(), sampled_value=sampled)]
    )


class Fleet:
    """The simulated chargers and what they measured."""

    def __init__(self, ws_url: str, options: Options) -> None:
        self.ws_url = ws_url
        self.options = options
        self.chargers: list[Charger] = []
        self.tallies = {phase: Tally() for phase in PHASES}
        self.registration: Counter[str] = Counter()

    async def connect_all(self) -> float:
        """Connect, boot and report status for every charger; returns the seconds it all took."""
        limit = asyncio.Semaphore(self.options.concurrency)
        started = time.perf_counter()
        chargers = await asyncio.gather(
            *(self._connect(index, limit) for index in range(1, self.options.chargers + 1))
        )
        elapsed = time.perf_counter() - started
        self.chargers = [charger for charger in chargers if charger is not None]
        return elapsed

    async def _connect(self, index: int, limit: asyncio.Semaphore) -> Charger | None:
        charger_id = f"BENCH-{index:04d}"
        async with limit:
            started = time.perf_counter()
            try:
                connection = await websockets.connect(
                    f"{self.ws_url}/{charger_id}",
                    subprotocols=[SUBPROTOCOL],
                    compression="deflate" if self.options.compression else None,
                    proxy=None,
                )
            except Exception as error:
                self.tallies["connect"].fail(error)
                return None
            self.tallies["connect"].latencies.append(time.perf_counter() - started)
            charge_point = ChargePoint(charger_id, connection, response_timeout=self.options.response_timeout)
            reader = asyncio.create_task(charge_point.start(), name=f"reader-{charger_id}")
            charger = Charger(charger_id, connection, charge_point, reader)
            boot = await self._call(
                charger,
                "boot",
                call.BootNotification(
                    charge_point_model="Bench",
                    charge_point_vendor="ocpp-gateway",
                    charge_point_serial_number=charger_id,
                    firmware_version="bench-1",
                ),
            )
            if boot is None:
                await charger.close()
                return None
            self.registration[str(boot.status)] += 1
            await self._call(
                charger,
                "status",
                call.StatusNotification(
                    connector_id=1,
                    error_code=ChargePointErrorCode.no_error,
                    status=ChargePointStatus.available,
                    timestamp=now_iso(),
                ),
            )
            return charger

    async def _call(self, charger: Charger, phase: str, payload: Any) -> Any:
        """Send one CALL and time it; None when it failed (a CALLERROR, a timeout, a closed socket)."""
        started = time.perf_counter()
        try:
            result = await charger.charge_point.call(payload, suppress=False)
        except Exception as error:
            self.tallies[phase].fail(error)
            return None
        self.tallies[phase].latencies.append(time.perf_counter() - started)
        return result

    async def send_meter_values(self) -> float:
        """Every charger sends one MeterValues, all at once; returns the seconds until all were answered."""
        started = time.perf_counter()
        await asyncio.gather(
            *(
                self._call(charger, "meter_values", meter_values_payload(i))
                for i, charger in enumerate(self.chargers)
            )
        )
        return time.perf_counter() - started

    async def heartbeat_window(self, gateway: Any) -> dict[str, float]:
        """Every charger sends one Heartbeat at a random moment of the window; measure CPU time over it."""
        window = self.options.window
        spread = random.Random(16)  # the same moments every run

        async def beat(charger: Charger, delay: float) -> None:
            await asyncio.sleep(delay)
            await self._call(charger, "heartbeat", call.Heartbeat())

        bench = psutil.Process()
        gateway_before, bench_before = gateway.cpu_times(), bench.cpu_times()
        started = time.perf_counter()
        beats = [asyncio.create_task(beat(c, spread.uniform(0, 0.9 * window))) for c in self.chargers]
        await asyncio.sleep(max(0.0, window - (time.perf_counter() - started)))
        elapsed = time.perf_counter() - started
        gateway_after, bench_after = gateway.cpu_times(), bench.cpu_times()
        await asyncio.gather(*beats)

        def cpu(before: Any, after: Any) -> float:
            return float(after.user + after.system - before.user - before.system)

        return {
            "seconds": elapsed,
            "gateway_cpu_seconds": cpu(gateway_before, gateway_after),
            "gateway_cpu_percent": 100 * cpu(gateway_before, gateway_after) / elapsed,
            "bench_cpu_percent": 100 * cpu(bench_before, bench_after) / elapsed,
        }

    async def close_all(self) -> float:
        started = time.perf_counter()
        await asyncio.gather(*(charger.close() for charger in self.chargers))
        return time.perf_counter() - started


async def wait_disconnected(gateway: Gateway, limit: float = 15.0) -> float | None:
    """Seconds until the gateway's health says no charger is connected, or None if it never does."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        health = await asyncio.to_thread(get_json, gateway.health_url)
        if health["connected"] == 0:
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    return None


async def run_chargers(options: Options, gateway: Gateway, process: Any) -> dict[str, Any]:
    """Phases 1 to 4 (but stopping the gateway) against a started, healthy gateway."""
    fleet = Fleet(gateway.ws_url, options)
    figures: dict[str, Any] = {}
    figures["connect_boot_seconds"] = await fleet.connect_all()
    figures["connected"] = len(fleet.chargers)
    figures["registration"] = dict(fleet.registration)
    health = await asyncio.to_thread(get_json, gateway.health_url)
    figures["gateway_connected_after_boot"] = health["connected"]
    figures["rss_connected_bytes"] = process.memory_info().rss
    figures["gateway_open_files_connected"] = process.num_fds() if hasattr(process, "num_fds") else None
    figures["meter_values_seconds"] = await fleet.send_meter_values()
    figures["rss_after_meter_values_bytes"] = process.memory_info().rss
    figures["window"] = await fleet.heartbeat_window(process)
    figures["rss_after_window_bytes"] = process.memory_info().rss
    figures["close_seconds"] = await fleet.close_all()
    figures["gateway_disconnected_seconds"] = await wait_disconnected(gateway)
    figures["exchanges"] = {phase: tally.summary() for phase, tally in fleet.tallies.items()}
    return figures


# -- the run -------------------------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    bench_open_files = raise_open_files_limit()
    if bench_open_files < options.chargers + 64:
        print(
            f"warning: this process may open only {bench_open_files} files, fewer than "
            f"{options.chargers} chargers need",
            file=sys.stderr,
        )
    result: dict[str, Any] = {
        "benchmark": "connect_many",
        "started_at": now_iso(),
        "machine": machine_facts(),
    }
    with tempfile.TemporaryDirectory(prefix="ocpp-bench-") as temporary:
        gateway = start_gateway(Path(temporary), options.port or free_port())
        result["settings"] = {
            **options_settings(options),
            "gateway_environment": gateway.environment,
            "bench_open_files_limit": bench_open_files,
        }
        figures: dict[str, Any] = {}
        try:
            started = time.perf_counter()
            wait_healthy(gateway)
            figures["gateway_start_seconds"] = time.perf_counter() - started
            process = psutil.Process(gateway.process.pid)
            with contextlib.suppress(AttributeError, psutil.Error):
                result["settings"]["gateway_open_files_limit"] = process.rlimit(psutil.RLIMIT_NOFILE)[0]
            time.sleep(1.0)  # let start-up work settle before the idle figure
            figures["rss_idle_bytes"] = process.memory_info().rss
            figures.update(asyncio.run(run_chargers(options, gateway, process)))
            figures["rss_peak_bytes"] = peak_rss(process.pid)
        except BaseException:
            print(f"gateway output:\n{tail(gateway.output())}", file=sys.stderr)
            raise
        finally:
            figures["gateway_stop"] = stop_gateway(gateway)
        output = gateway.output()
        figures["database_rows"] = database_counts(gateway.database)
    figures["gateway_output"] = output_figures(output)
    result["results"] = figures
    return result


def print_table(result: dict[str, Any]) -> None:
    settings, figures = result["settings"], result["results"]
    exchanges = figures["exchanges"]
    chargers = settings["chargers"]
    connected = figures["connected"]

    def latency(phase: str) -> str:
        return latency_text(exchanges[phase], digits=1)

    rate = connected / figures["connect_boot_seconds"]
    per_charger = (figures["rss_connected_bytes"] - figures["rss_idle_bytes"]) / max(connected, 1) / 1024
    window = figures["window"]
    stop = figures["gateway_stop"]
    disconnected = figures["gateway_disconnected_seconds"]
    rows = [
        (
            "chargers connected / asked",
            f"{connected} / {chargers} (gateway counts {figures['gateway_connected_after_boot']})",
        ),
        ("registration", ", ".join(f"{k} {v}" for k, v in figures["registration"].items()) or "-"),
        (
            "connect+boot+status, all",
            f"{figures['connect_boot_seconds']:.2f} s ({rate:.0f} chargers/s, "
            f"concurrency {settings['concurrency']})",
        ),
        ("WebSocket connect p50 / p99", latency("connect")),
        ("BootNotification p50 / p99", latency("boot")),
        ("StatusNotification p50 / p99", latency("status")),
        ("MeterValues burst, all", f"{figures['meter_values_seconds']:.2f} s"),
        ("MeterValues p50 / p99", latency("meter_values")),
        ("Heartbeat p50 / p99 (in window)", latency("heartbeat")),
        ("gateway start-up", f"{figures['gateway_start_seconds']:.2f} s"),
        ("gateway RSS idle", mib(figures["rss_idle_bytes"])),
        (
            "gateway RSS all connected",
            f"{mib(figures['rss_connected_bytes'])} ({per_charger:.0f} KiB per charger)",
        ),
        ("gateway RSS after MeterValues", mib(figures["rss_after_meter_values_bytes"])),
        ("gateway RSS after window", mib(figures["rss_after_window_bytes"])),
        ("gateway peak RSS", mib(figures["rss_peak_bytes"])),
        (
            f"gateway CPU over {window['seconds']:.1f} s",
            f"{window['gateway_cpu_percent']:.1f} % of one core (bench: {window['bench_cpu_percent']:.1f} %)",
        ),
        ("gateway open files (connected)", str(figures["gateway_open_files_connected"])),
        ("close all", f"{figures['close_seconds']:.2f} s"),
        ("gateway saw all disconnect", "never" if disconnected is None else f"after {disconnected:.2f} s"),
        (
            "gateway stop (SIGINT)",
            f"exit {stop['exit_code']} after {stop['seconds']:.2f} s{' (KILLED)' if stop['killed'] else ''}",
        ),
        ("database rows", ", ".join(f"{k} {v}" for k, v in figures["database_rows"].items())),
        ("gateway output", output_text(figures["gateway_output"])),
    ]
    machine = result["machine"]
    print_rows(
        f"connect_many: {chargers} chargers on {machine['cpu_count']} cores, Python {machine['python']}, "
        f"{'with' if settings['compression'] else 'without'} permessage-deflate",
        rows,
        exchanges.items(),
        figures["gateway_output"],
    )


def latency_text(tally: dict[str, Any], digits: int = 2) -> str:
    """'p50 / p99 ms (max ..., n failed)' of a tally."""
    if tally["count"] == 0:
        return f"none answered, {tally['failures']} failed"
    failed = f", {tally['failures']} failed" if tally["failures"] else ""
    return (
        f"{tally['p50_ms']:.{digits}f} / {tally['p99_ms']:.{digits}f} ms (max {tally['max_ms']:.1f}{failed})"
    )


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f} MiB"


def output_text(output: dict[str, Any]) -> str:
    return f"{output['lines']} lines, {output['warnings']} warnings, {len(output['problems'])} error lines"


def print_rows(
    title: str,
    rows: list[tuple[str, str]],
    tallies: Iterable[tuple[str, dict[str, Any]]],
    output: dict[str, Any],
) -> None:
    """A benchmark's table: the title, its rows aligned, then every error of its tallies and of the gateway."""
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for test, tally in tallies:
        for kind, error in tally["errors"].items():
            print(f"  ! {test}: {error['count']} x {kind}: {error['example']}")
    for line in output["problems"][:10]:
        print(f"  ! gateway: {line}")


def failed(result: dict[str, Any]) -> list[str]:
    """What makes the run a failure (the figures are still written)."""
    figures = result["results"]
    reasons = []
    asked = result["settings"]["chargers"]
    if figures["connected"] != asked:
        reasons.append(f"only {figures['connected']} of {asked} chargers connected and booted")
    if figures["registration"].get("Accepted", 0) != figures["connected"]:
        reasons.append(f"not every charger was Accepted: {figures['registration']}")
    reasons += [
        f"{phase}: {t['failures']} failed" for phase, t in figures["exchanges"].items() if t["failures"]
    ]
    if figures["gateway_stop"]["killed"]:
        reasons.append("the gateway did not stop on SIGINT and was killed")
    return reasons


def report(
    result: dict[str, Any],
    output: Path,
    table: Callable[[dict[str, Any]], None],
    failures: Callable[[dict[str, Any]], list[str]],
) -> int:
    """Print a benchmark's table, write its JSON with what failed, and give the exit code (1 if anything did)."""
    table(result)
    result["failures"] = failures(result)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults written to {output}")
    for reason in result["failures"]:
        print(f"FAILED: {reason}", file=sys.stderr)
    return 1 if result["failures"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return report(run(options), options.output, print_table, failed)


if __name__ == "__main__":
    sys.exit(main())
