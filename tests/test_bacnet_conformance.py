"""The BACnet/IP device against ASHRAE 135-2020, end to end: the services it says it executes and how it refuses
the others, property lists, and the answers to writes a BMS (or a commissioning tool) gets wrong. The client is
`tests.bacnet_peer` in another process, over UDP on loopback; chargers speak OCPP over a real WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.mapping import Mapping
from gateway.server import RunningGateway
from gateway.settings import Settings
from tests.bacnet_peer import BacnetPeer, bacnet_peer, free_udp_port
from tests.conftest import connect_charger
from tests.scripted import Scripted
from tests.test_bacnet_e2e import (
    DEVICE,
    ENABLE,
    LIMIT,
    MAPPING,
    ONLINE,
    POWER,
    STATUS,
    bacnet_settings,
)

THE_DEVICE = f"device,{DEVICE}"
NETWORK_PORT = "network-port,1"
LIMIT_STATUS = "characterstring-value,1027"


@pytest.fixture
def port() -> int:
    return free_udp_port()


@pytest.fixture
def mapping() -> Mapping:
    return Mapping.model_validate(MAPPING)


@pytest.fixture
def settings(tmp_path: Path, port: int) -> Settings:
    return bacnet_settings(tmp_path, port)


@pytest.fixture
async def peer() -> AsyncIterator[BacnetPeer]:
    async with bacnet_peer() as started:
        yield started


@pytest.fixture
def device(port: int) -> str:
    return f"127.0.0.1:{port}"


@pytest.fixture
async def charger(gateway: RunningGateway) -> AsyncIterator[Scripted]:
    async with connect_charger(gateway, "CP1", cls=Scripted) as connected:
        await connected.boot()
        yield connected


# -- property lists -------------------------------------------------------------------------------------------


async def test_property_list_leaves_out_the_properties_every_object_has(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §12.1.1.4.1 Property_List: "This property ... shall not include Object_Name, Object_Type,
    Object_Identifier, or Property_List" -- on every object type the device serves."""
    objects = [THE_DEVICE, NETWORK_PORT, POWER, LIMIT, ONLINE, ENABLE, STATUS, LIMIT_STATUS]
    for obj in objects:
        listed = await peer.read(device, obj, "property-list")
        assert isinstance(listed, list), (obj, listed)
        assert not {"object-identifier", "object-name", "object-type", "property-list"} & set(listed), obj
        assert "status-flags" in listed or obj == THE_DEVICE, obj
    device_list = await peer.read(device, THE_DEVICE, "property-list")
    assert {"protocol-services-supported", "object-list", "location"} <= set(device_list)
    # Every listed property reads; the four left out read too.
    rows = await peer.rpm(device, [(LIMIT, ["all"])])
    names = {row[1] for row in rows if not isinstance(row[3], dict)}
    assert set(await peer.read(device, LIMIT, "property-list")) <= names
    assert {"object-identifier", "object-name", "object-type"} <= names


async def test_the_network_port_reads_its_apdu_length(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §12.56.39 APDU_Length, required in the Network Port object: 1476 on BACnet/IP."""
    assert await peer.read(device, NETWORK_PORT, "apdu-length") == 1476
    assert "apdu-length" in await peer.read(device, NETWORK_PORT, "property-list")
