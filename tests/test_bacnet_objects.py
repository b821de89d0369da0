"""What BACnet object a point becomes (pure planning, no BACnet stack) and the slots pattern chargers hold."""

from __future__ import annotations

from pathlib import Path

from gateway.bacnet.objects import ObjectPlan, plan_dynamic, plan_mapped
from gateway.layout import placements
from gateway.mapping import BacnetObjectType, Mapping
from gateway.slots import ChargerSlots
from gateway.sources import resolve
from gateway.store import Store
from points import Kind

MAPPING = Mapping.model_validate(
    {
        "templates": {
            "t": {
                "points": [
                    {"source": "1/limit", "name": "Limit", "writable": True, "maximum": 32,
                     "bacnet": {"type": "analog-value", "offset": 4, "relinquish_default": 16}},
                    {"source": "1/smart_charging", "name": "Enable", "writable": True,
                     "bacnet": {"type": "binary-value", "offset": 5}},
                    {"source": "1/status", "bacnet": {"type": "multi-state-input", "offset": 6,
                                                      "name": "{charger} status"}},
                    {"source": "config/HeartbeatInterval", "writable": True,
                     "bacnet": {"type": "analog-value", "offset": 7, "units": "seconds"}},
                ]
            }
        },
        "chargers": [
            {"id": "CP1", "template": "t", "bacnet": {"base_instance": 100}},
            {"pattern": "C1-*", "template": "t", "slots": 2, "bacnet": {"base_instance": 1000, "stride": 10}},
        ],
    }
)  # fmt: skip


def _plans(charger: str, slot: int = 0) -> dict[str, ObjectPlan]:
    return {
        placed.source.text: plan_mapped(placed, placed.source.point_spec(charger), charger)
        for placed in placements(MAPPING, charger, slot)
    }


def test_a_limit_is_commandable_with_the_mapping_relinquish_default() -> None:
    limit = _plans("CP1")["1/limit"]
    assert limit.object_type is BacnetObjectType.ANALOG_VALUE and limit.instance == 104
    assert limit.commandable and limit.writable and limit.relinquish_default == 16.0
    assert limit.units == "amperes" and limit.name == "CP1/Limit"


def test_the_switch_relinquishes_to_off_and_a_configuration_key_is_not_commandable() -> None:
    plans = _plans("CP1")
    switch, heartbeat = plans["1/smart_charging"], plans["config/HeartbeatInterval"]
    assert switch.commandable and switch.relinquish_default is False
    assert (switch.inactive_text, switch.active_text) == ("disabled", "enabled")
    assert heartbeat.writable and not heartbeat.commandable
    assert heartbeat.units == "seconds"


def test_a_status_object_carries_the_nine_states_and_the_template_name() -> None:
    status = _plans("C1-7", slot=1)["1/status"]
    assert status.instance == 1016 and status.name == "C1-7 status"
    assert status.states[0] == "Available" and len(status.states) == 9


def test_unmapped_points_take_the_type_their_kind_suggests() -> None:
    cases = {
        "1/meter/Power.Active.Import": (BacnetObjectType.ANALOG_INPUT, "watts", False),
        "1/status": (BacnetObjectType.MULTI_STATE_INPUT, None, False),
        "online": (BacnetObjectType.BINARY_INPUT, None, False),
        "vendor": (BacnetObjectType.CHARACTERSTRING_VALUE, None, False),
        "1/limit": (BacnetObjectType.ANALOG_VALUE, "amperes", True),
    }
    for source_text, (object_type, units, commandable) in cases.items():
        source = resolve(source_text)
        plan = plan_dynamic(source.point_spec("CP9"), 1000000, source.field.name)
        assert (plan.object_type, plan.units, plan.commandable) == (object_type, units, commandable), (
            source_text
        )
        assert plan.name == f"CP9/{source_text}" and not plan.mapped
    assert plan_dynamic(resolve("online").point_spec("CP9"), 1, "online").kind is Kind.BINARY


async def test_a_pattern_charger_keeps_its_slot_and_a_full_pattern_gives_none(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    await store.start()
    try:
        slots = ChargerSlots(store)
        await slots.load()
        assert slots.slot_for(MAPPING, "CP1") == 0
        assert slots.slot_for(MAPPING, "C1-A") == 0
        assert slots.slot_for(MAPPING, "C1-B") == 1
        assert slots.slot_for(MAPPING, "C1-C") is None  # two slots only
        assert slots.slot_for(MAPPING, "C1-A") == 0
        assert slots.slot_for(MAPPING, "nobody") is None
        await store.flush()
        again = ChargerSlots(store)
        await again.load()
        assert again.assigned("C1-*") == {0: "C1-A", 1: "C1-B"}
        assert again.slot_for(MAPPING, "C1-B") == 1
    finally:
        await store.stop()
