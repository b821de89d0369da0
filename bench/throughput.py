"""OCPP throughput: K chargers sending as fast as OCPP-J allows, against the gateway and, in the same run, against a
bare reference central system (`bench.reference_csms`: the `ocpp` package on `websockets`, validating payloads as
the gateway does). Each server runs in its own process and the load generator (`bench.ocpp_load`) in another, one
after the other, with the same chargers, message mix, warm-up and window.

The gateway runs as installed: the bench site mapping (`bench.site`, its K chargers listed with BACnet objects and
Modbus registers), BACnet and Modbus on, SQLite on disk (the message log and meter values are written). The
reference keeps nothing. The figure that matters is the ratio: what the gateway's work costs over the library's
own per-message cost.

    python -m bench throughput --chargers 50 --duration 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.common import cpu_seconds
from bench.connect_many import (
    ROOT,
    free_port,
    machine_facts,
    now_iso,
    options_settings,
    output_figures,
    output_text,
    print_rows,
    report,
    spawn_gateway,
    stop_gateway,
    tail,
    wait_healthy,
)
from bench.site import write_site

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "throughput.json"
TARGET_RATIO = 0.8
LOAD_TIMEOUT = 120.0


@dataclass(frozen=True)
class Options:
    chargers: int
    warmup: float
    duration: float
    output: Path


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=50, help="chargers sending at once (default 50)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window (default 2)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the window (default 10)")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help=f"JSON results (default {RESULTS_FILE})"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.chargers <= 1000:
        parser.error("--chargers must be 1..1000")
    return Options(args.chargers, args.warmup, args.duration, args.output)


def load(url: str, options: Options, server: psutil.Process) -> dict[str, Any]:
    """Run the load generator against `url`; its figures, with the server's CPU share over the window."""
    server_cpu: list[float] = []

    def sample_server() -> None:  # the load process opens its window 5 s + warm-up after it starts
        time.sleep(5.0 + options.warmup)
        server_cpu.append(cpu_seconds(server))
        time.sleep(options.duration)
        server_cpu.append(cpu_seconds(server))

    sampler = threading.Thread(target=sample_server, daemon=True)
    sampler.start()
    command = [
        sys.executable,
        "-m",
        "bench.ocpp_load",
        url,
        f"--chargers={options.chargers}",
        f"--warmup={options.warmup}",
        f"--duration={options.duration}",
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=LOAD_TIMEOUT)
    sampler.join()
    if finished.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{tail(finished.stderr)}")
    figures: dict[str, Any] = json.loads(finished.stdout)
    figures["server_cpu_percent"] = 100 * (server_cpu[1] - server_cpu[0]) / options.duration
    return figures


def against_gateway(options: Options, workdir: Path) -> dict[str, Any]:
    settings = {
        "GATEWAY_MAPPING": str(write_site(workdir, max(options.chargers, 100))),
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_BACNET_ADDRESS": "127.0.0.1/8",
        "GATEWAY_BACNET_PORT": str(free_port(socket.SOCK_DGRAM)),
        "GATEWAY_MODBUS_HOST": "127.0.0.1",
        "GATEWAY_MODBUS_PORT": str(free_port(socket.SOCK_STREAM)),
        "GATEWAY_READ_CONFIGURATION": "false",  # the load chargers answer no GetConfiguration
    }
    gateway = spawn_gateway(workdir, free_port(), settings)
    figures: dict[str, Any] = {"environment": gateway.environment}
    try:
        wait_healthy(gateway)
        figures.update(load(gateway.ws_url, options, psutil.Process(gateway.process.pid)))
    except BaseException:
        print(f"gateway output:\n{tail(gateway.output())}", file=sys.stderr)
        raise
    finally:
        figures["stop"] = stop_gateway(gateway)
    figures["output"] = output_figures(gateway.output())
    return figures


def against_reference(options: Options) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.reference_csms"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError(f"the reference central system did not start: {ready}")
        return load(f"ws://127.0.0.1:{ready[1]}", options, psutil.Process(process.pid))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        with contextlib.suppress(Exception):
            process.communicate(timeout=5)


def run(options: Options) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "throughput",
        "started_at": now_iso(),
        "machine": machine_facts(),
        "settings": options_settings(options),
    }
    with tempfile.TemporaryDirectory(prefix="ocpp-bench-") as temporary:
        gateway = against_gateway(options, Path(temporary))
    reference = against_reference(options)
    result["results"] = {
        "gateway": gateway,
        "reference": reference,
        "ratio": gateway["messages_per_second"] / reference["messages_per_second"],
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    figures = result["results"]
    gateway, reference = figures["gateway"], figures["reference"]

    def line(run: dict[str, Any]) -> str:
        return (
            f"{run['messages_per_second']:,.0f} messages/s, p50 {run['latency_p50_ms']:.2f} / p99 "
            f"{run['latency_p99_ms']:.2f} ms; server {run['server_cpu_percent']:.0f} % of a core, load "
            f"{run['load_cpu_percent']:.0f} %"
        )

    settings = result["settings"]
    rows = [
        ("chargers, window", f"{settings['chargers']} sending at once, {settings['duration']:.0f} s"),
        ("gateway", line(gateway)),
        ("reference (ocpp + websockets)", line(reference)),
        ("gateway / reference", f"{figures['ratio']:.2f} (target >= {TARGET_RATIO})"),
        ("gateway output", output_text(gateway["output"])),
    ]
    tallies = [("gateway", {"errors": gateway["errors"]}), ("reference", {"errors": reference["errors"]})]
    print_rows("OCPP throughput: gateway against the bare library", rows, tallies, gateway["output"])


def failed(result: dict[str, Any]) -> list[str]:
    figures = result["results"]
    reasons = []
    for name in ("gateway", "reference"):
        errors = figures[name]["errors"]
        if errors:
            reasons.append(f"{name}: {sum(e['count'] for e in errors.values())} messages failed")
    if figures["gateway"]["stop"]["killed"]:
        reasons.append("the gateway did not stop on SIGINT and was killed")
    return reasons


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    return report(run(options), options.output, print_table, failed)


if __name__ == "__main__":
    sys.exit(main())
