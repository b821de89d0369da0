"""The point model on its own: defining points, updates and their notification, coercion per kind, units,
write checks, quality marks, listeners and coalescing subscriptions."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from points import (
    Change,
    Kind,
    Point,
    PointDatabase,
    PointSpec,
    PointValue,
    Quality,
    Value,
    WriteError,
    WriteErrorCode,
    WriteResult,
    coerce,
    normalize,
    parse_number,
)

ENERGY = PointSpec("CP1/energy", "Energy", Kind.ANALOG, unit="Wh")
LIMIT = PointSpec("CP1/limit", "Current limit", Kind.ANALOG, unit="A", writable=True, minimum=6, maximum=32)
PLUGGED = PointSpec("CP1/plugged", "Plugged", Kind.BINARY, states=("Unplugged", "Plugged"))
ENABLED = PointSpec("CP1/enabled", "Enabled", Kind.BINARY, writable=True)
STATUS = PointSpec("CP1/status", "Status", Kind.MULTISTATE, states=("Available", "Charging", "Faulted"))
MODE = PointSpec("CP1/mode", "Mode", Kind.MULTISTATE, writable=True, states=("Off", "Eco", "Fast"))
FIRMWARE = PointSpec("CP1/firmware", "Firmware", Kind.STRING)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class RecordingWriter:
    """A writer that remembers its calls and answers Accepted."""

    def __init__(self) -> None:
        self.calls: list[tuple[Point, Value, str]] = []

    async def __call__(self, point: Point, value: Value, source: str) -> WriteResult:
        self.calls.append((point, value, source))
        return WriteResult(True, "Accepted", f"set to {value}")


def recorder(db: PointDatabase, prefix: str = "") -> list[Change]:
    changes: list[Change] = []
    db.listen(changes.append, prefix)
    return changes


# --- define ---


def test_define_creates_an_unknown_point_and_notifies_it_as_added() -> None:
    db = PointDatabase()
    changes = recorder(db)
    point = db.define(ENERGY)
    assert point.id == "CP1/energy" and point.spec is ENERGY
    assert point.current == PointValue(None, None, Quality.UNKNOWN)
    assert point.writer is None
    assert db.get("CP1/energy") is point and "CP1/energy" in db and len(db) == 1
    assert [(c.point, c.added, c.source, c.new.quality) for c in changes] == [
        (point, True, "gateway", Quality.UNKNOWN)
    ]


def test_define_is_idempotent_and_keeps_the_value() -> None:
    db = PointDatabase()
    point = db.define(ENERGY)
    db.update("CP1/energy", 1200.0, timestamp=T0)
    changes = recorder(db)
    assert db.define(ENERGY) is point
    assert changes == []
    assert point.current == PointValue(1200.0, T0, Quality.GOOD)
    assert len(db) == 1


def test_define_with_a_new_spec_keeps_the_value_and_notifies() -> None:
    db = PointDatabase()
    point = db.define(ENERGY)
    db.update("CP1/energy", 5.0, timestamp=T0)
    changes = recorder(db)
    new_spec = PointSpec("CP1/energy", "Energy imported", Kind.ANALOG, unit="kWh")
    assert db.define(new_spec) is point
    assert point.spec is new_spec and point.value == 5.0 and point.quality is Quality.GOOD
    assert len(changes) == 1
    assert changes[0].added is False and changes[0].point.spec.unit == "kWh"
    assert changes[0].old == changes[0].new == PointValue(5.0, T0, Quality.GOOD)


def test_define_with_another_kind_forgets_the_value() -> None:
    db = PointDatabase()
    point = db.define(ENERGY)
    db.update("CP1/energy", 5.0, timestamp=T0)
    changes = recorder(db)
    db.define(PointSpec("CP1/energy", "Energy", Kind.STRING))
    assert point.current == PointValue(None, None, Quality.UNKNOWN)
    assert [(c.old.value, c.new.value) for c in changes] == [(5.0, None)]


async def test_define_replaces_the_writer_only_when_given() -> None:
    db = PointDatabase()
    first, second = RecordingWriter(), RecordingWriter()
    point = db.define(LIMIT, first)
    db.define(LIMIT)
    assert point.writer is first
    db.define(LIMIT, second)
    assert point.writer is second
    await db.write("CP1/limit", 10, source="api")
    assert (len(first.calls), len(second.calls)) == (0, 1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PointSpec("P", "P", Kind.MULTISTATE), "at least one state"),
        (PointSpec("P", "P", Kind.ANALOG, minimum=10, maximum=5), "above maximum"),
        (PointSpec("P", "P", Kind.BINARY, maximum=1), "only analog"),
        (PointSpec("P", "P", Kind.MULTISTATE, states=("A",), minimum=1), "only analog"),
        (PointSpec("", "P", Kind.ANALOG), "needs an id"),
    ],
)
def test_define_refuses_an_inconsistent_spec(spec: PointSpec, message: str) -> None:
    db = PointDatabase()
    with pytest.raises(ValueError, match=message):
        db.define(spec)
    assert len(db) == 0


def test_points_by_prefix_sorted_and_iteration() -> None:
    db = PointDatabase()
    for spec in (
        STATUS,
        ENERGY,
        PointSpec("CP10/energy", "E", Kind.ANALOG),
        PointSpec("CP2/x", "X", Kind.STRING),
    ):
        db.define(spec)
    assert [p.id for p in db.points("CP1/")] == ["CP1/energy", "CP1/status"]
    assert [p.id for p in db.points()] == ["CP1/energy", "CP1/status", "CP10/energy", "CP2/x"]
    assert {p.id for p in db} == {"CP1/status", "CP1/energy", "CP10/energy", "CP2/x"}
    assert 42 not in db and "CP3/x" not in db and db.get("CP3/x") is None


# --- update ---


def test_update_notifies_only_when_value_or_quality_changes() -> None:
    db = PointDatabase()
    point = db.define(ENERGY)
    changes = recorder(db)
    assert db.update("CP1/energy", 100, timestamp=T0) is True
    later = T0 + timedelta(seconds=10)
    assert db.update("CP1/energy", 100.0, timestamp=later) is False
    assert point.timestamp == later  # stored all the same
    assert db.update("CP1/energy", 100.0, quality=Quality.STALE, timestamp=later, source="api") is True
    assert db.update("CP1/energy", 101.5, timestamp=later, quality=Quality.STALE) is True
    assert [(c.old.value, c.new.value, c.new.quality, c.source) for c in changes] == [
        (None, 100.0, Quality.GOOD, "ocpp"),
        (100.0, 100.0, Quality.STALE, "api"),
        (100.0, 101.5, Quality.STALE, "ocpp"),
    ]
    assert changes[0].old == PointValue(None, None, Quality.UNKNOWN)
    assert isinstance(point.value, float)


def test_update_timestamps_default_to_now_and_are_utc() -> None:
    db = PointDatabase()
    point = db.define(ENERGY)
    before = datetime.now(UTC)
    db.update("CP1/energy", 1.0)
    assert point.timestamp is not None and before <= point.timestamp <= datetime.now(UTC)
    db.update("CP1/energy", 2.0, timestamp=datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    assert point.timestamp == T0 and point.timestamp.tzinfo is UTC
    db.update("CP1/energy", 3.0, timestamp=datetime(2026, 1, 1, 12, 0))  # naive: taken as UTC
    assert point.timestamp == T0


def test_update_coerces_and_refuses_what_does_not_fit() -> None:
    db = PointDatabase()
    status = db.define(STATUS)
    db.define(ENERGY)
    db.update("CP1/status", "charging")
    assert status.value == 2 and status.text == "Charging"
    with pytest.raises(KeyError):
        db.update("CP9/nothing", 1.0)
    with pytest.raises(WriteError) as wrong:
        db.update("CP1/energy", "lots")
    assert wrong.value.code is WriteErrorCode.WRONG_TYPE
    with pytest.raises(WriteError) as outside:
        db.update("CP1/status", 4)
    assert outside.value.code is WriteErrorCode.OUT_OF_RANGE
    assert status.value == 2


def test_point_text() -> None:
    db = PointDatabase()
    energy, plugged, enabled = db.define(ENERGY), db.define(PLUGGED), db.define(ENABLED)
    status, firmware = db.define(STATUS), db.define(FIRMWARE)
    assert [p.text for p in (energy, plugged, enabled, status, firmware)] == ["", "", "", "", ""]
    cases: list[tuple[Point, Value, str]] = [
        (energy, 0.1 + 0.2, "0.3"),
        (energy, 1234.0, "1234"),
        (energy, 12.5, "12.5"),
        (energy, -0.0, "0"),
        (plugged, True, "Plugged"),
        (plugged, False, "Unplugged"),
        (enabled, True, "true"),
        (status, 3, "Faulted"),
        (firmware, "1.2.3", "1.2.3"),
    ]
    for point, value, text in cases:
        db.update(point.id, value)
        assert point.text == text, (point.id, value)


# --- coercion ---


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (ENERGY, 12, 12.0),
        (ENERGY, 12.5, 12.5),
        (ENERGY, " 1e3 ", 1000.0),
        (ENERGY, Decimal("2.5"), 2.5),
        (ENERGY, None, None),
        (ENABLED, True, True),
        (ENABLED, 0, False),
        (ENABLED, 1, True),
        (ENABLED, "TRUE", True),
        (ENABLED, "off", False),
        (ENABLED, "1", True),
        (PLUGGED, "plugged", True),
        (PLUGGED, "Unplugged", False),
        (STATUS, 2, 2),
        (STATUS, 3.0, 3),
        (STATUS, "FAULTED", 3),
        (STATUS, "1", 1),
        (FIRMWARE, "v2", "v2"),
        (FIRMWARE, 7, "7"),
        (FIRMWARE, 1.5, "1.5"),
    ],
)
def test_coerce(spec: PointSpec, value: object, expected: Value) -> None:
    result = coerce(spec, value)
    assert result == expected
    assert type(result) is type(expected)


def test_coerce_prefers_the_binary_state_texts_over_on_off() -> None:
    reversed_words = PointSpec("P", "P", Kind.BINARY, states=("On", "Off"))
    assert coerce(reversed_words, "on") is False
    assert coerce(reversed_words, "OFF") is True
    assert coerce(reversed_words, "true") is True


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (ENERGY, True),
        (ENERGY, "abc"),
        (ENERGY, ""),
        (ENERGY, "nan"),
        (ENERGY, float("inf")),
        (ENERGY, [1]),
        (ENABLED, 2),
        (ENABLED, "yes"),
        (ENABLED, 0.5),
        (STATUS, True),
        (STATUS, 2.5),
        (STATUS, "Sleeping"),
        (FIRMWARE, True),
        (FIRMWARE, b"bytes"),
    ],
)
def test_coerce_refuses(spec: PointSpec, value: object) -> None:
    with pytest.raises(WriteError) as caught:
        coerce(spec, value)
    assert caught.value.code is WriteErrorCode.WRONG_TYPE
    assert caught.value.point_id == spec.id
    assert str(caught.value).startswith(f"Point '{spec.id}' takes ")


# --- units ---


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1.234, "kWh", (1234.0, "Wh")),
        (1.1, "kW", (1100.0, "W")),
        (0.1, "kvarh", (100.0, "varh")),
        (2.5, "kvar", (2500.0, "var")),
        (7.4, "kVA", (7400.0, "VA")),
        (21.5, "Celcius", (21.5, "Celsius")),
        (21.5, "Celsius", (21.5, "Celsius")),
        (1234.5, "Wh", (1234.5, "Wh")),
        (16.0, "A", (16.0, "A")),
        (55.0, "Percent", (55.0, "Percent")),
        (3.0, None, (3.0, None)),
    ],
)
def test_normalize(value: float, unit: str | None, expected: tuple[float, str | None]) -> None:
    assert normalize(value, unit) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("12.5", 12.5), (" 12 ", 12.0), ("1e3", 1000.0), (12, 12.0), ("-0.5", -0.5)]
)
def test_parse_number(text: str | float | int, expected: float) -> None:
    result = parse_number(text)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("text", ["abc", "", "  ", "nan", "inf", "-Infinity", "1_000", float("nan"), 10**400])
def test_parse_number_refuses(text: str | float | int) -> None:
    with pytest.raises(ValueError):
        parse_number(text)


# --- write ---


async def test_write_calls_the_writer_with_the_coerced_value_and_source() -> None:
    db = PointDatabase()
    writer = RecordingWriter()
    point = db.define(LIMIT, writer)
    result = await db.write("CP1/limit", "16", source="bacnet")
    assert result == WriteResult(True, "Accepted", "set to 16.0")
    assert writer.calls == [(point, 16.0, "bacnet")]
    assert isinstance(writer.calls[0][1], float)
    assert point.value is None  # the writer decides whether the value changes
    mode_writer = RecordingWriter()
    db.define(MODE, mode_writer)
    await db.write("CP1/mode", "eco", source="modbus")
    assert [(value, source) for _, value, source in mode_writer.calls] == [(2, "modbus")]


async def test_write_limits_are_inclusive() -> None:
    db = PointDatabase()
    writer = RecordingWriter()
    db.define(LIMIT, writer)
    await db.write("CP1/limit", 6, source="api")
    await db.write("CP1/limit", 32.0, source="api")
    assert [value for _, value, _ in writer.calls] == [6.0, 32.0]


@pytest.mark.parametrize(
    ("point_id", "value", "code", "message"),
    [
        ("CP1/nothing", 1, WriteErrorCode.UNKNOWN_POINT, "There is no point 'CP1/nothing'"),
        ("CP1/energy", 1, WriteErrorCode.NOT_WRITABLE, "Point 'CP1/energy' is read-only."),
        ("CP1/enabled", True, WriteErrorCode.NOT_WRITABLE, "nothing is connected"),
        ("CP1/limit", "sixteen", WriteErrorCode.WRONG_TYPE, "takes a finite number, not 'sixteen'"),
        ("CP1/limit", None, WriteErrorCode.WRONG_TYPE, "needs a value"),
        ("CP1/limit", 5.9, WriteErrorCode.OUT_OF_RANGE, "takes values from 6 to 32 A; 5.9 A is outside."),
        ("CP1/limit", 33, WriteErrorCode.OUT_OF_RANGE, "from 6 to 32 A; 33 A"),
        (
            "CP1/mode",
            4,
            WriteErrorCode.OUT_OF_RANGE,
            "has no state 4; its states are 1 = Off, 2 = Eco, 3 = Fast",
        ),
        ("CP1/mode", 0, WriteErrorCode.OUT_OF_RANGE, "has no state 0"),
        ("CP1/mode", "Turbo", WriteErrorCode.WRONG_TYPE, "one of 'Off', 'Eco', 'Fast', not 'Turbo'"),
    ],
)
async def test_write_refusals(point_id: str, value: object, code: WriteErrorCode, message: str) -> None:
    db = PointDatabase()
    writer = RecordingWriter()
    db.define(ENERGY, writer)  # a writer, but the point is not writable
    db.define(ENABLED)  # writable, but no writer
    db.define(LIMIT, writer)
    db.define(MODE, writer)
    with pytest.raises(WriteError) as caught:
        await db.write(point_id, value, source="api")
    assert caught.value.code is code
    assert caught.value.point_id == point_id
    assert message in str(caught.value)
    assert writer.calls == []


async def test_write_one_sided_limit() -> None:
    db = PointDatabase()
    db.define(PointSpec("P", "P", Kind.ANALOG, unit="W", writable=True, minimum=0), RecordingWriter())
    with pytest.raises(WriteError, match=r"takes values of at least 0 W; -1 W is outside\.") as caught:
        await db.write("P", -1, source="api")
    assert caught.value.code is WriteErrorCode.OUT_OF_RANGE


async def test_write_result_of_a_refusing_writer_is_returned() -> None:
    db = PointDatabase()

    async def offline(point: Point, value: Value, source: str) -> WriteResult:
        return WriteResult(False, "offline", f"{point.id} is not connected")

    db.define(ENABLED, offline)
    assert await db.write("CP1/enabled", "on", source="api") == WriteResult(
        False, "offline", "CP1/enabled is not connected"
    )


# --- quality marks ---


def test_mark_stale() -> None:
    db = PointDatabase()
    point = db.define(ENERGY)
    db.update("CP1/energy", 7.0, timestamp=T0)
    changes = recorder(db)
    assert db.mark_stale("CP1/energy") is True
    assert db.mark_stale("CP1/energy") is False
    assert point.current == PointValue(7.0, T0, Quality.STALE)
    assert [(c.old.quality, c.new.quality, c.source) for c in changes] == [
        (Quality.GOOD, Quality.STALE, "ocpp")
    ]
    with pytest.raises(KeyError):
        db.mark_stale("CP1/nothing")


def test_mark_offline_and_online() -> None:
    db = PointDatabase()
    energy, status = db.define(ENERGY), db.define(STATUS)
    other = db.define(PointSpec("CP2/energy", "Energy", Kind.ANALOG))
    db.update("CP1/energy", 7.0, timestamp=T0)
    db.update("CP2/energy", 8.0, timestamp=T0)
    changes = recorder(db)

    assert db.mark_offline("CP1/") == 2
    assert (energy.current, status.current) == (
        PointValue(7.0, T0, Quality.OFFLINE),
        PointValue(None, None, Quality.OFFLINE),
    )
    assert other.quality is Quality.GOOD
    assert db.mark_offline("CP1/") == 0
    assert [(c.point.id, c.new.quality, c.source) for c in changes] == [
        ("CP1/energy", Quality.OFFLINE, "gateway"),
        ("CP1/status", Quality.OFFLINE, "gateway"),
    ]

    changes.clear()
    assert db.mark_online("CP1/") == 2
    assert (energy.quality, status.quality) == (Quality.GOOD, Quality.UNKNOWN)
    assert energy.value == 7.0
    assert db.mark_online("CP1/") == 0
    assert [(c.point.id, c.old.quality, c.new.quality) for c in changes] == [
        ("CP1/energy", Quality.OFFLINE, Quality.GOOD),
        ("CP1/status", Quality.OFFLINE, Quality.UNKNOWN),
    ]


def test_marking_one_charger_offline_leaves_ids_that_only_start_alike() -> None:
    db = PointDatabase()
    ten = db.define(PointSpec("CP10/energy", "Energy", Kind.ANALOG))
    one = db.define(PointSpec("CP1/energy", "Energy", Kind.ANALOG))
    nested = db.define(PointSpec("CP1/1/status", "Status", Kind.STRING))
    assert db.mark_offline("CP1/") == 2
    assert (one.quality, nested.quality, ten.quality) == (Quality.OFFLINE, Quality.OFFLINE, Quality.UNKNOWN)
    assert db.mark_online("CP1/1/") == 1  # a deeper prefix works too
    assert (one.quality, nested.quality) == (Quality.OFFLINE, Quality.UNKNOWN)


def test_the_gateways_own_points_keep_their_quality_offline() -> None:
    db = PointDatabase()
    online = db.define(PointSpec("CP1/online", "Online", Kind.BINARY, own=True))
    energy = db.define(ENERGY)
    db.update("CP1/online", True)
    db.update("CP1/energy", 7.0)

    assert db.mark_offline("CP1/") == 1
    assert (online.quality, energy.quality) == (Quality.GOOD, Quality.OFFLINE)
    assert db.mark_online("CP1/") == 1
    assert online.quality is Quality.GOOD


def test_mark_online_leaves_points_that_are_not_offline() -> None:
    db = PointDatabase()
    point = db.define(ENERGY)
    db.update("CP1/energy", 1.0)
    db.mark_stale("CP1/energy")
    assert db.mark_online("CP1/") == 0
    assert point.quality is Quality.STALE


# --- listen ---


def test_listen_by_prefix_and_unsubscribe() -> None:
    db = PointDatabase()
    db.define(ENERGY)
    db.define(PointSpec("CP10/energy", "Energy", Kind.ANALOG))
    cp1: list[str] = []
    everything: list[str] = []
    stop = db.listen(lambda c: cp1.append(f"{c.point.id}={c.new.value}"), "CP1/")
    db.listen(lambda c: everything.append(f"{c.point.id}={c.new.value}"))
    db.update("CP1/energy", 1.0)
    db.update("CP10/energy", 2.0)
    stop()
    stop()  # a second call does nothing
    db.update("CP1/energy", 3.0)
    assert cp1 == ["CP1/energy=1.0"]
    assert everything == ["CP1/energy=1.0", "CP10/energy=2.0", "CP1/energy=3.0"]


def test_a_raising_listener_is_logged_and_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    db = PointDatabase()
    db.define(ENERGY)
    seen: list[float | None] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    db.listen(broken)
    db.listen(lambda c: seen.append(c.new.value if isinstance(c.new.value, float) else None))
    with caplog.at_level(logging.ERROR, logger="points"):
        assert db.update("CP1/energy", 1.0) is True
        assert db.update("CP1/energy", 2.0) is True
    assert seen == [1.0, 2.0]
    failures = [r for r in caplog.records if r.name == "points"]
    assert len(failures) == 2 and "CP1/energy" in failures[0].getMessage()
    assert failures[0].exc_info is not None and failures[0].exc_info[0] is RuntimeError


def test_changes_made_by_a_listener_reach_every_listener_in_order() -> None:
    db = PointDatabase()
    db.define(ENERGY)
    db.define(STATUS)

    def follow(change: Change) -> None:
        if change.point.id == "CP1/energy":
            db.update("CP1/status", 2)

    db.listen(follow)
    seen = recorder(db)
    db.update("CP1/energy", 1.0)
    assert [c.point.id for c in seen] == ["CP1/energy", "CP1/status"]


# --- subscribe ---


async def test_subscription_iterates_changes_and_wakes_a_waiting_consumer() -> None:
    db = PointDatabase()
    db.define(ENERGY)
    received: list[Value] = []

    async def consume() -> None:
        async with db.subscribe("CP1/") as changes:
            async for change in changes:
                received.append(change.new.value)
                if len(received) == 2:
                    break

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # the consumer is waiting now
    db.update("CP1/energy", 1.0)
    await asyncio.sleep(0)
    db.update("CP1/energy", 2.0)
    await asyncio.wait_for(task, 1)
    assert received == [1.0, 2.0]


async def test_subscription_coalesces_per_point_in_order_of_first_change() -> None:
    db = PointDatabase()
    db.define(ENERGY)
    db.define(STATUS)
    db.update("CP1/energy", 1.0)
    async with db.subscribe() as changes:
        db.update("CP1/energy", 2.0, source="ocpp")
        db.update("CP1/status", 1)
        db.update("CP1/energy", 3.0)
        db.update("CP1/energy", 4.0, quality=Quality.STALE, source="api")
        assert changes.pending() == 2
        first = await asyncio.wait_for(changes.get(), 1)
        second = await asyncio.wait_for(changes.get(), 1)
        assert changes.pending() == 0
    assert first.point.id == "CP1/energy"
    assert (first.old.value, first.old.quality) == (1.0, Quality.GOOD)
    assert (first.new.value, first.new.quality, first.source) == (4.0, Quality.STALE, "api")
    assert (second.point.id, second.old.value, second.new.value) == ("CP1/status", None, 1)


async def test_subscription_keeps_added_when_coalescing() -> None:
    db = PointDatabase()
    async with db.subscribe() as changes:
        db.define(ENERGY)
        db.update("CP1/energy", 9.0)
        change = await asyncio.wait_for(changes.get(), 1)
    assert change.added is True
    assert change.old == PointValue(None, None, Quality.UNKNOWN)
    assert change.new.value == 9.0


async def test_subscription_filters_by_prefix() -> None:
    db = PointDatabase()
    db.define(ENERGY)
    db.define(PointSpec("CP2/energy", "Energy", Kind.ANALOG))
    async with db.subscribe("CP2/") as changes:
        db.update("CP1/energy", 1.0)
        db.update("CP2/energy", 2.0)
        assert changes.pending() == 1
        change = await asyncio.wait_for(changes.get(), 1)
    assert (change.point.id, change.new.value) == ("CP2/energy", 2.0)


async def test_close_ends_the_iteration_of_a_waiting_consumer() -> None:
    db = PointDatabase()
    db.define(ENERGY)
    subscription = db.subscribe()
    received: list[Change] = []

    async def consume() -> None:
        async for change in subscription:
            received.append(change)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    subscription.close()
    await asyncio.wait_for(task, 1)
    assert received == [] and subscription.closed
    db.update("CP1/energy", 1.0)  # no longer delivered
    assert subscription.pending() == 0
    with pytest.raises(StopAsyncIteration):
        await subscription.get()


async def test_leaving_the_block_unsubscribes() -> None:
    db = PointDatabase()
    db.define(ENERGY)
    async with db.subscribe() as changes:
        pass
    db.update("CP1/energy", 1.0)
    assert changes.closed and changes.pending() == 0
