"""The point database: every point by id, its live value, and change notification to listeners and async
subscribers (filtered by id prefix)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType

from points.model import (
    Change,
    Kind,
    Point,
    PointSpec,
    PointValue,
    Quality,
    Value,
    WriteError,
    WriteErrorCode,
    Writer,
    WriteResult,
    format_number,
)
from points.units import parse_number

_log = logging.getLogger("points")

_TRUE_WORDS = frozenset({"true", "1", "on"})
_FALSE_WORDS = frozenset({"false", "0", "off"})
_UNKNOWN = PointValue(None, None, Quality.UNKNOWN)


def coerce(spec: PointSpec, value: object) -> Value:
    """`value` as the type of the point's kind: analog a float, binary a bool, multistate an int, string a
    str. None stays None. Raises WriteError(WRONG_TYPE) for a value the kind cannot take. A multistate
    number is not checked against 1..n here (that is OUT_OF_RANGE, see `check_state`)."""
    if value is None:
        return None
    kind = spec.kind
    if kind is Kind.ANALOG:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                return parse_number(value)
            except ValueError:
                pass
        elif isinstance(value, Decimal) and value.is_finite():
            return float(value)
    elif kind is Kind.BINARY:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().lower()
            # The point's own state texts come first: they may reuse "on"/"off" in either order.
            if len(spec.states) == 2:
                for state, text in zip((False, True), spec.states, strict=True):
                    if word == text.strip().lower():
                        return state
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
    elif kind is Kind.MULTISTATE:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            word = value.strip().lower()
            for number, text in enumerate(spec.states, start=1):
                if word == text.strip().lower():
                    return number
            if word.isascii() and word.isdigit():
                return int(word)
    elif kind is Kind.STRING:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    raise WriteError(WriteErrorCode.WRONG_TYPE, spec.id, _wrong_type(spec, value))


def check_state(spec: PointSpec, value: Value) -> None:
    """Raise WriteError(OUT_OF_RANGE) for a multistate number outside 1..n (a coerced value; others pass)."""
    if spec.kind is Kind.MULTISTATE and isinstance(value, int) and not 1 <= value <= len(spec.states):
        choices = ", ".join(f"{n} = {text}" for n, text in enumerate(spec.states, start=1))
        raise WriteError(
            WriteErrorCode.OUT_OF_RANGE,
            spec.id,
            f"Point '{spec.id}' has no state {value}; its states are {choices}.",
        )


def _wrong_type(spec: PointSpec, value: object) -> str:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    if spec.kind is Kind.ANALOG:
        wanted = "a finite number"
    elif spec.kind is Kind.BINARY:
        texts = f", {spec.states[1]!r} or {spec.states[0]!r}" if len(spec.states) == 2 else ""
        wanted = f"true or false (or 1/0, on/off{texts})"
    elif spec.kind is Kind.MULTISTATE:
        texts = ", ".join(repr(text) for text in spec.states)
        wanted = f"a state number 1..{len(spec.states)} or one of {texts}"
    else:
        wanted = "a text"
    return f"Point '{spec.id}' takes {wanted}, not {shown}."


def _validate(spec: PointSpec) -> None:
    if not spec.id:
        raise ValueError("a point needs an id")
    if spec.kind is Kind.MULTISTATE and not spec.states:
        raise ValueError(f"multistate point {spec.id!r} needs at least one state text")
    if spec.kind is not Kind.ANALOG and (spec.minimum is not None or spec.maximum is not None):
        raise ValueError(f"point {spec.id!r} is {spec.kind}: only analog points have a minimum and maximum")
    if spec.minimum is not None and spec.maximum is not None and not spec.minimum <= spec.maximum:
        raise ValueError(f"point {spec.id!r}: minimum {spec.minimum} is above maximum {spec.maximum}")


def _now() -> datetime:
    return datetime.now(UTC)


class _Listener:
    __slots__ = ("callback", "prefix")

    def __init__(self, callback: Callable[[Change], None], prefix: str) -> None:
        self.callback = callback
        self.prefix = prefix


class PointDatabase:
    """All points by id with their live values. Changes go, in order, to synchronous listeners (`listen`) and
    coalescing async subscriptions (`subscribe`), each filtered by an id prefix such as "CP1/"."""

    def __init__(self) -> None:
        self._points: dict[str, Point] = {}
        # Points by the part of their id before the first "/" (a charger's): marking one source offline or online
        # must not scan every point of every other source.
        self._groups: dict[str, list[Point]] = {}
        # Replaced, never mutated, so a listener may (un)subscribe while changes are being delivered.
        self._listeners: tuple[_Listener, ...] = ()
        self._queue: deque[Change] = deque()
        self._notifying = False

    def define(self, spec: PointSpec, writer: Writer | None = None) -> Point:
        """Create the point, or update its spec (and writer, if one is given) if it exists. A point keeps its
        value unless its kind changes. Raises ValueError for an inconsistent spec."""
        _validate(spec)
        point = self._points.get(spec.id)
        if point is None:
            point = Point(spec, writer=writer)
            self._points[spec.id] = point
            self._groups.setdefault(spec.id.partition("/")[0], []).append(point)
            self._notify(Change(point, _UNKNOWN, point.current, "gateway", added=True))
            return point
        if writer is not None:
            point.writer = writer
        if spec != point.spec:
            old = point.current
            if spec.kind is not point.spec.kind:
                point.value, point.timestamp, point.quality = None, None, Quality.UNKNOWN
            point.spec = spec
            self._notify(Change(point, old, point.current, "gateway"))
        return point

    def get(self, point_id: str) -> Point | None:
        return self._points.get(point_id)

    def __contains__(self, point_id: object) -> bool:
        return point_id in self._points

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[Point]:
        return iter(tuple(self._points.values()))

    def points(self, prefix: str = "") -> list[Point]:
        """The points whose id starts with `prefix`, sorted by id."""
        found = [point for point in self._points.values() if point.id.startswith(prefix)]
        found.sort(key=lambda point: point.id)
        return found

    def _under(self, prefix: str) -> list[Point]:
        """The points under `prefix`, unsorted (what marking a charger offline needs)."""
        head, slash, rest = prefix.partition("/")
        if slash and not rest:  # "CP1/": one group
            return list(self._groups.get(head, ()))
        return [point for point in self._points.values() if point.id.startswith(prefix)]

    def update(
        self,
        point_id: str,
        value: object,
        *,
        timestamp: datetime | None = None,
        quality: Quality = Quality.GOOD,
        source: str = "ocpp",
    ) -> bool:
        """Store a new value (coerced to the point's kind) with its timestamp (default now; a naive one is
        taken as UTC) and quality. Notifies and returns True only if the value or quality changed. Raises
        KeyError for an unknown id and WriteError if the value does not fit the point."""
        point = self._points[point_id]
        coerced = coerce(point.spec, value)
        check_state(point.spec, coerced)
        if timestamp is None:
            timestamp = _now()
        elif timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        elif timestamp.tzinfo is not UTC:
            timestamp = timestamp.astimezone(UTC)
        changed = coerced != point.value or quality != point.quality
        old = point.current if changed else None
        point.value, point.timestamp, point.quality = coerced, timestamp, quality
        if old is not None:
            self._notify(Change(point, old, point.current, source))
        return changed

    def mark_stale(self, point_id: str, *, source: str = "ocpp") -> bool:
        """Keep the value but mark it STALE (the last update was unusable); KeyError for an unknown id."""
        return self._set_quality(self._points[point_id], Quality.STALE, source)

    def mark_offline(self, prefix: str) -> int:
        """Mark every point under `prefix` OFFLINE, keeping the values (but the gateway's `own` points); returns
        how many changed."""
        changed = 0
        for point in self._under(prefix):
            if point.quality is not Quality.OFFLINE and not point.spec.own:
                point.stale_before_offline = point.quality is Quality.STALE
                changed += self._set_quality(point, Quality.OFFLINE, "gateway")
        return changed

    def mark_online(self, prefix: str) -> int:
        """OFFLINE points under `prefix` back to GOOD if they have a value (STALE if they were stale before going
        offline), else UNKNOWN; returns the count."""
        changed = 0
        for point in self._under(prefix):
            if point.quality is Quality.OFFLINE:
                back = Quality.STALE if point.stale_before_offline else Quality.GOOD
                changed += self._set_quality(
                    point, Quality.UNKNOWN if point.value is None else back, "gateway"
                )
                point.stale_before_offline = False
        return changed

    def _set_quality(self, point: Point, quality: Quality, source: str) -> bool:
        if point.quality is quality:
            return False
        old = point.current
        point.quality = quality
        self._notify(Change(point, old, point.current, source))
        return True

    def listen(self, callback: Callable[[Change], None], prefix: str = "") -> Callable[[], None]:
        """Call `callback` with each change of a point under `prefix`, in order; returns the function that
        stops it. A callback that raises is logged and does not stop the others."""
        listener = _Listener(callback, prefix)
        self._listeners = (*self._listeners, listener)

        def unsubscribe() -> None:
            self._listeners = tuple(other for other in self._listeners if other is not listener)

        return unsubscribe

    def subscribe(self, prefix: str = "") -> Subscription:
        """An async stream of the changes under `prefix`, coalesced per point while the consumer is busy:
        `async with db.subscribe("CP1/") as changes: async for change in changes: ...`."""
        return Subscription(self, prefix)

    async def write(self, point_id: str, value: object, *, source: str) -> WriteResult:
        """Check a write (WriteError: unknown point, not writable, wrong type, out of range) and hand the
        coerced value to the point's writer, whose result this is."""
        point, coerced = self.check_write(point_id, value)
        assert point.writer is not None
        return await point.writer(point, coerced, source)

    def check_write(self, point_id: str, value: object) -> tuple[Point, Value]:
        """What `write` checks, without writing: the point and the value coerced to its kind, or WriteError
        (for an adapter that answers its client before the charger answers)."""
        point = self._points.get(point_id)
        if point is None:
            raise WriteError(
                WriteErrorCode.UNKNOWN_POINT, point_id, f"There is no point '{point_id}'; check the id."
            )
        spec = point.spec
        if not spec.writable:
            raise WriteError(WriteErrorCode.NOT_WRITABLE, point_id, f"Point '{point_id}' is read-only.")
        writer = point.writer
        if writer is None:
            raise WriteError(
                WriteErrorCode.NOT_WRITABLE,
                point_id,
                f"Point '{point_id}' cannot be written now: nothing is connected to carry the write.",
            )
        coerced = coerce(spec, value)
        if coerced is None:
            raise WriteError(
                WriteErrorCode.WRONG_TYPE, point_id, f"Point '{point_id}' needs a value to write."
            )
        check_state(spec, coerced)
        if isinstance(coerced, float):
            _check_limits(spec, coerced)
        return point, coerced

    def _notify(self, change: Change) -> None:
        # A listener that updates a point would otherwise deliver that change to the listeners after it
        # before the one being delivered: queue it so every listener sees changes in the order they happened.
        self._queue.append(change)
        if self._notifying:
            return
        self._notifying = True
        try:
            while self._queue:
                change = self._queue.popleft()
                point_id = change.point.id
                for listener in self._listeners:
                    if point_id.startswith(listener.prefix):
                        try:
                            listener.callback(change)
                        except Exception:
                            _log.exception("a listener failed on the change of point %s", point_id)
        finally:
            self._notifying = False


def _check_limits(spec: PointSpec, value: float) -> None:
    low, high = spec.minimum, spec.maximum
    if (low is None or value >= low) and (high is None or value <= high):
        return
    unit = f" {spec.unit}" if spec.unit else ""
    if low is not None and high is not None:
        allowed = f"from {format_number(low)} to {format_number(high)}{unit}"
    elif low is not None:
        allowed = f"of at least {format_number(low)}{unit}"
    else:
        assert high is not None
        allowed = f"of at most {format_number(high)}{unit}"
    raise WriteError(
        WriteErrorCode.OUT_OF_RANGE,
        spec.id,
        f"Point '{spec.id}' takes values {allowed}; {format_number(value)}{unit} is outside.",
    )


class Subscription:
    """The changes under a prefix for one async consumer. Changes of a point that arrive before the consumer
    reads are merged into one (the first `old`, the latest `new`), in the order of each point's first pending
    change. `close()` (or leaving `async with`) ends the iteration and drops what is pending."""

    def __init__(self, database: PointDatabase, prefix: str = "") -> None:
        self.prefix = prefix
        self._pending: dict[str, Change] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self._unsubscribe = database.listen(self._receive, prefix)

    def _receive(self, change: Change) -> None:
        if self._closed:
            return
        point_id = change.point.id
        first = self._pending.get(point_id)
        if first is not None:
            change = Change(change.point, first.old, change.new, change.source, first.added or change.added)
        self._pending[point_id] = change  # a key already present keeps its place in the order
        self._wakeup.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        """How many points have a change waiting to be read."""
        return len(self._pending)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        self._pending.clear()
        self._wakeup.set()

    async def get(self) -> Change:
        """The next change, waiting for one; raises StopAsyncIteration once the subscription is closed."""
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        point_id = next(iter(self._pending))
        return self._pending.pop(point_id)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Change:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
