"""The BACnet/IP device end to end: chargers (the `ocpp` package over a real WebSocket) report to the gateway, and
a BACnet client in another process (`tests.bacnet_peer`, bacpypes3) reads, writes and subscribes over UDP on
loopback, as a BMS would. Broadcast Who-Is across hosts is in `test_bacnet_netns.py`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from gateway.cli import main as cli_main
from gateway.mapping import Mapping
from gateway.server import RunningGateway, running
from gateway.settings import Settings
from tests.bacnet_peer import BacnetPeer, bacnet_peer, free_udp_port
from tests.conftest import TEST_MAPPING, connect_charger, eventually, make_settings
from tests.scripted import Scripted

DEVICE = 4711
TEMPLATE: dict[str, Any] = {
    "points": [
        {"source": "online", "name": "Online", "bacnet": {"type": "binary-input", "offset": 0}},
        {"source": "1/status", "name": "C1 Status", "bacnet": {"type": "multi-state-input", "offset": 10}},
        {"source": "1/error_code", "name": "C1 Error", "bacnet": {"type": "multi-state-input", "offset": 11}},
        {
            "source": "1/smart_charging",
            "name": "C1 Smart charging",
            "writable": True,
            "bacnet": {"type": "binary-value", "offset": 13},
        },
        {
            "source": "1/meter/Power.Active.Import",
            "name": "C1 Power",
            "bacnet": {"type": "analog-input", "offset": 18, "cov_increment": 100},
        },
        {
            "source": "1/meter/Energy.Active.Import.Register",
            "name": "C1 Energy",
            "bacnet": {"type": "analog-input", "offset": 16, "units": "kilowatt-hours"},
        },
        {
            "source": "1/limit",
            "name": "C1 Limit",
            "writable": True,
            "minimum": 0,
            "maximum": 32,
            "bacnet": {"type": "analog-value", "offset": 24, "relinquish_default": 32, "cov_increment": 1},
        },
        {"source": "1/limit_status", "name": "C1 Limit status", "bacnet": {"type": "characterstring-value",
                                                                           "offset": 27}},
        {"source": "1/id_tag", "name": "C1 Id tag", "bacnet": {"type": "characterstring-value", "offset": 30}},
        {
            "source": "config/HeartbeatInterval",
            "name": "Heartbeat interval",
            "writable": True,
            "bacnet": {"type": "analog-value", "offset": 5, "units": "seconds"},
        },
    ]
}  # fmt: skip
MAPPING: dict[str, Any] = {
    **TEST_MAPPING,
    "templates": {"ac": TEMPLATE},
    "chargers": [
        {"id": "CP1", "registration": "Accepted", "template": "ac", "bacnet": {"base_instance": 1000}},
        {"id": "CP2", "registration": "Accepted"},
        {
            "pattern": "C1-*",
            "registration": "Accepted",
            "template": "ac",
            "slots": 3,
            "bacnet": {"base_instance": 5000},
        },
    ],
}
STATUS = "multi-state-input,1010"
POWER = "analog-input,1018"
ENERGY = "analog-input,1016"
LIMIT = "analog-value,1024"
ENABLE = "binary-value,1013"
HEARTBEAT = "analog-value,1005"
ONLINE = "binary-input,1000"


def bacnet_settings(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    return make_settings(
        tmp_path,
        bacnet_enabled=True,
        bacnet_address="127.0.0.1/8",
        bacnet_port=port,
        bacnet_device_id=DEVICE,
        bacnet_location="Plant room B2",
        **overrides,
    )


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


async def status(charger: Scripted, state: str, connector: int = 1) -> None:
    await charger.call(call.StatusNotification(connector_id=connector, error_code="NoError", status=state))


async def meter(charger: Scripted, **values: str) -> None:
    sampled = [
        {"value": values["power"], "measurand": "Power.Active.Import", "unit": "W"},
        {"value": values["energy"], "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
    ]
    await charger.call(
        call.MeterValues(
            connector_id=1, meter_value=[{"timestamp": "2026-11-22T10:00:00Z", "sampled_value": sampled}]
        )
    )


async def sent_limits(charger: Scripted, count: int) -> list[float]:
    for _ in range(100):
        if len(charger.calls("SetChargingProfile")) >= count:
            break
        await asyncio.sleep(0.05)
    return [
        p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        for p in charger.calls("SetChargingProfile")
    ]


# -- reading ----------------------------------------------------------------------------------------------------


async def test_a_charger_status_and_meter_values_are_read_over_bacnet(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    await status(charger, "Charging")
    await meter(charger, power="7200", energy="12.5")

    assert await eventually(lambda: peer.read(device, STATUS, "present-value"), 3) == 3
    assert await peer.read(device, STATUS, "state-text") == [
        "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing", "Reserved",
        "Unavailable", "Faulted",
    ]  # fmt: skip
    assert await peer.read(device, STATUS, "object-name") == "CP1/C1 Status"
    assert await peer.read(device, STATUS, "number-of-states") == 9
    assert len(await peer.read(device, "multi-state-input,1011", "state-text")) == 16
    assert await eventually(lambda: peer.read(device, POWER, "present-value"), 7200.0) == 7200.0

    rows = await peer.rpm(
        device,
        [
            (POWER, ["present-value", "units", "cov-increment", "status-flags", "reliability"]),
            (ENERGY, ["present-value", "units"]),
            (ONLINE, ["present-value", "active-text", "inactive-text"]),
            (STATUS, ["present-value", "units"]),  # a multi-state input has no units
        ],
    )
    values = {(row[0], row[1]): row[3] for row in rows}
    assert values[(POWER, "present-value")] == 7200.0
    assert values[(POWER, "units")] == "watts"
    assert values[(POWER, "cov-increment")] == 100.0
    assert values[(POWER, "status-flags")] == [0, 0, 0, 0]
    assert values[(POWER, "reliability")] == "no-fault-detected"
    # The mapping shows energy in kWh; the point keeps Wh (12.5 kWh arrived as 12500 Wh).
    assert values[(ENERGY, "units")] == "kilowatt-hours"
    assert values[(ONLINE, "present-value")] == "active"
    assert (values[(ONLINE, "active-text")], values[(ONLINE, "inactive-text")]) == ("online", "offline")
    assert values[(STATUS, "present-value")] == 3
    assert values[(STATUS, "units")] == {"error": "property:unknown-property"}


async def test_the_device_object_says_what_it_is(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    rows = await peer.rpm(device, [(f"device,{DEVICE}", ["all"])])
    values = {row[1]: row[3] for row in rows}
    assert values["object-name"] == "OCPP gateway"
    assert values["location"] == "Plant room B2"
    assert values["firmware-revision"] == values["application-software-version"]
    assert values["max-apdu-length-accepted"] == 1476
    assert values["segmentation-supported"] == "segmented-both"
    assert values["protocol-version"] == 1
    assert "object-list" in values and "property-list" not in values  # ALL leaves the property list out
    assert f"device,{DEVICE}" in values["object-list"] and "network-port,1" in values["object-list"]
    assert values["vendor-identifier"] == 999


async def test_an_offline_charger_shows_a_communication_failure(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        await charger.boot()
        await status(charger, "Available")
        assert await eventually(lambda: peer.read(device, STATUS, "reliability"), "no-fault-detected") == (
            "no-fault-detected"
        )
    assert await eventually(lambda: peer.read(device, STATUS, "reliability"), "communication-failure") == (
        "communication-failure"
    )
    assert await peer.read(device, STATUS, "status-flags") == [0, 1, 0, 0]
    assert await peer.read(device, STATUS, "present-value") == 1  # the last value is kept
    assert await peer.read(device, ONLINE, "present-value") == "inactive"
    assert await peer.read(device, ONLINE, "reliability") == "no-fault-detected"  # online itself is known

    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        await charger.boot()
        assert await eventually(lambda: peer.read(device, STATUS, "status-flags"), [0, 0, 0, 0]) == [
            0,
            0,
            0,
            0,
        ]


# -- writing ----------------------------------------------------------------------------------------------------


async def test_a_limit_written_at_priority_8_reaches_the_charger_and_relinquish_returns_to_the_default(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    assert await peer.read(device, LIMIT, "relinquish-default") == 32.0
    # While smart charging is off a limit is kept, not sent; switching it on sends it.
    assert await peer.write(device, LIMIT, "present-value", 16, priority=8) is None
    await asyncio.sleep(0.2)
    assert charger.calls("SetChargingProfile") == []
    assert await peer.write(device, ENABLE, "present-value", "active", priority=8) is None
    assert await sent_limits(charger, 1) == [16.0]
    priorities = await peer.read(device, LIMIT, "priority-array")
    assert priorities[7] == 16.0 and priorities[:7] == [None] * 7 and priorities[8:] == [None] * 8
    assert await peer.read(device, LIMIT, "current-command-priority") == 8
    assert await eventually(lambda: peer.read(device, LIMIT, "present-value"), 16.0) == 16.0
    assert await eventually(
        lambda: peer.read(device, "characterstring-value,1027", "present-value"), "Accepted"
    ) == ("Accepted")

    # A lower priority (a higher number) does not override priority 8 and sends nothing.
    assert await peer.write(device, LIMIT, "present-value", 10, priority=12) is None
    await asyncio.sleep(0.2)
    assert await sent_limits(charger, 1) == [16.0]
    assert await peer.read(device, LIMIT, "present-value") == 16.0

    # Relinquish 8: priority 12 takes over; relinquish 12 too: the relinquish default is applied.
    assert await peer.write(device, LIMIT, "present-value", None, priority=8) is None
    assert await sent_limits(charger, 2) == [16.0, 10.0]
    assert await peer.write(device, LIMIT, "present-value", None, priority=12) is None
    assert await sent_limits(charger, 3) == [16.0, 10.0, 32.0]
    assert await peer.read(device, LIMIT, "priority-array") == [None] * 16
    assert await peer.read(device, LIMIT, "current-command-priority") is None
    assert await eventually(lambda: peer.read(device, LIMIT, "present-value"), 32.0) == 32.0


async def test_a_writable_configuration_key_sends_change_configuration(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    assert await peer.write(device, HEARTBEAT, "present-value", 120) is None
    for _ in range(100):
        if charger.calls("ChangeConfiguration"):
            break
        await asyncio.sleep(0.05)
    assert charger.calls("ChangeConfiguration") == [{"key": "HeartbeatInterval", "value": "120"}]
    assert await eventually(lambda: peer.read(device, HEARTBEAT, "present-value"), 120.0) == 120.0
    assert await peer.read(device, HEARTBEAT, "priority-array") == {"error": "property:unknown-property"}


async def test_bad_writes_get_the_bacnet_error_that_fits(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    assert await peer.write(device, LIMIT, "present-value", 40, priority=8) == {
        "error": "property:value-out-of-range"
    }
    assert await peer.write(device, LIMIT, "present-value", -1) == {"error": "property:value-out-of-range"}
    assert await peer.write(device, LIMIT, "present-value", "sixteen", datatype="characterstring") == {
        "error": "property:invalid-data-type"
    }
    assert await peer.write(device, POWER, "present-value", 5) == {"error": "property:write-access-denied"}
    assert await peer.write(device, STATUS, "present-value", 2) == {"error": "property:write-access-denied"}
    assert await peer.write(device, LIMIT, "object-name", "renamed") == {
        "error": "property:write-access-denied"
    }
    assert await peer.write(device, LIMIT, "description", "x") == {"error": "property:write-access-denied"}
    assert await peer.write(device, "analog-value,999999", "present-value", 1) == {
        "error": "object:unknown-object"
    }
    assert await peer.write(device, LIMIT, "relinquish-default", 99) == {
        "error": "property:value-out-of-range"
    }
    # Nothing of the above reached the charger, and the device still answers.
    await asyncio.sleep(0.2)
    assert charger.calls("SetChargingProfile") == []
    assert await peer.read(device, LIMIT, "priority-array") == [None] * 16


async def test_commands_survive_a_restart(tmp_path: Path, port: int, mapping: Mapping) -> None:
    settings = bacnet_settings(tmp_path, port)
    async with bacnet_peer() as peer:
        device = f"127.0.0.1:{port}"
        async with running(settings, mapping):
            assert await peer.write(device, LIMIT, "present-value", 20, priority=9) is None
            assert await peer.write(device, LIMIT, "relinquish-default", 25) is None
        async with running(settings, mapping):
            priorities = await peer.read(device, LIMIT, "priority-array")
            assert priorities[8] == 20.0
            assert await peer.read(device, LIMIT, "relinquish-default") == 25.0
            assert await peer.read(device, LIMIT, "present-value") == 20.0


# -- COV, discovery, object list ------------------------------------------------------------------------------


async def test_cov_subscriptions_receive_changes(charger: Scripted, peer: BacnetPeer, device: str) -> None:
    await status(charger, "Available")
    assert await eventually(lambda: peer.read(device, STATUS, "present-value"), 1) == 1
    assert await peer.subscribe_cov(device, STATUS, confirmed=True) is None
    # No lifetime: an indefinite subscription.
    assert await peer.subscribe_cov(device, POWER, confirmed=False, process_id=2, lifetime=None) is None
    initial = await peer.wait_cov(STATUS)  # a subscription is answered with the current value
    assert initial[0]["values"]["present-value"] == 1

    await status(charger, "Charging")
    changed = await peer.wait_cov(STATUS, where={"present-value": 3})
    assert changed[0]["confirmed"] is True and changed[0]["values"]["status-flags"] == [0, 0, 0, 0]

    await meter(charger, power="50", energy="1")  # under the COV increment of 100 W: no notification
    await meter(charger, power="3700", energy="1")
    power = await peer.wait_cov(POWER, where={"present-value": 3700.0})
    assert power[0]["confirmed"] is False and power[0]["process_id"] == 2


async def test_a_charger_going_offline_is_notified(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        await charger.boot()
        await status(charger, "Available")
        assert await eventually(lambda: peer.read(device, STATUS, "status-flags"), [0, 0, 0, 0]) == [
            0,
            0,
            0,
            0,
        ]
        assert await peer.subscribe_cov(device, STATUS, confirmed=False) is None
        await peer.wait_cov(STATUS)
    offline = await peer.wait_cov(STATUS, where={"status-flags": [0, 1, 0, 0]})
    assert offline[0]["values"]["present-value"] == 1


async def test_who_is_finds_the_device_in_range_only(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    found = await peer.whois(device)
    assert [(d["device"], d["address"], d["max_apdu"], d["segmentation"]) for d in found] == [
        (DEVICE, device, 1476, "segmented-both")
    ]
    assert [d["device"] for d in await peer.whois(device, low=DEVICE, high=DEVICE)] == [DEVICE]
    assert await peer.whois(device, low=DEVICE + 1, high=DEVICE + 10, timeout=0.5) == []


async def test_the_object_list_grows_when_a_charger_connects(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    before = await peer.read(device, f"device,{DEVICE}", "object-list")
    revision = await peer.read(device, f"device,{DEVICE}", "database-revision")
    assert "multi-state-input,5010" not in before
    async with connect_charger(gateway, "C1-0042", cls=Scripted) as charger:
        await charger.boot()
        await status(charger, "Preparing")
        assert await eventually(lambda: peer.read(device, "multi-state-input,5010", "present-value"), 2) == 2
    after = await peer.read(device, f"device,{DEVICE}", "object-list")
    assert {"multi-state-input,5010", "analog-value,5024", "binary-input,5000"} <= set(after) - set(before)
    assert await peer.read(device, "multi-state-input,5010", "object-name") == "C1-0042/C1 Status"
    assert await peer.read(device, f"device,{DEVICE}", "database-revision") > revision
    # CP2 has no template: its points get objects of their own, named by point id.
    async with connect_charger(gateway, "CP2", cls=Scripted) as other:
        await other.boot()
        await status(other, "Faulted")
        names: list[str] = []
        for _ in range(50):
            objects = await peer.read(device, f"device,{DEVICE}", "object-list")
            unmapped = [obj for obj in objects if int(obj.split(",")[1]) >= 1000000]
            names = [row[3] for row in await peer.rpm(device, [(obj, ["object-name"]) for obj in unmapped])]
            if "CP2/1/status" in names:
                break
            await asyncio.sleep(0.1)
        assert "CP2/1/status" in names


async def test_objects_are_listed_at_once_and_made_when_first_read(
    gateway: RunningGateway, peer: BacnetPeer, device: str
) -> None:
    """A mapping with many chargers starts fast: objects are offered (listed, found by id) and made by the first
    request that names them, showing the point as it is then; the object list and revision do not move."""
    server = gateway.app.state.services.bacnet
    objects = await peer.read(device, f"device,{DEVICE}", "object-list")
    revision = await peer.read(device, f"device,{DEVICE}", "database-revision")
    assert LIMIT in objects and "CP1/1/limit" not in server.objects
    assert await peer.read(device, f"device,{DEVICE}", "object-list", index=0) == len(objects)
    assert await peer.read(device, f"device,{DEVICE}", "object-list", index=objects.index(LIMIT) + 1) == LIMIT

    async with connect_charger(gateway, "CP1", cls=Scripted) as charger:
        await charger.boot()
        await meter(charger, power="3600", energy="1.0")  # the power object is not made by this
        assert "CP1/1/meter/Power.Active.Import" not in server.objects
        assert await peer.read(device, POWER, "present-value") == 3600.0
        assert "CP1/1/meter/Power.Active.Import" in server.objects
        assert await peer.read(device, LIMIT, "object-name") == "CP1/C1 Limit"
    assert await peer.read(device, f"device,{DEVICE}", "object-list") == objects
    assert await peer.read(device, f"device,{DEVICE}", "database-revision") == revision
    assert await peer.read(device, "analog-input,999999", "present-value") == {
        "error": "object:unknown-object"
    }


async def test_an_epics_sweep_completes_with_per_property_errors_only(
    charger: Scripted, peer: BacnetPeer, device: str
) -> None:
    sweep = await peer.epics(device, DEVICE)
    assert sweep["failures"] == []
    objects = sweep["objects"]
    assert "network-port,1" in objects and f"device,{DEVICE}" in objects and LIMIT in objects
    object_list = await peer.read(device, f"device,{DEVICE}", "object-list")
    assert set(objects) == set(object_list)
    assert objects[LIMIT]["priority-array"] == [None] * 16
    assert objects["network-port,1"]["object-name"] == "NetworkPort-1"


async def test_the_ede_export_matches_the_device_object_list(
    tmp_path: Path, port: int, mapping: Mapping
) -> None:
    from gateway.bacnet.ede import read_ede

    settings = bacnet_settings(tmp_path, port)
    (tmp_path / "mapping.yaml").write_text(_yaml(MAPPING))
    out = tmp_path / "ede"
    code = await asyncio.to_thread(
        cli_main,
        [
            "export-ede",
            str(out),
            "--mapping",
            str(tmp_path / "mapping.yaml"),
            "--database",
            str(settings.database),
            "--bacnet-device-id",
            str(DEVICE),
        ],
    )
    assert code == 0
    rows = read_ede(next(out.glob("*_EDE.csv")))
    exported = {(int(r["object-type"]), int(r["object-instance"])): r["object-name"] for r in rows}
    async with bacnet_peer() as peer, running(settings, mapping):
        device = f"127.0.0.1:{port}"
        object_list = await peer.read(device, f"device,{DEVICE}", "object-list")
        served: dict[tuple[int, int], str] = {}
        for obj in object_list:
            if obj.startswith("network-port"):
                continue
            name = await peer.read(device, obj, "object-name")
            served[(_type_number(obj), int(obj.split(",")[1]))] = name
    assert served == exported


_TYPE_NUMBERS = {
    "analog-input": 0,
    "analog-value": 2,
    "binary-input": 3,
    "binary-value": 5,
    "device": 8,
    "multi-state-input": 13,
    "multi-state-value": 19,
    "characterstring-value": 40,
}


def _type_number(obj: str) -> int:
    return _TYPE_NUMBERS[obj.split(",")[0]]


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


async def test_a_limit_object_follows_its_point_when_the_charger_takes_watts(
    tmp_path: Path, port: int, mapping: Mapping
) -> None:
    settings = bacnet_settings(tmp_path, port, read_configuration=True)
    device = f"127.0.0.1:{port}"
    async with (
        bacnet_peer() as peer,
        running(settings, mapping) as gateway,
        connect_charger(gateway, "CP2", cls=Scripted) as charger,
    ):
        assert isinstance(charger, Scripted)
        charger.config["ChargingScheduleAllowedChargingRateUnit"] = "Power"
        await charger.boot()
        await status(charger, "Available")
        limit = ""
        for _ in range(100):  # CP2 has no template: its limit has an object of its own
            objects = await peer.read(device, f"device,{DEVICE}", "object-list")
            values = [obj for obj in objects if obj.startswith("analog-value")]
            rows = await peer.rpm(device, [(obj, ["object-name", "units"]) for obj in values])
            named = {row[0]: row[3] for row in rows if row[1] == "object-name"}
            limit = next((obj for obj, name in named.items() if name == "CP2/1/limit"), "")
            if limit and await peer.read(device, limit, "units") == "watts":
                break
            await asyncio.sleep(0.05)
        assert limit, "CP2/1/limit has no object"
        assert await peer.read(device, limit, "units") == "watts"
        assert await peer.read(device, limit, "relinquish-default") == 1_000_000.0
        assert await peer.write(device, limit, "present-value", 7400, priority=8) is None
