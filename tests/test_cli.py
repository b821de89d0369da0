"""The command line as an installer uses it: `ocpp-gateway run` in its own process, and `check`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from ocpp.v16 import call

from gateway.settings import Settings
from tests.conftest import connect_charger

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _gateway_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _until_healthy(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
        for _ in range(300):
            try:
                if (await api.get("/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"the gateway on port {port} did not come up")


async def test_run_with_example_mapping_answers_a_charger(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_DATABASE": str(tmp_path / "gateway.sqlite3"),
        "GATEWAY_MODBUS_HOST": "127.0.0.1",
        "GATEWAY_MODBUS_PORT": str(_free_port()),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await _until_healthy(port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
            async with connect_charger(f"ws://127.0.0.1:{port}", "CP1") as cp:
                boot = await cp.boot()
                await cp.call(call.Heartbeat(), suppress=False)
            chargers = (await api.get("/api/chargers/CP1")).json()
        assert boot.status == "Accepted"  # CP1 is in mappings/example.yaml
        assert chargers["boot"]["vendor"] == "TestVendor"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()
    assert (tmp_path / "gateway.sqlite3").exists()


def test_run_help_documents_every_setting() -> None:
    result = _gateway_cli("run", "--help")
    assert result.returncode == 0
    for variable in ("GATEWAY_HTTP_HOST", "GATEWAY_HTTP_PORT", "GATEWAY_MAPPING", "GATEWAY_DATABASE",
                     "GATEWAY_RESPONSE_TIMEOUT", "GATEWAY_GUEST_RESPONSE", "GATEWAY_GUEST_RETRY_INTERVAL",
                     "GATEWAY_HEARTBEAT_INTERVAL", "GATEWAY_SOCKET_CLOSED_OFFLINE", "GATEWAY_TLS_CERTFILE",
                     "GATEWAY_TLS_KEYFILE"):  # fmt: skip
        assert variable in result.stdout.replace("\n", " ").replace("  ", " "), variable


def test_check_example_mapping() -> None:
    result = _gateway_cli("check", "mappings/example.yaml")
    assert result.returncode == 0, result.stderr
    assert "mappings/example.yaml: OK" in result.stdout
    assert "C1-*" in result.stdout
    assert "templates: 5 (generic-ac-1: 18 points, generic-ac-2: 34 points, amina: 19 points" in result.stdout
    # every slot of the patterns counts: 99 objects for the chargers by id, 19 for each of the 30 amina slots,
    # 20, 27 and 34 for each of the 20 slots of ACSMART-*, SICHARGE-D-* and SIM-* (the simulator's chargers)
    assert "BACnet: 2289 objects (instances 1000-51970)" in result.stdout
    assert (
        "Modbus: 3806 registers (input 3304, holding 272, coil 94, discrete-input 136) in units 1-5, 10-29"
        in result.stdout
    )
    assert "Modbus gateway block: registers 9000-9013, layout version 2, checksum " in result.stdout


def test_check_summary_without_templates(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("chargers:\n  - id: CP1\n")
    result = _gateway_cli("check", str(plain))
    assert result.returncode == 0, result.stderr
    assert "templates: 0\n" in result.stdout
    assert "BACnet: no objects" in result.stdout
    assert "Modbus: no registers" in result.stdout


def test_check_refuses_clashing_point_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "clash.yaml"
    bad.write_text(
        "templates:\n"
        "  t:\n"
        "    points:\n"
        "      - {source: online, bacnet: {type: binary-input, offset: 0}}\n"
        "chargers:\n"
        "  - {id: CP1, template: t, bacnet: {base_instance: 5}}\n"
        "  - {id: CP2, template: t, bacnet: {base_instance: 5}}\n"
    )
    result = _gateway_cli("check", str(bad))
    assert result.returncode == 1
    assert (
        f"{bad}:7: chargers[1].bacnet: binary-input 5 is used twice: CP1 online and CP2 online"
        in result.stderr
    )


def test_check_bad_mapping_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("chargers:\n  - id: CP1\n    registration: Maybe\n")
    result = _gateway_cli("check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3: chargers[0].registration:" in result.stderr


def test_run_refuses_bad_mapping_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("chargers:\n  - id: CP1\n    colour: blue\n")
    result = _gateway_cli("run", env={"GATEWAY_MAPPING": str(bad), "GATEWAY_DATABASE": str(tmp_path / "db")})
    assert result.returncode == 1
    assert f"{bad}:3: chargers[0].colour: unknown key" in result.stderr


def test_run_stops_with_a_clear_error_when_bacnet_cannot_use_its_address(tmp_path: Path) -> None:
    env = {
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": "0",
        "GATEWAY_DATABASE": str(tmp_path / "db"),
        "GATEWAY_BACNET_ADDRESS": "no-such-interface0",
    }
    result = _gateway_cli("run", env=env)
    assert result.returncode == 3
    assert "BACnet/IP cannot use address 'no-such-interface0'" in result.stderr
    assert "GATEWAY_BACNET_ENABLED=false" in result.stderr


def test_run_stops_with_a_clear_error_when_the_modbus_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            "GATEWAY_HTTP_HOST": "127.0.0.1",
            "GATEWAY_HTTP_PORT": "0",
            "GATEWAY_DATABASE": str(tmp_path / "db"),
            "GATEWAY_BACNET_ENABLED": "false",
            "GATEWAY_MODBUS_HOST": "127.0.0.1",
            "GATEWAY_MODBUS_PORT": str(taken.getsockname()[1]),
        }
        result = _gateway_cli("run", env=env)
    assert result.returncode == 3
    assert f"Modbus TCP cannot listen on 127.0.0.1:{env['GATEWAY_MODBUS_PORT']}" in result.stderr
    assert "GATEWAY_MODBUS_ENABLED=false" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_HTTP_PORT": "eighty"}, "http_port"),
        ({"GATEWAY_TLS_CERTFILE": "/tmp/cert.pem"}, "GATEWAY_TLS_KEYFILE"),
        ({"GATEWAY_GUEST_RESPONSE": "Maybe"}, "guest_response"),
        ({"GATEWAY_LOG_LEVEL": "chatty"}, "log_level"),
    ],
)
def test_bad_settings_refused(env: dict[str, str], message: str) -> None:
    result = _gateway_cli("run", env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_empty_tls_settings_mean_no_tls() -> None:
    settings = Settings(tls_certfile="", tls_keyfile="  ")
    assert settings.tls is False


async def test_sighup_reloads_the_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("chargers:\n  - id: CP1\n    registration: Accepted\n")
    port = _free_port()
    env = {
        **os.environ,
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(port),
        "GATEWAY_DATABASE": str(tmp_path / "gateway.sqlite3"),
        "GATEWAY_MAPPING": str(mapping),
        "GATEWAY_MODBUS_ENABLED": "false",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        await _until_healthy(port)
        async with connect_charger(f"ws://127.0.0.1:{port}", "CP1") as cp:
            assert (await cp.boot()).status == "Accepted"
            mapping.write_text("chargers:\n  - id: CP1\n    registration: Rejected\n")
            process.send_signal(signal.SIGHUP)
            for _ in range(100):
                if (await cp.boot()).status == "Rejected":
                    break
                await asyncio.sleep(0.05)
            assert (await cp.boot()).status == "Rejected"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()
    assert "mapping reloaded" in stderr.decode()
