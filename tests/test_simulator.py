"""The simulator's pure parts: its profiles (the seeds' message and key lists), the current and energy a limit
allows, the charging-profile stack, the local list, and how a fleet is planned. No sockets, no clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.simulator.fleet import plan
from gateway.simulator.options import FleetOptions, parse_mix
from gateway.simulator.physics import (
    Car,
    Converter,
    InstalledProfile,
    LocalList,
    Meter,
    ProfileRules,
    ProfileStack,
    energy_after,
    operating_point,
)
from gateway.simulator.profiles import (
    AC_SMART,
    AMINA,
    CENTRAL_SYSTEM_CALLS,
    FEATURE_PROFILES,
    GENERIC,
    PROFILES,
    SICHARGE_D,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0


# -- profiles --------------------------------------------------------------------------------------------------


def test_ac_smart_is_the_seeds_list() -> None:
    assert AC_SMART.sends == {
        "Authorize",
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StopTransaction",
        "StatusNotification",
    }
    assert len(AC_SMART.receives) == 14 and AC_SMART.receives <= CENTRAL_SYSTEM_CALLS
    assert [k.key for k in AC_SMART.configuration if not k.readonly] == [
        "ConnectionTimeOut",
        "HeartbeatInterval",
        "MeterValueSampleInterval",
        "TransactionMessageAttempts",
        "TransactionMessageRetryInterval",
        "ConnectorMaximumCurrent",
        "WebSocketPingInterval",
    ]
    assert len(AC_SMART.configuration) == 16
    for action in ("SendLocalList", "TriggerMessage", "ClearCache", "DataTransfer", "Foo"):
        assert AC_SMART.refusal(action) == "NotImplemented"
    assert AC_SMART.refusal("SetChargingProfile") is None


def test_sicharge_d_refuses_what_it_lacks_as_not_supported() -> None:
    for action in ("SetChargingProfile", "ClearChargingProfile", "GetCompositeSchedule", "ReserveNow",
                   "CancelReservation", "TriggerMessage", "UpdateFirmware", "GetDiagnostics"):  # fmt: skip
        assert SICHARGE_D.refusal(action) == "NotSupported", action
    for action in ("SendLocalList", "GetLocalListVersion", "DataTransfer", "ClearCache", "Reset"):
        assert SICHARGE_D.refusal(action) is None
    assert SICHARGE_D.dc and SICHARGE_D.connectors == 2
    assert SICHARGE_D.config("SupportedFeatureProfiles") is not None
    assert SICHARGE_D.config("SupportedFeatureProfiles").value == "Core,LocalAuthListManagement"  # type: ignore[union-attr]


def test_ids_and_the_rest_of_the_profiles() -> None:
    assert re.fullmatch(r"C1-\d{10}", AMINA.charger_id(1)) and AMINA.charger_id(1) == "C1-1000000001"
    assert AC_SMART.charger_id(3) == "ACSMART-03" and SICHARGE_D.charger_id(12) == "SICHARGE-D-12"
    assert GENERIC.charger_id(7, "site1-") == "site1-SIM-0007"
    rotary = AMINA.config("Cst_MaxCurrentRotarySwitchSetting")
    assert rotary is not None and rotary.readonly and rotary.value in ("16", "32")
    assert GENERIC.receives == CENTRAL_SYSTEM_CALLS and len(GENERIC.feature_profiles) == len(FEATURE_PROFILES)
    charger_calls = {a for _, sent in FEATURE_PROFILES.values() for a in sent}
    for profile in PROFILES.values():
        keys = [k.key for k in profile.configuration]
        assert len(keys) == len(set(keys)), profile.name
        assert profile.sends <= charger_calls and profile.receives <= CENTRAL_SYSTEM_CALLS
        assert not profile.receives & profile.not_supported
        assert len(profile.vendor) <= 20 and len(profile.model) <= 20


# -- current, power and energy ---------------------------------------------------------------------------------


def test_energy_rises_in_proportion_to_the_limit() -> None:
    car = Car()
    low, high = operating_point(AMINA, car, limit=6), operating_point(AMINA, car, limit=16)
    assert (low.current, low.power, low.status) == (6, 6 * 230 * 3, "Charging")
    assert (high.current, high.power) == (16, 16 * 230 * 3)
    six, sixteen = energy_after(1000, low.power, HOUR) - 1000, energy_after(1000, high.power, HOUR) - 1000
    assert sixteen / six == pytest.approx(16 / 6)
    assert sixteen == pytest.approx(11_040)  # 16 A x 230 V x 3 phases for an hour
    assert operating_point(AMINA, car).current == 32  # no limit: the connector's rating and the car's


def test_a_limit_above_the_rotary_switch_is_capped() -> None:
    point = operating_point(AMINA, Car(), limit=32, cap=16)
    assert point.current == 16 and point.power == 16 * 230 * 3
    assert operating_point(AMINA, Car(max_current=10), limit=32, cap=16).current == 10  # the car takes less
    assert operating_point(AC_SMART, Car(), limit=None, cap=13).current == 13


def test_a_limit_of_zero_or_below_six_amperes_suspends() -> None:
    for limit in (0, 5.9):
        point = operating_point(AMINA, Car(), limit=limit)
        assert (point.current, point.power, point.status) == (0, 0, "SuspendedEVSE")
    meter = Meter(5000.0, operating_point(AMINA, Car(), limit=0), updated=10.0)
    assert meter.advance(10.0 + HOUR) == 0 and meter.energy_wh == 5000


def test_dc_power_follows_a_watt_or_ampere_limit_and_the_battery() -> None:
    car = Car(max_current=500, max_power=150_000, soc=50)  # 380 V at 50 %
    full = operating_point(SICHARGE_D, car)
    assert full.voltage == pytest.approx(380) and full.current == pytest.approx(200)  # the connector's 200 A
    assert full.power == pytest.approx(76_000)
    watts = Converter(SICHARGE_D, full.voltage)(30_000, "W")
    limited = operating_point(SICHARGE_D, car, limit=watts)
    assert limited.power == pytest.approx(30_000) and limited.current == pytest.approx(30_000 / 380)
    assert operating_point(SICHARGE_D, car, limit=100).power == pytest.approx(38_000)
    assert operating_point(SICHARGE_D, Car(max_current=500, soc=90)).power == pytest.approx(
        75_000
    )  # tapering
    assert operating_point(SICHARGE_D, Car(soc=100)).status == "SuspendedEV"
    assert operating_point(SICHARGE_D, car, limit=0).status == "SuspendedEVSE"


def test_the_register_only_grows_and_charges_the_car() -> None:
    car = Car(battery_wh=50_000, soc=20)
    meter = Meter(1000.0, operating_point(SICHARGE_D, car, limit=100), updated=0.0)
    readings = []
    for now in (0.0, 600.0, 300.0, 1200.0, 1200.0, 3600.0):  # a clock going back adds nothing
        meter.advance(now, car)
        readings.append(meter.energy_wh)
    assert readings == sorted(readings) and readings[-1] > readings[0]
    assert car.soc == pytest.approx(20 + 100 * (readings[-1] - 1000) / 50_000)
    assert energy_after(10, -500, 60) == 10 and energy_after(10, 500, -60) == 10


# -- charging profiles -----------------------------------------------------------------------------------------


def profile(
    connector: int,
    limit: float,
    purpose: str = "TxDefaultProfile",
    *,
    profile_id: int = 1,
    stack: int = 0,
    unit: str = "A",
    periods: list[tuple[int, float]] | None = None,
    kind: str = "Absolute",
    start: datetime | None = T0,
    **extra: Any,
) -> InstalledProfile:
    schedule: dict[str, Any] = {
        "charging_rate_unit": unit,
        "charging_schedule_period": [{"start_period": s, "limit": v} for s, v in (periods or [(0, limit)])],
    }
    if start is not None:
        schedule["start_schedule"] = start.isoformat()
    if "duration" in extra:
        schedule["duration"] = extra.pop("duration")
    data = {
        "charging_profile_id": profile_id,
        "stack_level": stack,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": kind,
        "charging_schedule": schedule,
        **extra,
    }
    return InstalledProfile.from_ocpp(connector, data, T0)


AMPS = Converter(GENERIC, 230.0)
RULES = ProfileRules(connectors=2)


def test_which_profile_is_in_force() -> None:
    stack = ProfileStack()
    assert stack.install(profile(0, 20), RULES, {}) == "Accepted"
    assert stack.connector_limit(1, T0, AMPS) == 20  # connector 0's TxDefaultProfile for every connector
    assert stack.install(profile(1, 12, profile_id=2), RULES, {}) == "Accepted"
    assert stack.connector_limit(1, T0, AMPS) == 12 and stack.connector_limit(2, T0, AMPS) == 20
    assert stack.install(profile(1, 8, profile_id=3, stack=1), RULES, {}) == "Accepted"
    assert stack.connector_limit(1, T0, AMPS) == 8  # the higher stack level
    assert stack.install(profile(1, 10, "TxProfile", profile_id=4), RULES, {1: 77}) == "Accepted"
    assert stack.connector_limit(1, T0, AMPS, transaction_id=77) == 10  # the transaction's own wins
    assert (
        stack.install(profile(0, 9000, "ChargePointMaxProfile", profile_id=5, unit="W"), RULES, {})
        == "Accepted"
    )
    share = 9000 / 690 / 2  # W over 230 V x 3 phases, shared by two connectors drawing
    assert stack.connector_limit(2, T0, AMPS, sharing=2) == pytest.approx(share)
    assert stack.charger_limit(T0, AMPS) == pytest.approx(9000 / 690)
    stack.transaction_ended(77)
    assert stack.connector_limit(1, T0, AMPS, transaction_id=77) == 8
    assert stack.clear(profile_id=3) == "Accepted" and stack.clear(profile_id=3) == "Unknown"
    assert stack.clear(purpose="ChargePointMaxProfile") == "Accepted"
    assert stack.connector_limit(1, T0, AMPS) == 12
    assert stack.clear() == "Accepted" and stack.connector_limit(1, T0, AMPS) is None  # back to full current


def test_what_a_charger_rejects() -> None:
    stack = ProfileStack()
    amps_only = ProfileRules(connectors=1, units=frozenset({"A"}))
    assert stack.install(profile(1, 16, "ChargePointMaxProfile"), RULES, {}) == "Rejected"
    assert stack.install(profile(0, 16, "TxProfile"), RULES, {1: 5}) == "Rejected"
    assert stack.install(profile(1, 16, "TxProfile"), RULES, {}) == "Rejected"  # no transaction
    assert stack.install(profile(1, 16, "TxProfile", transaction_id=4), RULES, {1: 5}) == "Rejected"
    assert stack.install(profile(3, 16), RULES, {}) == "Rejected"
    assert stack.install(profile(1, 7000, unit="W"), amps_only, {}) == "Rejected"
    assert stack.install(profile(1, 16, stack=9), RULES, {}) == "Rejected"
    assert not stack.profiles
    # the same id, or the same connector, purpose and stack level, is replaced
    stack.install(profile(1, 16, profile_id=1), RULES, {})
    stack.install(profile(1, 10, profile_id=2), RULES, {})
    stack.install(profile(2, 6, profile_id=2), RULES, {})
    assert [(p.connector_id, p.profile_id) for p in stack.profiles] == [(2, 2)]


def test_schedules_over_time() -> None:
    stack = ProfileStack()
    stepped = profile(1, 0, periods=[(0, 16), (600, 6)], duration=1800)
    assert stack.install(stepped, RULES, {}) == "Accepted"
    assert stack.connector_limit(1, T0 - timedelta(seconds=1), AMPS) is None  # not begun
    assert stack.connector_limit(1, T0 + timedelta(seconds=300), AMPS) == 16
    assert stack.connector_limit(1, T0 + timedelta(seconds=900), AMPS) == 6
    assert stack.connector_limit(1, T0 + timedelta(seconds=1800), AMPS) is None  # over
    assert stack.composite(1, T0, 3600, AMPS, default=32) == [(0, 16), (600, 6), (1800, 32)]
    daily = profile(0, 0, "ChargePointMaxProfile", profile_id=9, periods=[(0, 10), (3600, 20)], kind="Recurring",
                    recurrency_kind="Daily")  # fmt: skip
    assert stack.install(daily, RULES, {}) == "Accepted"
    assert stack.charger_limit(T0 + timedelta(days=3, minutes=30), AMPS) == 10
    assert stack.charger_limit(T0 + timedelta(days=3, minutes=90), AMPS) == 20
    relative = profile(2, 0, periods=[(0, 8), (60, 14)], kind="Relative", start=None, profile_id=3)
    assert stack.install(relative, RULES, {}) == "Accepted"
    began = T0 + timedelta(hours=5)
    limit = stack.connector_limit(2, began + timedelta(seconds=90), AMPS, transaction_start=began)
    assert limit == 14


# -- the local list and the fleet ------------------------------------------------------------------------------


def test_local_list_versions() -> None:
    local = LocalList()
    tags = [
        {"id_tag": "A", "id_tag_info": {"status": "Accepted"}},
        {"id_tag": "B", "id_tag_info": {"status": "Blocked"}},
    ]
    assert local.update(5, "Full", tags, 10) == "Accepted" and local.version == 5
    assert local.update(3, "Differential", [{"id_tag": "C", "id_tag_info": {"status": "Accepted"}}], 10) == (
        "VersionMismatch"
    )
    assert local.update(6, "Differential", [{"id_tag": "A"}], 10) == "Accepted"
    assert (local.version, set(local.entries)) == (6, {"B"})
    # OCPP 1.6 §5.15: a differential update of the version held is VersionMismatch too
    assert local.update(6, "Differential", [{"id_tag": "B"}], 10) == "VersionMismatch"
    assert set(local.entries) == {"B"}
    assert local.update(7, "Full", tags * 6, 1) == "Failed" and local.version == 6


def test_the_fleet_is_planned_round_robin() -> None:
    ids = [charger_id for _, charger_id in plan(FleetOptions(chargers=4))]
    assert ids == ["C1-1000000001", "ACSMART-01", "SICHARGE-D-01", "SIM-0001"]
    mix = parse_mix("amina=2,ac-smart=1")
    names = [p.name for p, _ in plan(FleetOptions(chargers=6, mix=mix, id_prefix="X-"))]
    assert names == ["amina", "ac-smart", "amina", "amina", "ac-smart", "amina"]
    assert plan(FleetOptions(chargers=3, mix=mix, id_prefix="X-"))[2][1] == "X-C1-1000000002"
    counts = {name: 0 for name in PROFILES}
    for p, _ in plan(FleetOptions(chargers=50)):
        counts[p.name] += 1
    assert counts == {"amina": 13, "ac-smart": 13, "sicharge-d": 12, "generic": 12}
    for bad in ("tesla=1", "amina=x", "amina=0", "amina=-1"):
        with pytest.raises(ValueError):
            parse_mix(bad)
