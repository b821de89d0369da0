"""The BACnet/IP device against ASHRAE 135-2020, end to end: the services it says it executes and how it refuses
the others, property lists, and the answers to writes a BMS (or a commissioning tool) gets wrong. The client is
`tests.bacnet_peer` in another process, over UDP on loopback; chargers speak OCPP over a real WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from tests.bacnet_peer import BacnetPeer, bacnet_peer, free_udp_port
from tests.conftest import connect_charger, eventually
from tests.scripted import Scripted
from tests.test_bacnet_e2e import (
    DEVICE,
    ENABLE,
    HEARTBEAT,
    LIMIT,
    MAPPING,
    ONLINE,
    POWER,
    STATUS,
    TEMPLATE,
    bacnet_settings,
    sent_limits,
)

THE_DEVICE = f"device,{DEVICE}"
NETWORK_PORT = "network-port,1"
LIMIT_STATUS = "characterstring-value,1027"

# BACnetServicesSupported bit numbers (ASHRAE 135-2020 §21, production BACnetServicesSupported).
SERVICE_BITS = {
    "acknowledge-alarm": 0,
    "confirmed-cov-notification": 1,
    "confirmed-event-notification": 2,
    "subscribe-cov": 5,
    "atomic-write-file": 7,
    "add-list-element": 8,
    "read-property": 12,
    "read-property-multiple": 14,
    "write-property": 15,
    "write-property-multiple": 16,
    "device-communication-control": 17,
    "i-am": 26,
    "i-have": 27,
    "unconfirmed-cov-notification": 28,
    "who-has": 33,
    "who-is": 34,
    "read-range": 35,
}


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


def _commands(charger: Scripted) -> list[str]:
    return [
        action for action in ("SetChargingProfile", "ClearChargingProfile") for _ in charger.calls(action)
    ]


# -- services -------------------------------------------------------------------------------------------------


async def test_protocol_services_supported_lists_exactly_what_the_device_does(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §12.11.21 Protocol_Services_Supported: the services this device's implementation supports.
    Executed: Who-Is, Who-Has, ReadProperty, ReadPropertyMultiple, WriteProperty, WritePropertyMultiple,
    SubscribeCOV; initiated: I-Am, I-Have and both COV notifications (listed too, as EPICS and BTL practice do).
    Nothing the device only half does (ReadRange, AcknowledgeAlarm, AtomicWriteFile, AddListElement)."""
    bits = await peer.read(device, THE_DEVICE, "protocol-services-supported")
    listed = {name for name, bit in SERVICE_BITS.items() if bit < len(bits) and bits[bit]}
    assert listed == {
        "who-is", "who-has", "i-am", "i-have", "read-property", "read-property-multiple", "write-property",
        "write-property-multiple", "subscribe-cov", "confirmed-cov-notification", "unconfirmed-cov-notification",
    }  # fmt: skip
    assert sum(bits) == len(listed)


