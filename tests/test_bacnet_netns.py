"""A broadcast Who-Is from a BMS on another host finds the gateway's BACnet device.

A BMS that does not know the gateway's address discovers it with a global-broadcast Who-Is; the device must
hear it on its broadcast socket (bacpypes3 binds a second UDP socket to the subnet's broadcast address on
Linux) and answer with an I-Am. On loopback this cannot be tested: every process there shares one host, a
broadcast to 127.255.255.255 is delivered only to sockets on the destination port, and the gateway and the
peer cannot both own port 47808 the way two BACnet hosts do.

So this test builds two hosts: two Linux network namespaces joined by a veth pair, the gateway
(``python -m gateway run``) in one at 10.203.0.1/24, the BACnet client peer (``tests.bacnet_peer``) in the
other at 10.203.0.2/24, both on port 47808. A datagram to 10.203.0.255:47808 reaches the gateway only
through its broadcast socket (its unicast socket is bound to 10.203.0.1), so an answer proves the broadcast
path. It needs root (CAP_NET_ADMIN) and ``ip`` from iproute2; without them it is skipped, never failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bacnet_peer import BacnetPeer

REPO_ROOT = Path(__file__).resolve().parent.parent
GATEWAY_IP = "10.203.0.1"
PEER_IP = "10.203.0.2"
PREFIX = 24
BACNET_PORT = 47808
DEVICE_ID = 4711
GATEWAY_ADDRESS = f"{GATEWAY_IP}:{BACNET_PORT}"
READY_LINE = "BACnet device"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Hosts:
    """Two network namespaces joined by a veth pair: `gateway` at GATEWAY_IP, `bms` at PEER_IP."""

    gateway: str
    bms: str


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def _setup_step(*args: str) -> None:
    """One `ip` command of the set-up; a failure means this machine cannot build namespaces: skip."""
    result = _ip(*args)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        pytest.skip(f"cannot build network namespaces (`ip {' '.join(args)}` failed: {detail})")


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if sys.platform != "linux":
        pytest.skip("network namespaces are Linux only")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN)")
    if shutil.which("ip") is None:
        pytest.skip("`ip` (iproute2) is not installed")
    token = f"{os.getpid()}-{secrets.token_hex(2)}"
    pair = Hosts(gateway=f"ocgw-a-{token}", bms=f"ocgw-b-{token}")
    created: list[str] = []
    try:
        for namespace in (pair.gateway, pair.bms):
            _setup_step("netns", "add", namespace)
            created.append(namespace)
        # The veth pair is made inside the gateway's namespace, so no name is ever taken in the host's.
        _setup_step("-n", pair.gateway, "link", "add", "veth-gw", "type", "veth", "peer", "veth-bms")
        _setup_step("-n", pair.gateway, "link", "set", "veth-bms", "netns", pair.bms)
        for namespace, link, ip in ((pair.gateway, "veth-gw", GATEWAY_IP), (pair.bms, "veth-bms", PEER_IP)):
            _setup_step("-n", namespace, "address", "add", f"{ip}/{PREFIX}", "dev", link)
            _setup_step("-n", namespace, "link", "set", "lo", "up")
            _setup_step("-n", namespace, "link", "set", link, "up")
        yield pair
    finally:
        # Deleting a namespace deletes the veth end in it, and with it the pair.
        for namespace in created:
            _ip("netns", "delete", namespace)


class Gateway:
    """`python -m gateway run` in a namespace, its stdout and stderr collected."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._output = bytearray()
        self._ready = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @property
    def log(self) -> str:
        return self._output.decode(errors="replace")

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self._output += line
            if READY_LINE.encode() in line:
                self._ready.set()

    async def wait_ready(self, timeout: float) -> None:
        waiting = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait({waiting, self._reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
        if not self._ready.is_set():
            exited = "exited" if self._reader.done() else f"logged no {READY_LINE!r} in {timeout} s"
            raise AssertionError(f"gateway {exited}; its log:\n{self.log}")

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        with contextlib.suppress(TimeoutError):  # the pipe ends with the process: read what is left
            await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@pytest.fixture
async def gateway(hosts: Hosts, tmp_path: Path) -> AsyncIterator[Gateway]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")}
    env.update(
        GATEWAY_HTTP_HOST="127.0.0.1",
        # The namespace is new: nothing listens in it, so any port is free; 0 lets the kernel pick one.
        GATEWAY_HTTP_PORT="0",
        GATEWAY_DATABASE=str(tmp_path / "db.sqlite3"),
        GATEWAY_MAPPING=str(REPO_ROOT / "mappings" / "example.yaml"),
        GATEWAY_BACNET_ADDRESS=f"{GATEWAY_IP}/{PREFIX}",
        GATEWAY_BACNET_PORT=str(BACNET_PORT),
        GATEWAY_BACNET_DEVICE_ID=str(DEVICE_ID),
    )
    process = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        hosts.gateway,
        sys.executable,
        "-m",
        "gateway",
        "run",
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = Gateway(process)
    try:
        await running.wait_ready(START_TIMEOUT)
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def bms(hosts: Hosts) -> AsyncIterator[BacnetPeer]:
    # With the netmask the peer has a broadcast address (10.203.0.255) and its own broadcast socket.
    peer = await BacnetPeer.start(
        bind=f"{PEER_IP}/{PREFIX}:{BACNET_PORT}", prefix=("ip", "netns", "exec", hosts.bms)
    )
    try:
        yield peer
    finally:
        await peer.close()


async def test_broadcast_who_is_finds_the_gateway_on_another_host(gateway: Gateway, bms: BacnetPeer) -> None:
    assert bms.address == f"{PEER_IP}:{BACNET_PORT}"

    found = await bms.whois(timeout=3)
    assert [(i_am["device"], i_am["address"]) for i_am in found] == [(DEVICE_ID, GATEWAY_ADDRESS)], (
        f"broadcast Who-Is found {found}; gateway log:\n{gateway.log}"
    )

    ranged = await bms.whois(low=DEVICE_ID, high=DEVICE_ID, timeout=3)
    assert [(i_am["device"], i_am["address"]) for i_am in ranged] == [(DEVICE_ID, GATEWAY_ADDRESS)], (
        f"ranged Who-Is found {ranged}; gateway log:\n{gateway.log}"
    )

    assert await bms.whois(low=1, high=10, timeout=3) == []

    name = await bms.read(GATEWAY_ADDRESS, f"device,{DEVICE_ID}", "object-name")
    assert name == "OCPP gateway", f"object-name read {name!r}; gateway log:\n{gateway.log}"