async def test_a_confirmed_service_the_device_does_not_execute_is_rejected(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §5.4.5.3 / §18.9: a confirmed request for a service the device does not execute gets a
    Reject-PDU with reason unrecognized-service, never an Error that looks like a half-working service, or
    silence."""
    assert await peer.read_range(device, THE_DEVICE, "object-list") == {"reject": "unrecognized-service"}
    # A service choice no BACnet stack knows (60), invoke id 42, as raw bytes: Reject, invoke id 42, reason 9.
    answer = await peer.raw(device, bytes([0x00, 0x05, 42, 60, 0x09, 0x01]))
    assert answer == {"apdu": bytes([0x60, 42, 9]).hex()}
    # DeviceCommunicationControl (17), which bacpypes3 decodes but this device does not serve.
    answer = await peer.raw(device, bytes([0x00, 0x05, 43, 17, 0x19, 0x00]))
    assert answer == {"apdu": bytes([0x60, 43, 9]).hex()}
    assert await peer.read(device, THE_DEVICE, "object-name") == "OCPP gateway"  # still answering


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


# -- binary values --------------------------------------------------------------------------------------------


async def test_a_binary_value_refuses_anything_but_active_and_inactive(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §12.8.4 (Binary Value Present_Value: BACnetBinaryPV, INACTIVE or ACTIVE) and §15.9.1.3.1:
    enumerated 2 is refused with property/value-out-of-range, and the charger is not told anything."""
    assert await peer.write(device, ENABLE, "present-value", "active", priority=8) is None
    assert await eventually(lambda: peer.read(device, ENABLE, "present-value"), "active") == "active"
    await asyncio.sleep(0.2)
    before = _commands(charger)

    assert await peer.write(device, ENABLE, "present-value", 2, priority=7, datatype="enumerated") == {
        "error": "property:value-out-of-range"
    }
    assert await peer.write(device, ENABLE, "relinquish-default", 2, datatype="enumerated") == {
        "error": "property:value-out-of-range"
    }
    await asyncio.sleep(0.3)
    assert _commands(charger) == before
    assert await peer.read(device, ENABLE, "present-value") == "active"
    priorities = await peer.read(device, ENABLE, "priority-array")
    assert [index for index, value in enumerate(priorities, start=1) if value is not None] == [8]
    assert await peer.read(device, ENABLE, "relinquish-default") == "inactive"


# -- WritePropertyMultiple and refused writes -----------------------------------------------------------------


async def test_write_property_multiple_writes_in_order(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §15.10: WritePropertyMultiple writes each property in the order given and answers with a
    SimpleAck when all were written."""
    answer = await peer.wpm(
        device,
        [
            (LIMIT, [("present-value", 16, {"priority": 8})]),
            (ENABLE, [("present-value", "active", {"priority": 8})]),
        ],
    )
    assert answer is None
    assert await sent_limits(charger, 1) == [16.0]
    assert await peer.read(device, LIMIT, "current-command-priority") == 8


async def test_write_property_multiple_stops_at_the_first_refused_property(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §15.10.1.3.1 / §15.10.2: on the first property that cannot be written the answer is a
    WritePropertyMultiple-Error naming it (First Failed Write Attempt) with its error class and code; the
    properties before it are written, those after it are not."""
    answer = await peer.wpm(
        device,
        [
            (LIMIT, [("present-value", 20, {"priority": 9}), ("description", "renamed", {})]),
            (LIMIT, [("present-value", 10, {"priority": 10})]),
        ],
    )
    assert answer == {
        "error": "property:write-access-denied",
        "first_failed": [LIMIT, "description", None],
    }
    priorities = await peer.read(device, LIMIT, "priority-array")
    assert priorities[8] == 20.0 and priorities[9] is None

    answer = await peer.wpm(device, [(LIMIT, [("present-value", 40, {"priority": 9})])])
    assert answer == {"error": "property:value-out-of-range", "first_failed": [LIMIT, "present-value", None]}
    answer = await peer.wpm(device, [("analog-value,999999", [("present-value", 1, {})])])
    assert answer == {
        "error": "object:unknown-object",
        "first_failed": ["analog-value,999999", "present-value", None],
    }
    answer = await peer.wpm(device, [(LIMIT, [("number-of-states", 3, {"type": "unsigned"})])])
    assert answer == {"error": "property:unknown-property", "first_failed": [LIMIT, "number-of-states", None]}
    answer = await peer.wpm(device, [(LIMIT, [("priority-array", 5, {"index": 3, "type": "real"})])])
    assert answer == {"error": "property:write-access-denied", "first_failed": [LIMIT, "priority-array", 3]}
    answer = await peer.wpm(device, [(THE_DEVICE, [("location", "Roof", {})])])
    assert answer == {"error": "property:write-access-denied", "first_failed": [THE_DEVICE, "location", None]}
    assert await peer.read(device, LIMIT, "priority-array") == [None] * 8 + [20.0] + [None] * 7


async def test_writes_to_the_priority_array_and_to_missing_properties_are_refused(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §19.2.1.1: Priority_Array is read-only (commands go to Present_Value with a priority):
    write-access-denied, whatever the value. §15.9.1.3.1: a property the object does not have is
    property/unknown-property, also one its type defines but this object leaves out (Min_Pres_Value)."""
    assert await peer.write(device, LIMIT, "priority-array", 5, index=8, datatype="real") == {
        "error": "property:write-access-denied"
    }
    assert await peer.write(device, LIMIT, "priority-array", None, index=8) == {
        "error": "property:write-access-denied"
    }
    assert await peer.write(device, LIMIT, "priority-array", "x", datatype="characterstring") == {
        "error": "property:write-access-denied"
    }
    assert await peer.write(device, LIMIT, "number-of-states", 3, datatype="unsigned") == {
        "error": "property:unknown-property"
    }
    assert await peer.write(device, LIMIT, "min-pres-value", 3, datatype="real") == {
        "error": "property:unknown-property"
    }
    assert await peer.write(device, HEARTBEAT, "priority-array", 5, index=1, datatype="real") == {
        "error": "property:unknown-property"
    }
    await asyncio.sleep(0.2)
    assert _commands(charger) == []
    assert await peer.read(device, LIMIT, "priority-array") == [None] * 16


async def test_the_network_port_is_not_writable(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §12.56: the gateway takes its address from its settings; writes to the Network Port
    object (which bacpypes3 would take and forget) are refused with write-access-denied."""
    port = await peer.read(device, NETWORK_PORT, "bacnet-ip-udp-port")
    assert await peer.write(device, NETWORK_PORT, "object-name", "renamed") == {
        "error": "property:write-access-denied"
    }
    assert await peer.write(device, NETWORK_PORT, "bacnet-ip-udp-port", 47809) == {
        "error": "property:write-access-denied"
    }
    assert await peer.read(device, NETWORK_PORT, "object-name") == "NetworkPort-1"
    assert await peer.read(device, NETWORK_PORT, "bacnet-ip-udp-port") == port


async def test_a_null_write_without_a_priority_relinquishes_priority_16(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §15.9.1.1.5 (no Priority: 16) and §19.2.1.1 (NULL relinquishes): a BMS that writes a
    limit and then NULL, both without a priority, is back at the relinquish default. A NULL to an object that
    is not commandable stays invalid-data-type."""
    assert await peer.write(device, LIMIT, "present-value", 12) is None
    assert await peer.read(device, LIMIT, "current-command-priority") == 16
    assert await peer.write(device, LIMIT, "present-value", None) is None
    assert await peer.read(device, LIMIT, "priority-array") == [None] * 16
    assert await peer.read(device, LIMIT, "present-value") == 32.0
    assert await peer.write(device, HEARTBEAT, "present-value", None, datatype="null") == {
        "error": "property:invalid-data-type"
    }


async def test_a_configuration_text_longer_than_ocpp_takes_is_refused(tmp_path: Path, port: int) -> None:
    """ASHRAE 135-2020 §15.9.1.3.1 (value-out-of-range): a configuration key mapped as a writable
    characterstring-value takes what ChangeConfiguration takes (OCPP 1.6 CiString500); a longer text was
    acknowledged and then failed on its way to the charger."""
    template = {**TEMPLATE, "points": [*TEMPLATE["points"], {
        "source": "config/MeterValuesSampledData", "name": "Sampled data", "writable": True,
        "bacnet": {"type": "characterstring-value", "offset": 6},
    }]}  # fmt: skip
    mapping = Mapping.model_validate({**MAPPING, "templates": {"ac": template}})
    device = f"127.0.0.1:{port}"
    sampled = "characterstring-value,1006"
    async with (
        bacnet_peer() as peer,
        running(bacnet_settings(tmp_path, port), mapping) as gateway,
        connect_charger(gateway, "CP1", cls=Scripted) as charger,
    ):
        assert isinstance(charger, Scripted)
        await charger.boot()
        assert await peer.write(device, sampled, "present-value", "x" * 501) == {
            "error": "property:value-out-of-range"
        }
        await asyncio.sleep(0.2)
        assert charger.calls("ChangeConfiguration") == []
        assert await peer.write(device, sampled, "present-value", "Energy.Active.Import.Register") is None
        for _ in range(100):
            if charger.calls("ChangeConfiguration"):
                break
            await asyncio.sleep(0.05)
        assert charger.calls("ChangeConfiguration") == [
            {"key": "MeterValuesSampledData", "value": "Energy.Active.Import.Register"}
        ]


# -- the device object ----------------------------------------------------------------------------------------


async def test_the_device_object_refuses_every_write(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    """ASHRAE 135-2020 §12.11 / §15.9.1.3.1: Object_Name, Location and Description come from the installer's
    settings (GATEWAY_BACNET_DEVICE_NAME, _LOCATION, _DESCRIPTION) and are not writable over BACnet:
    write-access-denied, and the value read back is unchanged. So is every other device property."""
    for prop, value in (("object-name", "renamed"), ("location", "Roof"), ("description", "changed")):
        before = await peer.read(device, THE_DEVICE, prop)
        assert await peer.write(device, THE_DEVICE, prop, value) == {"error": "property:write-access-denied"}
        assert await peer.read(device, THE_DEVICE, prop) == before
    assert await peer.read(device, THE_DEVICE, "location") == "Plant room B2"
    assert await peer.write(device, THE_DEVICE, "apdu-timeout", 6000) == {
        "error": "property:write-access-denied"
    }
    assert await peer.read(device, THE_DEVICE, "apdu-timeout") != 6000
    assert await peer.write(device, THE_DEVICE, "present-value", 1, datatype="real") == {
        "error": "property:unknown-property"
    }
    # The wildcard instance names the device too (ASHRAE 135-2020 §15.5.1.1.1, §15.9.1.1.1).
    assert await peer.read(device, "device,4194303", "object-name") == "OCPP gateway"
    rows = await peer.rpm(device, [("device,4194303", ["location"])])
    assert [row[3] for row in rows] == ["Plant room B2"]
    assert await peer.write(device, "device,4194303", "object-name", "renamed") == {
        "error": "property:write-access-denied"
    }


# -- relinquish default ---------------------------------------------------------------------------------------


async def test_a_limit_no_priority_commands_reads_its_relinquish_default(
    tmp_path: Path, port: int, mapping: Mapping
) -> None:
    """ASHRAE 135-2020 §19.2.1.4: when every entry of Priority_Array is NULL, Present_Value is Relinquish_Default
    -- at a first start too (fresh database, charger never connected), once the charger is connected with no
    limit set, and after a limit was set outside BACnet (the API)."""
    settings = bacnet_settings(tmp_path, port)
    device = f"127.0.0.1:{port}"
    async with bacnet_peer() as peer, running(settings, mapping) as gateway:
        default = await peer.read(device, LIMIT, "relinquish-default")
        assert default == 32.0
        assert await peer.read(device, LIMIT, "present-value") == default
        assert await peer.read(device, ENABLE, "present-value") == await peer.read(
            device, ENABLE, "relinquish-default"
        )
        async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
            await charger.boot()
            assert await peer.read(device, LIMIT, "present-value") == default
            points = gateway.app.state.services.points
            await points.write("CP1/1/limit", 10, source="api")
            assert points.get("CP1/1/limit").value == 10.0
            await asyncio.sleep(0.1)
            assert await peer.read(device, LIMIT, "present-value") == default
            assert await peer.read(device, LIMIT, "priority-array") == [None] * 16
